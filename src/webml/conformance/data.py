"""Finding and decoding the vendored WPT WebNN JSON (see its README)."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["conformance_files", "listed_files", "load", "validation_files", "wpt_dir"]


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


#: index.json's sections and the folders their files are in.
_SECTIONS = {"conformance": "conformance", "supplement": "conformance_supplement", "validation": "validation"}


def listed_files(section: str) -> list[Path]:
    """The files ``index.json`` lists in ``section`` ("conformance", "supplement" or
    "validation"), sorted by name: the index, not a directory listing, says what the suite is."""
    root = wpt_dir()
    index_path = root / "index.json"
    if not index_path.is_file():
        raise FileNotFoundError(f"{index_path} is missing: the WPT folder is incomplete")
    folder = root / _SECTIONS[section]
    paths = []
    for entry in load(index_path)[section]["files"]:
        name = entry.get("json")
        if name is None:  # a WPT file without graph cases
            continue
        if not isinstance(name, str) or Path(name).name != name or not name.endswith(".json"):
            raise ValueError(f"{index_path}: {section} lists {name!r}, not a file name")
        paths.append(folder / name)
    return sorted(paths)


def conformance_files() -> list[Path]:
    """Every conformance file, the supplement's after the rest, each part sorted by name."""
    return listed_files("conformance") + listed_files("supplement")


def validation_files() -> list[Path]:
    return listed_files("validation")
