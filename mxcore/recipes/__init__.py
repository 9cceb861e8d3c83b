"""Ready-to-run training programs behind ``mxcore train <name>``."""
