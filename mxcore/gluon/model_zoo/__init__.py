"""``gluon.model_zoo``: predefined models (MXNet's ``mxnet.gluon.model_zoo``).

``vision.get_model(name, **kwargs)`` builds a model by name.  mxcore downloads
no pretrained weights: ``pretrained=True`` needs ``root=``, a local file
written by ``save_parameters`` or the folder holding it.
"""
from mxcore.gluon.model_zoo import model_store, vision

__all__ = ["vision", "model_store"]
