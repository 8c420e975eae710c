"""``max_drop``: the narrowest weights that keep the outputs within a given drop of the float32 model's.

The drop of a shrunk graph on the calibration inputs is, over its outputs,
the largest of ``1 - top-1 agreement`` (an output of rank 2, a classifier's)
and ``1 - mean cosine`` (any other).  While it exceeds ``max_drop``, the
weight with the highest measured sensitivity per element goes one rung wider
(int4 -> int8 -> float16 -> float32): each weight's sensitivity is the mean
absolute change of the outputs when it alone is at its present precision (on
up to :data:`PROBES` calibration inputs), divided by its number of elements,
so small sensitive layers (EfficientNet's first depthwise and projection
convolutions) go first and cost little; a widened weight is measured again
at its new precision and goes back in line.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np

from ..api.context import MLContext
from ..api.graph import MLGraph
from ..ir import Graph
from . import metrics
from .transform import Plan, rebuild

__all__ = ["PROBES", "RUNGS", "Layers", "output_drop", "widen_sensitive"]

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


#: The precisions a weight moves through, narrowest first: each step of the search widens one weight one rung.
RUNGS = ("int4", "int8", "float16", "float32")


class Layers(Protocol):
    """What the search needs of the plan's weights (``webml.shrink.core`` holds the weights' options)."""

    def precision(self, index: int) -> str: ...

    def set(self, index: int, precision: str) -> str:
        """Put the weight at ``precision`` (or wider where it cannot be: float16's range); returns which."""

    def size(self, index: int) -> int: ...


def widen_sensitive(
    ir: Graph,
    context: MLContext,
    plan: Plan,
    layers: Layers,
    original: MLGraph,
    feeds: Sequence[Feed],
    max_drop: float,
    record: Callable[[int, str, str], None],
    progress: Callable[[int, int, str], None] | None = None,
) -> tuple[float, MLGraph]:
    """Widen the weights of ``plan`` one rung of :data:`RUNGS` at a time, the most sensitive per
    element first (``record(node index, precision, reason)`` for each step), until the shrunk graph's
    drop on ``feeds`` is at most ``max_drop``; returns the drop reached and the graph of the final plan.
    ``progress(done, total, what)`` hears of each measurement."""
    tell = progress or (lambda done, total, what: None)
    reference_runs = _runs(original, feeds)
    reference = _joined(reference_runs)
    shrunk = rebuild(ir, context, plan)
    drop = output_drop(reference, _outputs(shrunk, feeds))
    if drop <= max_drop:
        return drop, shrunk
    probes = feeds[:PROBES]
    probe_reference = _joined(reference_runs[:PROBES])

    def sensitivity(index: int) -> float:
        """The mean absolute change of the outputs when only this weight is as ``plan`` has it."""
        out = _outputs(rebuild(ir, context, plan.only(index)), probes)
        return float(np.mean([np.abs(out[n] - probe_reference[n]).mean() for n in out]))

    queue = []
    for done, index in enumerate(list(plan.weights), 1):
        change = sensitivity(index)
        heapq.heappush(queue, (-change / layers.size(index), index, change))
        tell(done, len(plan.weights), "each weight's sensitivity measured")
    steps = sum(len(RUNGS) - 1 - RUNGS.index(layers.precision(i)) for _, i, _ in queue)
    done = 0
    while queue and drop > max_drop:
        _, index, change = heapq.heappop(queue)
        wider = layers.set(index, RUNGS[RUNGS.index(layers.precision(index)) + 1])
        record(index, wider, f"sensitive: it alone moved the outputs by {change:.3g} on average (max_drop)")
        shrunk = rebuild(ir, context, plan)
        drop = output_drop(reference, _outputs(shrunk, feeds))
        done += 1
        tell(done, steps, f"weights widened (at most; the drop is {drop:.4f}, max_drop {max_drop})")
        if wider != "float32":
            change = sensitivity(index)
            heapq.heappush(queue, (-change / layers.size(index), index, change))
    return drop, shrunk
