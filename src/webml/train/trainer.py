"""Training with WebNN graphs: a :class:`Trainer` whose every step is one dispatch of one MLGraph.

A model is described by a function ``forward(b, params, x)`` that builds the
predictions (logits for classification) from a dict of parameter operands
and the input batch with the builder ``b``, and by its initial parameters
(a dict of NumPy arrays).  The trainer builds, once:

* a **training-step graph**: inputs are the parameters, the optimizer's
  state, the step count, a running loss sum and one batch ``x``/``y``;
  outputs are the new parameters, the new state, the new step count and
  the new loss sum.  The gradients come from :func:`webml.train.grad`, the
  update from the optimizer, all as WebNN operations in the same graph;
* an **inference graph**: parameters and ``x`` in, predictions out.

Parameters and optimizer state live in MLTensors.  Because a dispatch may
not use one tensor as both an input and an output, the trainer keeps two
sets of tensors and ping-pongs between them: step *k* reads set *k mod 2*
and writes the other.  A step writes only the batch to the device; the
loss is summed inside the graph and read once per epoch, so no data makes a
host round trip per step.

The last partial batch of an epoch is **dropped** (every step has the same
shape, so one graph serves them all); with ``shuffle=True`` a different
remainder is dropped each epoch.  ``predict``/``evaluate`` **pad** the last
batch with zeros and discard the padded rows, so they cover every sample.

Example: learn ``y = 2 x - 1`` with a linear model and mean squared error.

>>> import numpy as np, webml
>>> from webml.train import Trainer, SGD
>>> def forward(b, params, x):
...     return b.add(b.matmul(x, params["w"]), params["b"])
>>> params = {"w": np.zeros((1, 1), np.float32), "b": np.zeros((1,), np.float32)}
>>> ctx = webml.ml.create_context()
>>> trainer = Trainer(ctx, forward, params, SGD(0.1, momentum=0.9), loss="mse", batch_size=8, input_shape=[1])
>>> x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(64, 1)
>>> history = trainer.fit(x, 2 * x - 1, epochs=30, seed=0, progress=False)
>>> history["loss"][-1] < 1e-4
True
>>> {k: np.round(v, 2).tolist() for k, v in trainer.parameters().items()}
{'w': [[2.0]], 'b': [-1.0]}
>>> trainer.predict(np.array([[1.0], [0.75]], np.float32)).round(2)
array([[1. ],
       [0.5]], dtype=float32)
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

import numpy as np

from ..api.buffers import host_array
from ..api.builder import MLGraphBuilder, is_produced
from ..api.context import MLContext
from ..api.operand import MLOperand
from ..api.tensor import MLTensor
from .autodiff import grad
from .losses import mean_squared_error, softmax_cross_entropy
from .optimizers import Optimizer
from .parameter_file import read_parameters, write_parameters
from .progress import ProgressBar

__all__ = ["LOSSES", "Trainer"]

#: Loss names accepted by :class:`Trainer`.
LOSSES = ("softmax_cross_entropy", "mse")

Forward = Callable[[MLGraphBuilder, dict[str, MLOperand], MLOperand], MLOperand]


class Trainer:
    """Trains ``forward`` with ``optimizer`` on ``context``; parameters and state stay in MLTensors.

    ``forward(b, params, x)`` builds the model's output from ``params`` (a
    dict of float32 operands shaped like ``params``' arrays) and ``x`` (a
    float32 batch of shape ``[batch] + input_shape``); it is called once for
    the training graph and once for the inference graph, so it must only
    build.  For ``loss="softmax_cross_entropy"`` the output is ``[batch, C]``
    logits and labels are class indices in ``[0, C)`` (of any integer
    dtype); for ``loss="mse"`` the targets have the output's shape.

    ``x``, the targets and the initial parameters follow the API's one rule
    for host data (:func:`webml.api.buffers.host_array`, as ``constant``,
    ``write_tensor`` and ``compute`` do): float32 NumPy arrays, or numbers in
    (nested) lists; an array of another dtype (float64) is refused with the
    conversion to write, never cast unseen.

    ``eval_batch_size`` (default ``batch_size``) is the batch of the inference
    graph used by :meth:`predict` and :meth:`evaluate`.
    """

    def __init__(
        self,
        context: MLContext,
        forward: Forward,
        params: Mapping[str, Any],
        optimizer: Optimizer,
        loss: str = "softmax_cross_entropy",
        *,
        batch_size: int = 32,
        input_shape: Sequence[int],
        eval_batch_size: int | None = None,
    ) -> None:
        if not isinstance(context, MLContext):
            raise TypeError(f"Trainer: context must be an MLContext, got {type(context).__name__}")
        if not callable(forward):
            raise TypeError(f"Trainer: forward must be a function (b, params, x) -> operand, got {forward!r}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"Trainer: optimizer must be a webml.train Optimizer (SGD, Adam, AdamW), got {optimizer!r}")
        if loss not in LOSSES:
            raise ValueError(f"Trainer: loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        self.context = context
        self.forward = forward
        self.optimizer = optimizer
        self.loss = loss
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.eval_batch_size = (
            self.batch_size if eval_batch_size is None else _positive_int(eval_batch_size, "eval_batch_size")
        )
        if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
            raise TypeError(f"Trainer: input_shape must be a list of dimensions, got {input_shape!r}")
        self.input_shape = [_positive_int(d, "input_shape dimension") for d in input_shape]
        self._initial = _check_params(params, "Trainer")
        self._states = {n: _check_state(optimizer, n, a) for n, a in self._initial.items()}
        self._build_train_graph()
        self._build_infer_graph()
        self._allocate()

    # -- graphs ----------------------------------------------------------------------

    def _param_inputs(self, b: MLGraphBuilder) -> dict[str, MLOperand]:
        return {
            n: b.input(f"param:{n}", {"dataType": "float32", "shape": list(a.shape)}) for n, a in self._initial.items()
        }

    def _call_forward(self, b: MLGraphBuilder, params: dict[str, MLOperand], x: MLOperand, batch: int) -> MLOperand:
        out = self.forward(b, dict(params), x)
        if not isinstance(out, MLOperand):
            raise TypeError(f"Trainer: forward must return an MLOperand, got {type(out).__name__}")
        if out.data_type != "float32":
            raise TypeError(f"Trainer: forward must return float32, got {out.data_type}")
        if not out.shape or out.shape[0] != batch:
            raise TypeError(f"Trainer: forward's output {out.shape} must have the batch ({batch}) as first dimension")
        if self.loss == "softmax_cross_entropy" and len(out.shape) != 2:
            raise TypeError(
                f"Trainer: for softmax_cross_entropy forward must return [batch, classes] logits, got {out.shape}"
            )
        return out

    def _build_train_graph(self) -> None:
        b = MLGraphBuilder(self.context)
        scalar = {"dataType": "float32", "shape": []}
        params = self._param_inputs(b)
        states = {
            n: {k: b.input(f"state:{n}:{k}", {"dataType": "float32", "shape": list(a.shape)}) for k, a in s.items()}
            for n, s in self._states.items()
        }
        step = b.input("step", scalar)
        loss_sum = b.input("loss_sum", scalar)
        x = b.input("x", {"dataType": "float32", "shape": [self.batch_size, *self.input_shape]})
        out = self._call_forward(b, params, x, self.batch_size)
        self.output_shape = list(out.shape[1:])
        if self.loss == "softmax_cross_entropy":
            self.num_classes: int | None = out.shape[1]
            y = b.input("y", {"dataType": "int32", "shape": [self.batch_size]})
            loss = softmax_cross_entropy(b, out, y)
        else:
            self.num_classes = None
            y = b.input("y", {"dataType": "float32", "shape": list(out.shape)})
            loss = mean_squared_error(b, out, y)
        grads = grad(b, loss, list(params.values()))
        new_step = b.add(step, b.constant("float32", 1.0))
        outputs: dict[str, MLOperand] = {}

        def output(name: str, operand: MLOperand) -> None:
            # build() refuses inputs and constants as outputs.
            outputs[name] = operand if is_produced(b, operand) else b.identity(operand)

        for (n, p), g in zip(params.items(), grads):
            new_p, new_s = self.optimizer.update(b, p, g, states[n], new_step)
            if set(new_s) != set(states[n]):
                raise TypeError(
                    f"Trainer: {type(self.optimizer).__name__}.update returned state {sorted(new_s)}, "
                    f"expected {sorted(states[n])}"
                )
            output(f"param:{n}", new_p)
            for k, v in new_s.items():
                output(f"state:{n}:{k}", v)
        output("step", new_step)
        output("loss_sum", b.add(loss_sum, loss))
        self._train_graph = b.build(outputs)

    def _build_infer_graph(self) -> None:
        b = MLGraphBuilder(self.context)
        params = self._param_inputs(b)
        x = b.input("x", {"dataType": "float32", "shape": [self.eval_batch_size, *self.input_shape]})
        out = self._call_forward(b, params, x, self.eval_batch_size)
        if list(out.shape[1:]) != self.output_shape:
            raise TypeError(
                f"Trainer: forward's output is {out.shape} for a batch of {self.eval_batch_size} "
                f"but [{self.batch_size}, ...{self.output_shape}] for a batch of {self.batch_size}"
            )
        self._infer_graph = b.build({"y": out if is_produced(b, out) else b.identity(out)})

    # -- tensors ---------------------------------------------------------------------------

    def _allocate(self) -> None:
        ctx = self.context

        def tensor(shape: Sequence[int], dtype: str = "float32", readable: bool = True) -> MLTensor:
            return ctx.create_tensor({"dataType": dtype, "shape": list(shape), "readable": readable, "writable": True})

        def state_set() -> dict[str, MLTensor]:
            s = {f"param:{n}": tensor(a.shape) for n, a in self._initial.items()}
            for n, st in self._states.items():
                s.update({f"state:{n}:{k}": tensor(a.shape) for k, a in st.items()})
            s["step"] = tensor([])
            s["loss_sum"] = tensor([])
            return s

        self._sets = [state_set(), state_set()]
        self._current = 0
        self._x = tensor([self.batch_size, *self.input_shape], readable=False)
        y_shape, y_type = (
            ([self.batch_size], "int32") if self.num_classes else ([self.batch_size, *self.output_shape], "float32")
        )
        self._y = tensor(y_shape, y_type, readable=False)
        self._eval_x = tensor([self.eval_batch_size, *self.input_shape], readable=False)
        self._eval_y = ctx.create_tensor(
            {"dataType": "float32", "shape": [self.eval_batch_size, *self.output_shape], "readable": True}
        )
        cur = self._sets[0]
        for n, a in self._initial.items():
            ctx.write_tensor(cur[f"param:{n}"], a)
            for k, v in self._states[n].items():
                ctx.write_tensor(cur[f"state:{n}:{k}"], v)
        ctx.write_tensor(cur["step"], np.zeros((), np.float32))
        ctx.write_tensor(cur["loss_sum"], np.zeros((), np.float32))

    # -- steps ---------------------------------------------------------------------------------

    def train_step(self, x: Any, y: Any) -> None:
        """One optimizer step on exactly one batch (``batch_size`` samples); writes only the batch."""
        x, y = self._check_data(x, y, "train_step")
        if len(x) != self.batch_size:
            raise ValueError(
                f"train_step: the batch has {len(x)} samples, the trainer's batch_size is {self.batch_size}"
            )
        self._step(x, y)

    def _step(self, x: np.ndarray, y: np.ndarray) -> None:
        ctx = self.context
        ctx.write_tensor(self._x, x)
        ctx.write_tensor(self._y, y)
        src, dst = self._sets[self._current], self._sets[1 - self._current]
        ctx.dispatch(self._train_graph, {**src, "x": self._x, "y": self._y}, dst)
        self._current = 1 - self._current

    @property
    def steps(self) -> int:
        """How many optimizer steps have been taken (reads the step-count tensor)."""
        return int(self.context.read_tensor(self._sets[self._current]["step"]))

    def fit(
        self,
        x: Any,
        y: Any,
        epochs: int = 1,
        *,
        validation_data: tuple[Any, Any] | None = None,
        shuffle: bool = True,
        seed: int | None = None,
        early_stopping_patience: int | None = None,
        restore_best: bool = True,
        progress: bool | IO[str] = True,
    ) -> dict[str, Any]:
        """Train for ``epochs`` passes over ``(x, y)``; returns the history.

        Each epoch takes ``len(x) // batch_size`` steps (the last partial
        batch is dropped), in a random order when ``shuffle`` (``seed`` makes
        it reproducible).  After each epoch ``validation_data`` is evaluated
        (accuracy for softmax_cross_entropy, mean squared error for mse).
        With ``early_stopping_patience=k``, training stops after ``k`` epochs
        without improvement of the validation metric (of the training loss
        without validation data) and, with ``restore_best``, the parameters
        of the best epoch are restored.  ``progress`` shows a text progress
        bar on stderr (or on the stream given).

        The history: ``loss`` (mean training loss per epoch), ``val_accuracy``
        or ``val_mse`` (per epoch, with validation data), ``time`` (seconds
        per epoch), ``epochs`` (epochs run) and ``best_epoch`` (1-based,
        with early stopping).
        """
        epochs = _positive_int(epochs, "epochs", "fit")
        x, y = self._check_data(x, y, "fit")
        n = len(x)
        if self.batch_size > n:
            raise ValueError(f"fit: batch_size {self.batch_size} is larger than the {n} training samples")
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError("fit: validation_data must be a pair (x_val, y_val)")
            val_x, val_y = self._check_data(*validation_data, "fit (validation_data)")
        if early_stopping_patience is not None:
            early_stopping_patience = _positive_int(early_stopping_patience, "early_stopping_patience", "fit")
        steps = n // self.batch_size
        rng = np.random.default_rng(seed)
        metric = None if validation_data is None else ("val_accuracy" if self.num_classes else "val_mse")
        history: dict[str, Any] = {"loss": [], "time": []}
        if metric:
            history[metric] = []
        stream = sys.stderr if progress is True else (progress or None)
        bar = ProgressBar(stream, epochs, steps, metric) if stream else None
        best: float | None = None
        best_params: dict[str, np.ndarray] | None = None
        best_epoch = 0
        higher_is_better = metric == "val_accuracy"
        epochs_run = 0
        for epoch in range(epochs):
            start = time.perf_counter()
            self.context.write_tensor(self._sets[self._current]["loss_sum"], np.zeros((), np.float32))
            order = rng.permutation(n) if shuffle else np.arange(n)
            for s in range(steps):
                idx = order[s * self.batch_size : (s + 1) * self.batch_size]
                self._step(x[idx], y[idx])
                if bar:
                    bar.update(epoch, s + 1, self._running_loss(s + 1) if bar.wants_loss() else None)
            epoch_loss = float(self.context.read_tensor(self._sets[self._current]["loss_sum"])) / steps
            history["loss"].append(epoch_loss)
            value = None
            if metric:
                value = self.evaluate(val_x, val_y)
                history[metric].append(value)
            history["time"].append(time.perf_counter() - start)
            epochs_run = epoch + 1
            if bar:
                bar.finish(epoch, epoch_loss, value, history["time"][-1])
            if early_stopping_patience is not None:
                score = value if metric else epoch_loss
                if (
                    best is None
                    or (higher_is_better and score > best)
                    or (not higher_is_better and score < best)
                    or math.isnan(best)
                ):
                    best, best_epoch = score, epoch + 1
                    best_params = self.parameters() if restore_best else None
                elif epoch + 1 - best_epoch >= early_stopping_patience:
                    break
        history["epochs"] = epochs_run
        if early_stopping_patience is not None:
            history["best_epoch"] = best_epoch
            if restore_best and best_params is not None and best_epoch != epochs_run:
                self._write_parameters(best_params)
        return history

    def _running_loss(self, steps_done: int) -> float:
        return float(self.context.read_tensor(self._sets[self._current]["loss_sum"])) / steps_done

    # -- inference -----------------------------------------------------------------------------------

    def predict(self, x: Any) -> np.ndarray:
        """The model's outputs (logits for classification) for every sample of ``x``."""
        x = self._check_x(x, "predict")
        ctx = self.context
        bs = self.eval_batch_size
        params = {k: t for k, t in self._sets[self._current].items() if k.startswith("param:")}
        out = np.empty((len(x), *self.output_shape), np.float32)
        for start in range(0, len(x), bs):
            chunk = x[start : start + bs]
            if len(chunk) < bs:  # pad the last batch with zeros
                chunk = np.concatenate([chunk, np.zeros((bs - len(chunk), *self.input_shape), np.float32)])
            ctx.write_tensor(self._eval_x, chunk)
            ctx.dispatch(self._infer_graph, {**params, "x": self._eval_x}, {"y": self._eval_y})
            out[start : start + bs] = ctx.read_tensor(self._eval_y)[: len(x) - start]
        return out

    def evaluate(self, x: Any, y: Any) -> float:
        """The accuracy on ``(x, y)`` for softmax_cross_entropy; the mean squared error for mse."""
        x, y = self._check_data(x, y, "evaluate")
        pred = self.predict(x)
        if self.num_classes:
            return float(np.mean(np.argmax(pred, axis=1) == y))
        return float(np.mean((pred.astype(np.float64) - y) ** 2))

    # -- parameters ------------------------------------------------------------------------------------

    def parameters(self) -> dict[str, np.ndarray]:
        """The current parameters, read back from their tensors."""
        cur = self._sets[self._current]
        return {n: self.context.read_tensor(cur[f"param:{n}"]) for n in self._initial}

    def optimizer_state(self) -> dict[str, dict[str, np.ndarray]]:
        """The optimizer's current state per parameter, read back from its tensors."""
        cur = self._sets[self._current]
        return {n: {k: self.context.read_tensor(cur[f"state:{n}:{k}"]) for k in s} for n, s in self._states.items()}

    def set_parameters(self, params: Mapping[str, Any]) -> None:
        """Replace the parameters with ``params`` (the same names and shapes as the model's, finite float32).

        The optimizer's state and the step count are kept (see
        :meth:`reset_optimizer_state`).  Federated clients use this to start
        each round from the global model.

        >>> import numpy as np, webml
        >>> from webml.train import Trainer, SGD
        >>> def forward(b, params, x):
        ...     return b.matmul(x, params["w"])
        >>> t = Trainer(webml.ml.create_context(), forward, {"w": np.zeros((2, 1), np.float32)}, SGD(0.1),
        ...             loss="mse", batch_size=1, input_shape=[2])
        >>> t.set_parameters({"w": np.array([[1], [2]], np.float32)})
        >>> t.predict(np.array([[1, 1]], np.float32))
        array([[3.]], dtype=float32)
        >>> t.set_parameters({"w": np.zeros((1, 2), np.float32)})
        Traceback (most recent call last):
        ...
        ValueError: set_parameters: parameter 'w' has shape [1, 2], the model expects [2, 1]
        """
        checked = _check_params(params, "set_parameters")
        self._check_names_and_shapes(checked, "set_parameters", "given")
        self._write_parameters(checked)

    def reset_optimizer_state(self) -> None:
        """Start the optimizer afresh from the current parameters: its initial state and a step count of 0."""
        cur = self._sets[self._current]
        current = self.parameters()
        for n, a in current.items():
            for k, v in _check_state(self.optimizer, n, a).items():
                self.context.write_tensor(cur[f"state:{n}:{k}"], v)
        self.context.write_tensor(cur["step"], np.zeros((), np.float32))

    def _check_names_and_shapes(
        self, params: Mapping[str, np.ndarray], where: str, what: str, held: str = ""
    ) -> None:
        missing = [n for n in self._initial if n not in params]
        extra = [n for n in params if n not in self._initial]
        if missing or extra:
            raise ValueError(
                f"{where}: the {what} parameters do not match the model's: "
                + "; ".join(
                    p for p in (f"missing {missing}" if missing else "", f"unexpected {extra}" if extra else "") if p
                )
            )
        for n, a in params.items():
            if a.shape != self._initial[n].shape:
                raise ValueError(
                    f"{where}: parameter {n!r} has shape {list(a.shape)}{held}, "
                    f"the model expects {list(self._initial[n].shape)}"
                )

    def _write_parameters(self, params: Mapping[str, np.ndarray]) -> None:
        cur = self._sets[self._current]
        for n, a in params.items():
            self.context.write_tensor(cur[f"param:{n}"], np.ascontiguousarray(a, np.float32))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the parameters to ``path`` (see :mod:`webml.train.parameter_file`)."""
        write_parameters(path, self.parameters())

    def load_parameters(self, path: str | os.PathLike[str]) -> None:
        """Load parameters saved by :meth:`save` into this trainer (names and shapes must match).

        The optimizer's state and the step count are kept.
        """
        params = read_parameters(path)
        self._check_names_and_shapes(params, f"load_parameters({os.fspath(path)!r})", "file's", " in the file")
        self._write_parameters(params)

    def close(self) -> None:
        """Destroy the trainer's graphs and tensors."""
        for graph in (self._train_graph, self._infer_graph):
            graph.destroy()
        for s in self._sets:
            for t in s.values():
                t.destroy()
        for t in (self._x, self._y, self._eval_x, self._eval_y):
            t.destroy()

    # -- checks ----------------------------------------------------------------------------------------------

    def _check_x(self, x: Any, where: str) -> np.ndarray:
        x = host_array(x, "float32", where, "x")  # the API's rule: float32 arrays, or numbers in lists
        if x.ndim == 0 or len(x) == 0:
            raise ValueError(f"{where}: x is empty")
        if list(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"{where}: x has shape {list(x.shape)}, expected [N, {', '.join(map(str, self.input_shape))}] "
                f"(input_shape {self.input_shape})"
            )
        return np.ascontiguousarray(x)

    def _check_data(self, x: Any, y: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
        x = self._check_x(x, where)
        given, y = y, np.asarray(y)
        if y.ndim == 0 or len(y) != len(x):
            raise ValueError(f"{where}: x has {len(x)} samples but y has {len(y) if y.ndim else 0}")
        if self.num_classes:
            if y.ndim != 1:
                raise ValueError(f"{where}: labels must be class indices of shape [N], got shape {list(y.shape)}")
            if y.dtype.kind not in "iu":
                raise TypeError(f"{where}: labels must be integers (class indices), got dtype {y.dtype}")
            bad = (y < 0) | (y >= self.num_classes)
            if bad.any():
                i = int(np.argmax(bad))
                raise ValueError(
                    f"{where}: label {int(y[i])} at index {i} is out of range [0, {self.num_classes}) "
                    f"(the model has {self.num_classes} classes)"
                )
            return x, y.astype(np.int32)
        if list(y.shape[1:]) != self.output_shape:
            raise ValueError(
                f"{where}: targets have shape {list(y.shape)}, the model's output is [N, "
                f"{', '.join(map(str, self.output_shape))}]"
            )
        return x, np.ascontiguousarray(host_array(given, "float32", where, "y"))


# -- helpers ---------------------------------------------------------------------------------------------


def _positive_int(value: Any, name: str, where: str = "Trainer") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{where}: {name} must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{where}: {name} must be at least 1, got {value}")
    return int(value)


def _check_params(params: Any, where: str) -> dict[str, np.ndarray]:
    if not isinstance(params, Mapping) or not params:
        raise TypeError(f"{where}: params must be a non-empty dict of name -> array")
    out = {}
    for name, value in params.items():
        if not isinstance(name, str) or not name or ":" in name:
            raise TypeError(f"{where}: parameter names must be non-empty strings without ':', got {name!r}")
        if isinstance(value, np.ndarray) and value.dtype.kind not in "fiu":
            raise TypeError(f"{where}: parameter {name!r} must be a float array, got dtype {value.dtype}")
        # The API's rule for host data, then a copy: the caller's arrays are not aliased.
        array = np.array(host_array(value, "float32", where, f"parameter {name!r}"))
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{where}: parameter {name!r} has non-finite values")
        out[name] = array
    return out


def _check_state(optimizer: Optimizer, name: str, param: np.ndarray) -> dict[str, np.ndarray]:
    state = optimizer.init_state(param)
    checked = {}
    for k, v in state.items():
        if not isinstance(k, str) or not k or ":" in k:
            raise TypeError(f"Trainer: {type(optimizer).__name__} state names must be strings without ':', got {k!r}")
        checked[k] = np.array(v, np.float32)
    return checked
