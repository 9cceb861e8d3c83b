"""Op-table cases: unary math, smooth_l1, hard_sigmoid, softmin, add_n, moments and where.  Imported by tests/optable.py, which
collects every case into one table."""
from __future__ import annotations

from tests.optable import case  # noqa: F401
