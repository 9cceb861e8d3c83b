"""``mx.optimizer``: optimizers, the kvstore/Trainer updater and the registry
(``mx.optimizer.create('adam', learning_rate=1e-3)``)."""
from mxcore.optimizer import optimizer
from mxcore.optimizer.optimizer import (SGD, NAG, AdaDelta, AdaGrad, Adam, AdamW, Optimizer,
                                        RMSProp, Updater, create, get_updater, register)

__all__ = optimizer.__all__
