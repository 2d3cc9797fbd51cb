"""``python -m matcalc``: the same command line as ``matcalc``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
