"""``python -m tools.vm build|run|selftest``: the same as ``tools/vm/oomdvm.py``."""

import sys

from tools.vm.oomdvm import main

sys.exit(main())
