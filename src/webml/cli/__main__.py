"""``python -m webml.cli``."""

import sys

from . import main

sys.exit(main())
