"""Finding and decoding the vendored WPT WebNN JSON (see its README)."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["conformance_files", "load", "validation_files", "wpt_dir"]


def wpt_dir() -> Path:
    """The vendored suite: ``$WEBML_WPT_DIR``, else ``third_party/wpt-webnn`` of the source tree."""
    env = os.environ.get("WEBML_WPT_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "third_party" / "wpt-webnn"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the vendored WPT suite (third_party/wpt-webnn) was not found; set WEBML_WPT_DIR")


def _hook(d: dict[str, Any]) -> Any:
    if len(d) == 1:
        if "$bigint" in d:
            return int(d["$bigint"])
        if "$float" in d:
            return float(d["$float"])
    return d


@cache
def load(path: Path) -> dict[str, Any]:
    """A decoded WPT JSON file ($bigint -> int, $float -> float)."""
    with open(path, encoding="utf-8") as f:
        return json.load(f, object_hook=_hook)


def conformance_files() -> list[Path]:
    """Every conformance file, the supplement included, sorted by name."""
    root = wpt_dir()
    return sorted(root.glob("conformance/*.json")) + sorted(root.glob("conformance_supplement/*.json"))


def validation_files() -> list[Path]:
    return sorted(wpt_dir().glob("validation/*.json"))
