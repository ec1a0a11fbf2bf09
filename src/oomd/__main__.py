"""``python -m oomd`` runs the same entry point as the ``oomd`` console script."""

import sys

from oomd.cli import main

sys.exit(main())
