"""Op-table cases: sample_*/random_* distributions (deterministic properties only).  Imported by tests/optable.py, which
collects every case into one table."""
from __future__ import annotations

from tests.optable import case  # noqa: F401
