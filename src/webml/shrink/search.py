"""``max_drop``: the narrowest weights that keep the outputs within a given drop of the float32 model's.

The drop of a shrunk graph on the calibration inputs is, over its outputs,
the largest of ``1 - top-1 agreement`` (an output of rank 2, a classifier's)
and ``1 - mean cosine`` (any other).  While it exceeds ``max_drop``, the
weight with the highest measured sensitivity per byte goes back to float32:
each weight's sensitivity is the mean absolute change of the outputs when
it alone is quantized (on up to :data:`PROBES` calibration inputs), divided
by its float32 size, so small sensitive layers (EfficientNet's first
depthwise and projection convolutions) go first and cost little.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ..api.context import MLContext
from ..api.graph import MLGraph
from ..ir import Graph
from . import metrics
from .transform import Plan, rebuild

__all__ = ["PROBES", "keep_sensitive", "output_drop"]

#: Calibration inputs used to measure each weight's sensitivity.
PROBES = 8

Feed = Mapping[str, np.ndarray]


def _runs(graph: MLGraph, feeds: Sequence[Feed]) -> list[dict[str, np.ndarray]]:
    return [graph.context.compute(graph, dict(f)) for f in feeds]


def _joined(runs: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Each output of ``runs`` (one per feed), concatenated along the batch, in float64."""
    return {name: np.concatenate([np.asarray(r[name], np.float64) for r in runs]) for name in runs[0]}


def _outputs(graph: MLGraph, feeds: Sequence[Feed]) -> dict[str, np.ndarray]:
    return _joined(_runs(graph, feeds))


def output_drop(reference: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray]) -> float:
    """The drop of ``got`` from ``reference`` (see the module docstring)."""
    drops = []
    for name, ref in reference.items():
        if ref.ndim == 2:
            drops.append(1.0 - metrics.top1_agreement(ref, got[name]))
        else:
            drops.append(1.0 - metrics.mean_cosine(ref, got[name]))
    return max(drops)


def keep_sensitive(
    ir: Graph,
    context: MLContext,
    plan: Plan,
    original: MLGraph,
    feeds: Sequence[Feed],
    max_drop: float,
    keep: Callable[[int, str], None],
) -> tuple[float, MLGraph]:
    """Take weights out of ``plan.weights`` (calling ``keep(node index, reason)`` for each) until the
    shrunk graph's drop on ``feeds`` is at most ``max_drop``; returns the drop reached and the
    graph of the final plan."""
    reference_runs = _runs(original, feeds)
    reference = _joined(reference_runs)
    shrunk = rebuild(ir, context, plan)
    drop = output_drop(reference, _outputs(shrunk, feeds))
    if drop <= max_drop:
        return drop, shrunk
    probes = feeds[:PROBES]
    probe_reference = _joined(reference_runs[:PROBES])
    ranked = []
    for index, entry in plan.weights.items():
        out = _outputs(rebuild(ir, context, plan.only(index)), probes)
        change = float(np.mean([np.abs(out[n] - probe_reference[n]).mean() for n in out]))
        ranked.append((change / entry[2].values.size, change, index))
    for _, change, index in sorted(ranked, reverse=True):
        plan.without(index)
        keep(index, f"sensitive: quantized alone it moved the outputs by {change:.3g} on average (max_drop)")
        shrunk = rebuild(ir, context, plan)
        drop = output_drop(reference, _outputs(shrunk, feeds))
        if drop <= max_drop:
            break
    return drop, shrunk
