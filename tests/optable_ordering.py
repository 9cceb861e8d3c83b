"""Op-table cases: sorting, cumsum, gather/scatter, diag, flip and depth/space.  Imported by tests/optable.py, which
collects every case into one table."""
from __future__ import annotations

from tests.optable import case  # noqa: F401
