"""Optimizers whose update is built from WebNN operations, one step inside the training graph.

An optimizer declares the state it keeps per parameter with
:meth:`Optimizer.init_state` (state names -> initial arrays, of the
parameter's shape or scalars) and emits the update with
:meth:`Optimizer.update`, which returns the new parameter and the new state
as operands of the same builder.  ``step`` is a float32 scalar operand: the
1-based number of the step being taken (1 on the first update); the training
graph keeps the count in a tensor and increments it itself.

>>> import numpy as np, webml
>>> from webml.train.optimizers import SGD
>>> ctx = webml.ml.create_context(backend="reference")
>>> b = webml.MLGraphBuilder(ctx)
>>> p = b.input("p", {"dataType": "float32", "shape": [2]})
>>> g = b.input("g", {"dataType": "float32", "shape": [2]})
>>> new_p, _ = SGD(0.5).update(b, p, g, {}, b.constant("float32", 1))
>>> graph = b.build({"p": new_p})
>>> ctx.compute(graph, {"p": np.array([1, 2], np.float32), "g": np.array([2, 2], np.float32)})["p"]
array([0., 1.], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..api.builder import MLGraphBuilder
from ..api.operand import MLOperand

__all__ = ["SGD", "Adam", "AdamW", "Optimizer"]


def _number(value: object, name: str, *, low: float = 0.0, high: float | None = None, open_high: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    if not np.isfinite(v) or v < low or (high is not None and (v >= high if open_high else v > high)):
        bound = f"in [{low}, {high}{')' if open_high else ']'}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return v


class Optimizer:
    """The interface: per-parameter state and the update, emitted as graph operations."""

    #: Names of the per-parameter state arrays, in order.
    state_names: tuple[str, ...] = ()

    def init_state(self, param: np.ndarray) -> dict[str, np.ndarray]:
        """The initial state of one parameter: name -> float32 array (zeros of the parameter's shape)."""
        return {name: np.zeros(np.shape(param), np.float32) for name in self.state_names}

    def update(
        self,
        b: MLGraphBuilder,
        param: MLOperand,
        grad: MLOperand,
        state: Mapping[str, MLOperand],
        step: MLOperand,
    ) -> tuple[MLOperand, dict[str, MLOperand]]:
        """Operands of the updated parameter and state after one step."""
        raise NotImplementedError

    def _check(self, param: MLOperand, grad: MLOperand, state: Mapping[str, MLOperand]) -> None:
        name = type(self).__name__
        if list(grad.shape) != list(param.shape) or grad.data_type != param.data_type:
            raise TypeError(
                f"{name}.update: grad is {grad.data_type} {grad.shape}, "
                f"the parameter is {param.data_type} {param.shape}"
            )
        missing = [s for s in self.state_names if s not in state]
        if missing:
            raise TypeError(f"{name}.update: missing state {missing} (expected {list(self.state_names)})")

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


def _const(b: MLGraphBuilder, like: MLOperand, value: float) -> MLOperand:
    return b.constant(like.data_type, float(value))


class SGD(Optimizer):
    """Stochastic gradient descent, as in PyTorch's ``torch.optim.SGD`` (no dampening).

    ``g = grad + weight_decay * param``; with momentum,
    ``velocity = momentum * velocity + g`` and the step uses ``velocity``
    (``g + momentum * velocity`` with ``nesterov``); ``param -= learning_rate * step``.
    """

    def __init__(
        self, learning_rate: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0
    ) -> None:
        self.learning_rate = _number(learning_rate, "SGD: learning_rate")
        self.momentum = _number(momentum, "SGD: momentum", high=1.0, open_high=True)
        self.nesterov = bool(nesterov)
        self.weight_decay = _number(weight_decay, "SGD: weight_decay")
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("SGD: nesterov needs a momentum > 0")
        self.state_names = ("velocity",) if self.momentum else ()

    def update(self, b, param, grad, state, step):
        self._check(param, grad, state)
        g = grad
        if self.weight_decay:
            g = b.add(g, b.mul(param, _const(b, param, self.weight_decay)))
        new_state: dict[str, MLOperand] = {}
        if self.momentum:
            velocity = b.add(b.mul(state["velocity"], _const(b, param, self.momentum)), g)
            new_state["velocity"] = velocity
            g = b.add(g, b.mul(velocity, _const(b, param, self.momentum))) if self.nesterov else velocity
        return b.sub(param, b.mul(g, _const(b, param, self.learning_rate))), new_state


class Adam(Optimizer):
    """Adam (Kingma & Ba), as in PyTorch's ``torch.optim.Adam`` with bias correction from ``step``.

    ``m = beta1 m + (1 - beta1) g``; ``v = beta2 v + (1 - beta2) g^2``;
    ``param -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + epsilon)``.
    """

    state_names = ("m", "v")

    def __init__(
        self, learning_rate: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8
    ) -> None:
        cls = type(self).__name__
        self.learning_rate = _number(learning_rate, f"{cls}: learning_rate")
        self.beta1 = _number(beta1, f"{cls}: beta1", high=1.0, open_high=True)
        self.beta2 = _number(beta2, f"{cls}: beta2", high=1.0, open_high=True)
        self.epsilon = _number(epsilon, f"{cls}: epsilon")

    def _decay(self, b: MLGraphBuilder, param: MLOperand) -> MLOperand:
        return param

    def update(self, b, param, grad, state, step):
        self._check(param, grad, state)
        c = lambda v: _const(b, param, v)  # noqa: E731
        param = self._decay(b, param)
        m = b.add(b.mul(state["m"], c(self.beta1)), b.mul(grad, c(1.0 - self.beta1)))
        v = b.add(b.mul(state["v"], c(self.beta2)), b.mul(b.mul(grad, grad), c(1.0 - self.beta2)))
        t = step if step.data_type == param.data_type else b.cast(step, param.data_type)
        # Scalars: lr / (1 - beta1^t) and 1 / sqrt(1 - beta2^t).
        correction1 = b.sub(c(1.0), b.pow(c(self.beta1), t))
        correction2 = b.sub(c(1.0), b.pow(c(self.beta2), t))
        step_size = b.div(c(self.learning_rate), correction1)
        denominator = b.add(b.div(b.sqrt(v), b.sqrt(correction2)), c(self.epsilon))
        new_param = b.sub(param, b.mul(b.div(m, denominator), step_size))
        return new_param, {"m": m, "v": v}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as in PyTorch's ``torch.optim.AdamW``.

    The parameter first shrinks, ``param *= 1 - learning_rate * weight_decay``,
    then takes the Adam step.
    """

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__(learning_rate, beta1, beta2, epsilon)
        self.weight_decay = _number(weight_decay, "AdamW: weight_decay")

    def _decay(self, b, param):
        if not self.weight_decay:
            return param
        return b.mul(param, _const(b, param, 1.0 - self.learning_rate * self.weight_decay))
