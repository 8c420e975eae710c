"""The arguments that make an IR node again through its operator's rule (a graph rebuilt or reshaped)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..ir import OperandDesc, thaw
from .conv import spatial

__all__ = ["rule_arguments"]

_POOLS = frozenset({"averagePool2d", "l2Pool2d", "maxPool2d"})


def rule_arguments(op: str, attrs: Mapping[str, Any], output: OperandDesc) -> dict[str, Any]:
    """A node's attributes as its operator's rule takes them, with the output sizes the rule resolved into
    the output's shape and did not keep (``output``: the node's first output): resample2d's ``scales``, a
    pool's rounding, convTranspose2d's ``output_sizes``."""
    arguments = thaw(attrs)
    if op == "resample2d":
        arguments["sizes"] = [output.shape[axis] for axis in attrs["axes"]]
    elif op in _POOLS:
        arguments["output_sizes"] = list(spatial(output.shape, attrs["layout"]))
    elif op == "convTranspose2d":
        arguments["output_sizes"] = list(spatial(output.shape, attrs["input_layout"]))
    return arguments
