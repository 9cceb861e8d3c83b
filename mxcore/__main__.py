"""``python -m mxcore`` runs the command line."""
import sys

from mxcore.cli import main

sys.exit(main())
