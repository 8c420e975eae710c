"""Compute pipelines, cached by their WGSL source (the source holds everything that changes the code:
operator, data types, ranks, options; shapes are parameters), and the record of every source compiled."""

from __future__ import annotations

import hashlib
import re
from typing import Any

__all__ = ["browser_source", "pipeline", "seen"]

# A subgroup built-in function or builtin value (subgroupAdd, subgroup_invocation_id, ...).
_SUBGROUP = re.compile(r"\bsubgroup(?:[A-Z]\w*\s*\(|_invocation_id\b|_size\b)")

_SEEN: dict[str, str] = {}
_PIPELINES: dict[tuple[int, str], tuple[Any, Any]] = {}  # (device kept alive, pipeline)


def _name(kernel: str, source: str) -> str:
    return f"{kernel}-{hashlib.sha1(source.encode()).hexdigest()[:12]}"


def browser_source(source: str) -> str:
    """``source`` as a browser must get it: Tint (Chrome) requires ``enable subgroups;`` before any
    subgroup built-in, which naga (wgpu 0.32) refuses, so the sources run here go without it."""
    if _SUBGROUP.search(source) and "enable subgroups;" not in source:
        return "enable subgroups;\n" + source
    return source


def pipeline(device: Any, kernel: str, source: str) -> Any:
    """The compute pipeline of ``source`` (entry point ``main``) on ``device``, made once."""
    key = (id(device), source)
    cached = _PIPELINES.get(key)
    if cached is not None:
        return cached[1]
    module = device.create_shader_module(code=source, label=kernel)
    found = device.create_compute_pipeline(layout="auto", compute={"module": module, "entry_point": "main"})
    _PIPELINES[key] = (device, found)
    _SEEN.setdefault(_name(kernel, source), browser_source(source))
    return found


def seen() -> dict[str, str]:
    """Every WGSL source this process compiled, in its browser form (:func:`browser_source`): name (kernel and
    hash of the source run here) -> source (for Tint's check)."""
    return dict(_SEEN)
