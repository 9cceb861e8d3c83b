"""``mx.optimizer``: optimizers, the kvstore/Trainer updater and the registry
(``mx.optimizer.create('adam', learning_rate=1e-3)``)."""
from mxcore.optimizer import optimizer
from mxcore.optimizer.optimizer import (DCASGD, FTML, LAMB, NAG, SGD, SGLD, AdaDelta, AdaGrad,
                                        Adam, Adamax, AdamW, Ftrl, Nadam, Optimizer, RMSProp,
                                        Signum, Updater, ccSGD, create, get_updater, register)

__all__ = optimizer.__all__
