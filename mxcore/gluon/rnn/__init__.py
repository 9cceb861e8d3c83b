"""``gluon.rnn``: recurrent layers and cells (to be written)."""
from __future__ import annotations

__all__: list = []
