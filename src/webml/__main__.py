"""``python -m webml``: the ``webml`` command."""

from .cli import main

raise SystemExit(main())
