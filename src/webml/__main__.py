"""``python -m webml``: the ``webml`` command (as ``python -m webml.cli``)."""

import sys

from .cli import main

sys.exit(main())
