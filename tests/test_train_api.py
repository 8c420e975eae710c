"""The training API: losses, optimizers, and the Trainer (every step one WebNN graph)."""

from __future__ import annotations

import doctest
import io
import itertools

import numpy as np
import pytest

import webml
import webml.train.losses
import webml.train.optimizers
import webml.train.parameter_file
import webml.train.trainer
from gradcheck import check_gradients
from webml.train import SGD, Adam, AdamW, Trainer, mean_squared_error, read_parameters, softmax_cross_entropy

rng = np.random.default_rng(6)


@pytest.mark.parametrize(
    "module", [webml.train.losses, webml.train.optimizers, webml.train.trainer, webml.train.parameter_file]
)
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# -- losses ---------------------------------------------------------------------------


def _np_cross_entropy(logits, labels):
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_softmax = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -log_softmax[np.arange(len(labels)), labels].mean()


def _compute_loss(backend, fn, feeds, descs):
    ctx = webml.ml.create_context(backend=backend)
    b = webml.MLGraphBuilder(ctx)
    ops = {n: b.input(n, d) for n, d in descs.items()}
    loss = fn(b, *ops.values())
    assert loss.shape == [] and loss.data_type == "float32"
    return float(ctx.compute(b.build({"loss": loss}), feeds)["loss"])


@pytest.mark.parametrize("backend", ["onnxruntime", "reference"])
@pytest.mark.parametrize("scale", [1.0, 1000.0])  # 1000: exp would overflow without the max shift
def test_softmax_cross_entropy_value(backend, scale):
    logits = (rng.standard_normal((5, 4)) * scale).astype(np.float32)
    labels = np.array([0, 3, 1, 1, 2], np.int32)
    got = _compute_loss(
        backend,
        softmax_cross_entropy,
        {"logits": logits, "labels": labels},
        {"logits": {"dataType": "float32", "shape": [5, 4]}, "labels": {"dataType": "int32", "shape": [5]}},
    )
    assert np.isfinite(got)
    np.testing.assert_allclose(got, _np_cross_entropy(logits, labels), rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("backend", ["onnxruntime", "reference"])
def test_mean_squared_error_value(backend):
    p = rng.standard_normal((3, 2, 2)).astype(np.float32)
    t = rng.standard_normal((3, 2, 2)).astype(np.float32)
    desc = {"dataType": "float32", "shape": [3, 2, 2]}
    got = _compute_loss(backend, mean_squared_error, {"p": p, "t": t}, {"p": desc, "t": desc})
    np.testing.assert_allclose(got, np.mean((p.astype(np.float64) - t) ** 2), rtol=1e-6)


def test_softmax_cross_entropy_gradient():
    labels = np.array([2, 0, 1], np.int32)

    def build(b, logits):
        y = b.constant({"dataType": "int32", "shape": [3]}, labels)
        return softmax_cross_entropy(b, logits, y)

    logits = rng.standard_normal((3, 4))
    check_gradients(build, {"logits": logits})
    # And the closed form: (softmax - one_hot) / N.
    ctx = webml.ml.create_context(backend="reference", float64=True)
    b = webml.MLGraphBuilder(ctx)
    x = b.input("x", {"dataType": "float32", "shape": [3, 4]})
    (dx,) = webml.train.grad(b, build(b, x), [x])
    got = ctx.compute(b.build({"dx": dx}), {"x": logits})["dx"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected = (e / e.sum(axis=1, keepdims=True) - np.eye(4)[labels]) / 3
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-12)  # 1/N is a float32 constant


def test_mean_squared_error_gradient():
    check_gradients(
        lambda b, p, t: mean_squared_error(b, p, t),
        {"p": rng.standard_normal((4, 3)), "t": rng.standard_normal((4, 3))},
    )


def test_loss_errors():
    ctx = webml.ml.create_context(backend="reference")
    b = webml.MLGraphBuilder(ctx)
    logits = b.input("l", {"dataType": "float32", "shape": [4, 3]})
    with pytest.raises(TypeError, match=r"labels must have shape \[4\]"):
        softmax_cross_entropy(b, logits, b.input("y", {"dataType": "int32", "shape": [3]}))
    with pytest.raises(TypeError, match="labels must be int32"):
        softmax_cross_entropy(b, logits, b.input("yf", {"dataType": "float32", "shape": [4]}))
    with pytest.raises(TypeError, match=r"shape \[N, C\]"):
        softmax_cross_entropy(
            b, b.input("l3", {"dataType": "float32", "shape": [4]}), b.input("y4", {"dataType": "int32", "shape": [4]})
        )
    with pytest.raises(TypeError, match="differs from prediction shape"):
        mean_squared_error(b, logits, b.input("t", {"dataType": "float32", "shape": [4, 1]}))


# -- optimizers ---------------------------------------------------------------------------


def _np_sgd(p, g, state, t, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    g = g + weight_decay * p
    new_state = {}
    if momentum:
        v = momentum * state["velocity"] + g
        new_state["velocity"] = v
        g = g + momentum * v if nesterov else v
    return p - lr * g, new_state


def _np_adam(p, g, state, t, lr=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.0):
    p = p * (1 - lr * weight_decay)
    m = beta1 * state["m"] + (1 - beta1) * g
    v = beta2 * state["v"] + (1 - beta2) * g * g
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return p - lr * m_hat / (np.sqrt(v_hat) + epsilon), {"m": m, "v": v}


OPTIMIZERS = [
    (SGD(0.1), lambda *a: _np_sgd(*a, lr=0.1)),
    (SGD(0.05, weight_decay=0.1), lambda *a: _np_sgd(*a, lr=0.05, weight_decay=0.1)),
    (SGD(0.1, momentum=0.9), lambda *a: _np_sgd(*a, lr=0.1, momentum=0.9)),
    (
        SGD(0.1, momentum=0.8, nesterov=True, weight_decay=0.01),
        lambda *a: _np_sgd(*a, lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.01),
    ),
    (Adam(), lambda *a: _np_adam(*a)),
    (
        Adam(0.01, beta1=0.8, beta2=0.99, epsilon=1e-6),
        lambda *a: _np_adam(*a, lr=0.01, beta1=0.8, beta2=0.99, epsilon=1e-6),
    ),
    (AdamW(0.01), lambda *a: _np_adam(*a, lr=0.01, weight_decay=0.01)),
    (AdamW(0.02, weight_decay=0.5), lambda *a: _np_adam(*a, lr=0.02, weight_decay=0.5)),
]


@pytest.mark.parametrize("backend", ["onnxruntime", "reference"])
@pytest.mark.parametrize(("optimizer", "reference"), OPTIMIZERS, ids=[repr(o) for o, _ in OPTIMIZERS])
def test_optimizer_steps(backend, optimizer, reference):
    """Three steps of the emitted update against NumPy (the step count drives Adam's bias correction)."""
    shape = [3, 2]
    ctx = webml.ml.create_context(backend=backend)
    b = webml.MLGraphBuilder(ctx)
    desc = {"dataType": "float32", "shape": shape}
    p = b.input("p", desc)
    g = b.input("g", desc)
    state0 = optimizer.init_state(np.zeros(shape, np.float32))
    assert sorted(state0) == sorted(optimizer.state_names)
    state = {k: b.input(f"s_{k}", {"dataType": "float32", "shape": list(v.shape)}) for k, v in state0.items()}
    t = b.input("t", {"dataType": "float32", "shape": []})
    new_p, new_state = optimizer.update(b, p, g, state, t)
    graph = b.build({"p": new_p, **{f"s_{k}": v for k, v in new_state.items()}})
    param = rng.standard_normal(shape).astype(np.float32)
    ours, theirs = param, param.astype(np.float64)
    s_ours, s_theirs = state0, {k: v.astype(np.float64) for k, v in state0.items()}
    for step in (1, 2, 3):
        grad = rng.standard_normal(shape).astype(np.float32)
        feeds = {"p": ours, "g": grad, "t": np.float32(step), **{f"s_{k}": v for k, v in s_ours.items()}}
        out = ctx.compute(graph, {k: v for k, v in feeds.items() if k in graph.input_descriptors})  # SGD ignores t
        ours, s_ours = out["p"], {k: out[f"s_{k}"] for k in s_ours}
        theirs, s_theirs = reference(theirs, grad.astype(np.float64), s_theirs, step)
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6, err_msg=f"step {step}")
        for k in s_ours:
            np.testing.assert_allclose(s_ours[k], s_theirs[k], rtol=1e-5, atol=1e-7, err_msg=f"{k} at step {step}")


def test_optimizer_errors():
    with pytest.raises(ValueError, match="momentum"):
        SGD(0.1, momentum=1.0)
    with pytest.raises(ValueError, match="nesterov"):
        SGD(0.1, nesterov=True)
    with pytest.raises(ValueError, match="learning_rate"):
        Adam(-1.0)
    with pytest.raises(TypeError, match="beta1"):
        Adam(beta1="0.9")
    with pytest.raises(ValueError, match="weight_decay"):
        AdamW(weight_decay=-0.1)


# -- the Trainer ------------------------------------------------------------------------------


def _mlp(sizes, seed=0):
    r = np.random.default_rng(seed)
    params = {}
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        params[f"w{i}"] = (r.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(np.float32)
        params[f"b{i}"] = np.zeros(n_out, np.float32)
    layers = len(sizes) - 1

    def forward(b, p, x):
        for i in range(layers):
            x = b.add(b.matmul(x, p[f"w{i}"]), p[f"b{i}"])
            if i < layers - 1:
                x = b.relu(x)
        return x

    return forward, params


def _digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int32)
    order = np.random.default_rng(0).permutation(len(x))  # a fixed split: 1347 train, 450 test
    train, test = order[:1347], order[1347:]
    return x[train], y[train], x[test], y[test]


def test_mlp_on_digits():
    x_train, y_train, x_test, y_test = _digits()
    forward, params = _mlp([64, 64, 10])
    ctx = webml.ml.create_context(intra_op_threads=2)
    trainer = Trainer(ctx, forward, params, Adam(3e-3), batch_size=32, input_shape=[64], eval_batch_size=150)
    history = trainer.fit(x_train, y_train, epochs=20, validation_data=(x_test, y_test), seed=0, progress=False)
    accuracy = trainer.evaluate(x_test, y_test)
    assert accuracy >= 0.95, history
    assert accuracy == history["val_accuracy"][-1]
    assert history["loss"][-1] < history["loss"][0] / 5
    assert history["epochs"] == 20 and len(history["loss"]) == 20
    assert trainer.steps == 20 * (1347 // 32)


def test_no_host_round_trip_per_step():
    """During fit, a step writes only its batch (x, y) and reads nothing; the loss is read once per epoch."""
    x_train, y_train, _, _ = _digits()
    forward, params = _mlp([64, 16, 10])
    ctx = webml.ml.create_context()
    trainer = Trainer(ctx, forward, params, Adam(), batch_size=64, input_shape=[64])
    backend = ctx._backend
    calls = {"read": [], "write": [], "dispatch": 0}
    real_read, real_write, real_dispatch = backend.read_tensor, backend.write_tensor, ctx.dispatch

    def read(handle):
        calls["read"].append(handle)
        return real_read(handle)

    def write(handle, array):
        calls["write"].append(array.shape)
        return real_write(handle, array)

    def dispatch(*args):
        calls["dispatch"] += 1
        return real_dispatch(*args)

    backend.read_tensor, backend.write_tensor, ctx.dispatch = read, write, dispatch
    try:
        trainer.fit(x_train, y_train, epochs=3, seed=1, progress=False)
    finally:
        del backend.read_tensor, backend.write_tensor, ctx.dispatch
    steps = 3 * (len(x_train) // 64)
    assert calls["dispatch"] == steps
    batch_writes = [s for s in calls["write"] if s in ((64, 64), (64,))]
    assert len(batch_writes) == 2 * steps
    assert len(calls["write"]) - len(batch_writes) == 3  # resetting the loss sum, once per epoch
    assert len(calls["read"]) == 3  # the epoch's loss


def test_same_step_on_both_backends():
    forward, params = _mlp([8, 6, 3], seed=3)
    x = rng.standard_normal((40, 8)).astype(np.float32)
    y = rng.integers(0, 3, 40).astype(np.int32)
    results = {}
    for backend in ("onnxruntime", "reference"):
        ctx = webml.ml.create_context(backend=backend)
        trainer = Trainer(ctx, forward, params, AdamW(0.01), batch_size=10, input_shape=[8])
        for i in range(4):
            trainer.train_step(x[i * 10 : (i + 1) * 10], y[i * 10 : (i + 1) * 10])
        results[backend] = (trainer.parameters(), trainer.optimizer_state(), trainer.steps)
    (p1, s1, n1), (p2, s2, n2) = results["onnxruntime"], results["reference"]
    assert n1 == n2 == 4
    for name in params:
        assert not np.allclose(p1[name], params[name])  # it trained
        np.testing.assert_allclose(p1[name], p2[name], rtol=1e-5, atol=1e-6, err_msg=name)
        for k in ("m", "v"):
            np.testing.assert_allclose(s1[name][k], s2[name][k], rtol=1e-4, atol=1e-7, err_msg=f"{name}.{k}")


def test_mse_regression_and_sgd_without_state():
    w_true = rng.standard_normal((3, 2)).astype(np.float32)
    x = rng.standard_normal((96, 3)).astype(np.float32)
    y = x @ w_true + 0.5

    def forward(b, p, x):
        return b.add(b.matmul(x, p["w"]), p["b"])

    ctx = webml.ml.create_context()
    params = {"w": np.zeros((3, 2), np.float32), "b": np.zeros(2, np.float32)}
    trainer = Trainer(ctx, forward, params, SGD(0.1), loss="mse", batch_size=16, input_shape=[3])
    history = trainer.fit(x, y, epochs=40, validation_data=(x, y), seed=0, progress=False)
    assert history["val_mse"][-1] < 1e-6
    assert trainer.evaluate(x, y) == pytest.approx(history["val_mse"][-1])
    np.testing.assert_allclose(trainer.parameters()["w"], w_true, atol=1e-3)
    np.testing.assert_allclose(trainer.predict(x[:5]), y[:5], atol=1e-3)
    assert trainer.optimizer_state() == {"w": {}, "b": {}}


def test_predict_pads_the_last_batch():
    forward, params = _mlp([4, 3])
    ctx = webml.ml.create_context()
    trainer = Trainer(ctx, forward, params, SGD(0.1), batch_size=8, input_shape=[4])
    x = rng.standard_normal((13, 4)).astype(np.float32)
    expected = x @ params["w0"] + params["b0"]
    np.testing.assert_allclose(trainer.predict(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(trainer.predict(x[:1]), expected[:1], rtol=1e-5, atol=1e-6)


def test_save_and_load(tmp_path):
    forward, params = _mlp([5, 4, 3])
    x = rng.standard_normal((20, 5)).astype(np.float32)
    y = rng.integers(0, 3, 20).astype(np.int32)
    ctx = webml.ml.create_context()
    trainer = Trainer(ctx, forward, params, Adam(0.01), batch_size=5, input_shape=[5])
    trainer.fit(x, y, epochs=2, progress=False)
    trained = trainer.parameters()
    path = tmp_path / "model.npz"
    trainer.save(path)
    loaded = read_parameters(path)
    assert list(loaded) == list(params)
    for n in params:
        np.testing.assert_array_equal(loaded[n], trained[n])

    other = Trainer(ctx, forward, params, Adam(0.01), batch_size=5, input_shape=[5])
    np.testing.assert_array_equal(other.parameters()["w0"], params["w0"])
    other.load_parameters(path)
    for n in params:
        np.testing.assert_array_equal(other.parameters()[n], trained[n])
    np.testing.assert_array_equal(other.predict(x), trainer.predict(x))

    # Mismatches: other shapes, other names, not a parameter file, another version.
    forward2, params2 = _mlp([5, 6, 3])
    wider = Trainer(ctx, forward2, params2, Adam(), batch_size=5, input_shape=[5])
    with pytest.raises(ValueError, match=r"'w0' has shape \[5, 4\] in the file, the model expects \[5, 6\]"):
        wider.load_parameters(path)
    forward3, params3 = _mlp([5, 3])
    smaller = Trainer(ctx, forward3, params3, Adam(), batch_size=5, input_shape=[5])
    with pytest.raises(ValueError, match=r"unexpected \['w1', 'b1'\]"):
        smaller.load_parameters(path)
    np.savez(tmp_path / "plain.npz", w0=params["w0"])
    with pytest.raises(ValueError, match="not a webml parameter file"):
        other.load_parameters(tmp_path / "plain.npz")
    np.savez(
        tmp_path / "v9.npz", format=np.array(webml.train.parameter_file.FORMAT), version=np.array(9), names=np.array([])
    )
    with pytest.raises(ValueError, match="format version 9 is not supported"):
        read_parameters(tmp_path / "v9.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a parameter file"):
        read_parameters(tmp_path / "junk.npz")


def test_early_stopping_restores_the_best_parameters():
    forward, params = _mlp([4, 3])
    r = np.random.default_rng(0)
    x = r.standard_normal((32, 4)).astype(np.float32)
    y = r.integers(0, 3, 32).astype(np.int32)
    ctx = webml.ml.create_context()
    # A huge learning rate: the accuracy soon gets worse.
    trainer = Trainer(ctx, forward, params, SGD(50.0), batch_size=8, input_shape=[4])
    snapshots = []
    real_evaluate = trainer.evaluate

    def evaluate(xv, yv):
        snapshots.append(trainer.parameters())
        return real_evaluate(xv, yv)

    trainer.evaluate = evaluate
    history = trainer.fit(x, y, epochs=50, validation_data=(x, y), early_stopping_patience=2, progress=False, seed=0)
    accuracies = history["val_accuracy"]
    best = int(np.argmax(accuracies))  # the first best
    assert history["best_epoch"] == best + 1
    assert history["epochs"] == len(accuracies) < 50
    assert history["epochs"] - history["best_epoch"] == 2
    for n, a in trainer.parameters().items():
        np.testing.assert_array_equal(a, snapshots[best][n])


def test_progress_bar():
    forward, params = _mlp([4, 3])
    x = rng.standard_normal((20, 4)).astype(np.float32)
    y = rng.integers(0, 3, 20).astype(np.int32)
    trainer = Trainer(webml.ml.create_context(), forward, params, SGD(0.1), batch_size=4, input_shape=[4])
    stream = io.StringIO()
    trainer.fit(x, y, epochs=2, validation_data=(x, y), progress=stream)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/2 [") and "5/5" in lines[0]
    assert "loss " in lines[1] and "val_accuracy " in lines[1]


def test_progress_bar_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    forward, params = _mlp([4, 3])
    x = rng.standard_normal((20, 4)).astype(np.float32)
    y = rng.integers(0, 3, 20).astype(np.int32)
    trainer = Trainer(webml.ml.create_context(), forward, params, SGD(0.1), batch_size=4, input_shape=[4])
    stream = Terminal()
    trainer.fit(x, y, epochs=2, progress=stream)
    text = stream.getvalue()
    assert text.count("\n") == 2 and "\r" in text  # redrawn in place, one final line per epoch
    assert "epoch 2/2 [========================] 5/5 loss " in text


def test_bad_input():
    forward, params = _mlp([4, 3])
    ctx = webml.ml.create_context()
    trainer = Trainer(ctx, forward, params, SGD(0.1), batch_size=8, input_shape=[4])
    x = rng.standard_normal((10, 4)).astype(np.float32)
    y = rng.integers(0, 3, 10).astype(np.int32)
    with pytest.raises(ValueError, match=r"x has shape \[10, 5\], expected \[N, 4\]"):
        trainer.fit(np.zeros((10, 5), np.float32), y, progress=False)
    with pytest.raises(ValueError, match="x has 10 samples but y has 9"):
        trainer.fit(x, y[:9], progress=False)
    with pytest.raises(ValueError, match=r"label 3 at index 2 is out of range \[0, 3\)"):
        trainer.fit(x, np.array([0, 1, 3, 0, 0, 0, 0, 0, 0, 0]), progress=False)
    with pytest.raises(ValueError, match=r"label -1 at index 0 is out of range"):
        trainer.evaluate(x, np.full(10, -1))
    with pytest.raises(TypeError, match="labels must be integers"):
        trainer.fit(x, y.astype(np.float32), progress=False)
    with pytest.raises(ValueError, match="x is empty"):
        trainer.fit(np.zeros((0, 4), np.float32), np.zeros(0, np.int32), progress=False)
    with pytest.raises(ValueError, match="x is empty"):
        trainer.predict(np.zeros((0, 4), np.float32))
    with pytest.raises(ValueError, match="batch_size 8 is larger than the 5 training samples"):
        trainer.fit(x[:5], y[:5], progress=False)
    with pytest.raises(ValueError, match="the batch has 10 samples, the trainer's batch_size is 8"):
        trainer.train_step(x, y)
    with pytest.raises(TypeError, match="validation_data must be a pair"):
        trainer.fit(x, y, validation_data=x, progress=False)
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        trainer.fit(x, y, epochs=0, progress=False)
    # Construction.
    with pytest.raises(ValueError, match="loss must be one of"):
        Trainer(ctx, forward, params, SGD(0.1), loss="hinge", input_shape=[4])
    with pytest.raises(TypeError, match="optimizer must be"):
        Trainer(ctx, forward, params, "adam", input_shape=[4])
    with pytest.raises(TypeError, match="params must be a non-empty dict"):
        Trainer(ctx, forward, {}, SGD(0.1), input_shape=[4])
    with pytest.raises(TypeError, match="must be a float array"):
        Trainer(ctx, forward, {**params, "s": np.array(["a"])}, SGD(0.1), input_shape=[4])
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        Trainer(ctx, forward, params, SGD(0.1), batch_size=0, input_shape=[4])
    with pytest.raises(TypeError, match=r"\[batch, classes\] logits"):
        Trainer(
            ctx, lambda b, p, x: b.reshape(forward(b, p, x), [8, 3, 1]), params, SGD(0.1), batch_size=8, input_shape=[4]
        )
    with pytest.raises(TypeError, match="matmul: a.s columns"):  # the builder's own message
        Trainer(ctx, forward, params, SGD(0.1), input_shape=[5])
    mse = Trainer(ctx, forward, params, SGD(0.1), loss="mse", batch_size=8, input_shape=[4])
    with pytest.raises(ValueError, match=r"targets have shape \[10\], the model's output is \[N, 3\]"):
        mse.fit(x, y, progress=False)
