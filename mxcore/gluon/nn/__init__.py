"""``gluon.nn``: layers."""
from mxcore.gluon.nn.activations import (ELU, GELU, SELU, Activation, LeakyReLU, PReLU,
                                         Swish)
from mxcore.gluon.nn.basic_layers import (Dense, Dropout, Flatten, HybridLambda,
                                          HybridSequential, Lambda, LayerNorm, Sequential)
from mxcore.gluon.block import Block, HybridBlock

__all__ = ["Activation", "LeakyReLU", "PReLU", "ELU", "SELU", "GELU", "Swish", "Dense",
           "Dropout", "LayerNorm", "Flatten", "Lambda", "HybridLambda", "Sequential", "HybridSequential",
           "Block", "HybridBlock"]
