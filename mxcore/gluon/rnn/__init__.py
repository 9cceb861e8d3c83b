"""``gluon.rnn``: fused recurrent layers (RNN, LSTM, GRU over the fused ``RNN`` op) and
recurrent cells (one step each, composed from ``mx.nd`` ops), with MXNet 1.x names."""
from __future__ import annotations

from mxcore.gluon.rnn.rnn_cell import (BidirectionalCell, DropoutCell, GRUCell,
                                       HybridRecurrentCell, HybridSequentialRNNCell, LSTMCell,
                                       ModifierCell, RecurrentCell, ResidualCell, RNNCell,
                                       SequentialRNNCell, ZoneoutCell)
from mxcore.gluon.rnn.rnn_layer import GRU, LSTM, RNN

__all__ = ["RNN", "LSTM", "GRU", "RecurrentCell", "HybridRecurrentCell", "RNNCell", "LSTMCell",
           "GRUCell", "SequentialRNNCell", "HybridSequentialRNNCell", "DropoutCell",
           "ModifierCell", "ZoneoutCell", "ResidualCell", "BidirectionalCell"]
