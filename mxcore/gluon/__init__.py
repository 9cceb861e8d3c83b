"""``mx.gluon``: blocks, layers, losses, the Trainer and data loading."""
from mxcore import metric  # noqa: F401  (gluon.metric, as in MXNet 1.6+)
from mxcore.gluon import block, contrib, data, loss, model_zoo, nn, parameter, rnn, utils
from mxcore.gluon.block import Block, HybridBlock
from mxcore.gluon.symbol_block import SymbolBlock
from mxcore.gluon.parameter import Constant, DeferredInitializationError, Parameter, ParameterDict
from mxcore.gluon.trainer import Trainer
from mxcore.gluon.train_step import TrainStep

__all__ = ["Block", "HybridBlock", "Parameter", "ParameterDict", "Constant", "Trainer", "TrainStep",
           "DeferredInitializationError", "nn", "loss", "data", "utils", "block", "parameter",
           "metric", "model_zoo", "rnn", "contrib"]
