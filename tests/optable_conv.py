"""Op-table cases: deconvolution, upsampling and padding.  Imported by tests/optable.py, which
collects every case into one table."""
from __future__ import annotations

from tests.optable import case  # noqa: F401
