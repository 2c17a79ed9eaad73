"""``python -m mlp_crosscheck ...``: the same command line as ``mlp-crosscheck ...``."""

import sys

from mlp_crosscheck.cli import main

sys.exit(main())
