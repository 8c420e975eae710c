"""``python -m webml.web``: install the pinned onnxruntime-web into webml's cache now (``npm ci``), print where.

``webml export --web`` does the same on first use; this is for a set-up step, or a machine that goes offline.
"""

from __future__ import annotations

import sys

from . import WebExportError, ensure_runtime


def main() -> int:
    try:
        print(ensure_runtime())
    except WebExportError as exc:
        print(f"webml: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
