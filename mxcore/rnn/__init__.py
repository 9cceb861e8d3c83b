"""``mx.rnn``: MXNet 1.x's symbolic RNN cells (``mxcore/rnn/rnn_cell.py``)."""
from mxcore.rnn.rnn_cell import (BaseRNNCell, BidirectionalCell, FusedRNNCell,  # noqa: F401
                                 GRUCell, LSTMCell, RNNCell, RNNParams, SequentialRNNCell)

__all__ = ["RNNParams", "BaseRNNCell", "RNNCell", "LSTMCell", "GRUCell", "FusedRNNCell",
           "SequentialRNNCell", "BidirectionalCell"]
