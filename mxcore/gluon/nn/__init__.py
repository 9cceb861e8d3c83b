"""``gluon.nn``: layers."""
from mxcore.gluon.nn.activations import (ELU, GELU, SELU, Activation, LeakyReLU, PReLU,
                                         Swish)
from mxcore.gluon.nn.basic_layers import (BatchNorm, BatchNormReLU, Dense, Dropout, Embedding,
                                          Flatten, GroupNorm, HybridLambda, HybridSequential,
                                          InstanceNorm, Lambda, LayerNorm, Sequential,
                                          SyncBatchNorm)
from mxcore.gluon.nn.conv_layers import (AvgPool1D, AvgPool2D, AvgPool3D, Conv1D,
                                          Conv1DTranspose, Conv2D, Conv2DTranspose, Conv3D,
                                          Conv3DTranspose, GlobalAvgPool1D, GlobalAvgPool2D,
                                          GlobalAvgPool3D, GlobalMaxPool1D, GlobalMaxPool2D,
                                          GlobalMaxPool3D, MaxPool1D, MaxPool2D, MaxPool3D,
                                          ReflectionPad2D)
from mxcore.gluon.nn.transformer_layers import MultiHeadAttention, RMSNorm
from mxcore.gluon.block import Block, HybridBlock
from mxcore.gluon.symbol_block import SymbolBlock

__all__ = ["SymbolBlock", "Activation", "LeakyReLU", "PReLU", "ELU", "SELU", "GELU", "Swish", "Dense",
           "Dropout", "BatchNorm", "BatchNormReLU", "SyncBatchNorm", "InstanceNorm", "LayerNorm",
           "GroupNorm", "Embedding", "Flatten", "Lambda", "HybridLambda", "Sequential",
           "HybridSequential",
           "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
           "Conv3DTranspose", "MaxPool1D", "MaxPool2D", "MaxPool3D", "AvgPool1D",
           "AvgPool2D", "AvgPool3D", "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D",
           "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D", "ReflectionPad2D",
           "RMSNorm", "MultiHeadAttention", "Block", "HybridBlock"]
