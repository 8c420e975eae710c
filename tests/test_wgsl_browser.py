"""WGSL in the browser: Tint (Dawn, Chromium's WebGPU) accepts the kernels, and Chromium runs them right.

The webgpu backend runs its WGSL on wgpu (naga); these tests hold the same WGSL to the browser's
compiler and run kernels in headless Chromium's WebGPU (SwiftShader).  See tests/browser/README.md.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from webml.conformance import wpt
from webml.conformance.data import conformance_files
from wgsl_tools import BROWSER, BrowserToolError, ensure_npm, run_in_chromium, tint_errors

ADD = """\
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
    let i = gid.x;
    if (i < arrayLength(&out)) {
        out[i] = a[i] + b[i];
    }
}
"""

# out[m, n] = sum_k a[m, k] * b[k, n], row-major; the sizes in a uniform.
MATMUL = """\
struct Sizes { m: u32, k: u32, n: u32, pad: u32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> sizes: Sizes;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3u) {
    let row = gid.y;
    let col = gid.x;
    if (row >= sizes.m || col >= sizes.n) {
        return;
    }
    var acc = 0.0;
    for (var k = 0u; k < sizes.k; k++) {
        acc += a[row * sizes.k + k] * b[k * sizes.n + col];
    }
    out[row * sizes.n + col] = acc;
}
"""

F16_SCALE = """\
enable f16;

@group(0) @binding(0) var<storage, read_write> x: array<f16>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
    if (gid.x < arrayLength(&x)) {
        x[gid.x] = x[gid.x] * 0.5h;
    }
}
"""

SUBGROUP_SUM = """\
enable subgroups;

@group(0) @binding(0) var<storage, read_write> x: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) i: u32) {
    x[i] = subgroupAdd(x[i]);
}
"""

rng = np.random.default_rng(20250514)


# -- Tint (Dawn for Node.js) ------------------------------------------------------------------


def test_tint_accepts_good_kernels():
    assert tint_errors({"add": ADD, "matmul": MATMUL, "f16_scale": F16_SCALE, "subgroup_sum": SUBGROUP_SUM}) == {}


def test_tint_rejects_a_broken_kernel_and_says_why():
    broken = ADD.replace("out[i] = a[i] + b[i];", "out[i] = a[i] + 1u;")
    errors = tint_errors({"add": ADD, "broken": broken})
    assert list(errors) == ["broken"]
    assert len(errors["broken"]) == 1
    # line 9 of the source, with Tint's wording.
    assert errors["broken"][0].startswith("9:")
    assert "no matching overload for 'operator + (f32, u32)'" in errors["broken"][0]


def test_tint_rejects_what_only_pipeline_creation_sees():
    """Compiling is not enough: the compute pipeline (entry point main, default limits) must be made too."""
    too_wide = ADD.replace("@workgroup_size(64)", "@workgroup_size(1024)")
    misnamed = ADD.replace("fn main(", "fn add(")
    errors = tint_errors({"too_wide": too_wide, "misnamed": misnamed})
    assert sorted(errors) == ["misnamed", "too_wide"]
    assert "exceeds the maximum allowed" in " ".join(errors["too_wide"])
    assert "doesn't exist" in " ".join(errors["misnamed"])


def test_tint_needs_enable_subgroups():
    """The dialect difference with naga: Tint wants `enable subgroups;`, which naga (wgpu 0.32) rejects."""
    errors = tint_errors({"bare": SUBGROUP_SUM.replace("enable subgroups;\n", "")})
    assert list(errors) == ["bare"]
    # "cannot call built-in function 'subgroupAdd' without extension 'subgroups'"
    assert "without extension 'subgroups'" in errors["bare"][0]


def test_tint_errors_raises_on_a_broken_input():
    with pytest.raises(BrowserToolError, match="not a string"):
        tint_errors({"number": 3})  # type: ignore[dict-item]


# -- the JavaScript side's own tests --------------------------------------------------------


def test_node_test_suite_passes():
    ensure_npm()
    done = subprocess.run(
        ["node", "--test", str(BROWSER)], cwd=BROWSER.parent.parent, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout
    assert "# pass 0" not in done.stdout


# -- headless Chromium's WebGPU -------------------------------------------------------------


def _floats(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype=np.float32).tobytes()


A = rng.standard_normal(1000).astype(np.float32)
B = rng.standard_normal(1000).astype(np.float32)
M, K, N = 13, 21, 9
# Small integers: every product and partial sum is exact in float32, whatever the order of summing.
MA = rng.integers(-8, 9, (M, K)).astype(np.float32)
MB = rng.integers(-8, 9, (K, N)).astype(np.float32)
# Random values: summed in another order than NumPy's, so equal within float32 rounding.
RA = rng.standard_normal((M, K)).astype(np.float32)
RB = rng.standard_normal((K, N)).astype(np.float32)


def _matmul_job(name: str, a: np.ndarray, b: np.ndarray) -> dict:
    m, k = a.shape
    n = b.shape[1]
    return {
        "name": name,
        "source": MATMUL,
        "bindings": [
            {"binding": 0, "type": "read-only-storage", "data": _floats(a)},
            {"binding": 1, "type": "read-only-storage", "data": _floats(b)},
            {"binding": 2, "type": "storage", "size": m * n * 4},
            {"binding": 3, "type": "uniform", "data": np.array([m, k, n, 0], np.uint32)},
        ],
        "workgroups": [-(-n // 8), -(-m // 8), 1],
        "read": [2],
    }


@pytest.fixture(scope="module")
def chromium_results():
    """One browser run for the jobs of this file."""
    jobs = [
        {
            "name": "add",
            "source": ADD,
            "bindings": [
                {"binding": 0, "type": "read-only-storage", "data": _floats(A)},
                {"binding": 1, "type": "read-only-storage", "data": _floats(B)},
                {"binding": 2, "type": "storage", "size": A.nbytes},
            ],
            "workgroups": [-(-A.size // 64), 1, 1],
            "read": [2],
        },
        _matmul_job("matmul_exact", MA, MB),
        _matmul_job("matmul_random", RA, RB),
    ]
    return run_in_chromium(jobs)


def test_chromium_add_equals_numpy(chromium_results):
    got = np.frombuffer(chromium_results["add"][2], np.float32)
    # One correctly rounded float32 addition each, in the browser as in NumPy.
    np.testing.assert_array_equal(got, A + B)


def test_chromium_matmul_equals_numpy(chromium_results):
    exact = np.frombuffer(chromium_results["matmul_exact"][2], np.float32).reshape(M, N)
    np.testing.assert_array_equal(exact, MA @ MB)
    random = np.frombuffer(chromium_results["matmul_random"][2], np.float32).reshape(M, N)
    np.testing.assert_allclose(random, RA.astype(np.float64) @ RB.astype(np.float64), rtol=1e-5, atol=1e-5)


def test_chromium_reports_a_failing_job():
    job = {"name": "broken", "source": ADD.replace("+ b[i]", "+ 1u"), "bindings": [], "workgroups": [1], "read": []}
    with pytest.raises(BrowserToolError, match=r"broken: 9:\d+: no matching overload"):
        run_in_chromium([job])


# -- every kernel of the webgpu backend -----------------------------------------------------


def test_tint_accepts_every_webgpu_kernel():
    """Every WGSL module the webgpu backend compiles for the WPT conformance cases is accepted by Tint.

    Runs all conformance files on the webgpu backend in this process, then checks what it compiled.
    """
    from webml.backends.webgpu.shaders import seen

    for path in conformance_files():
        wpt.run_file(path, "webgpu")
    sources = seen()
    assert sources, "the webgpu backend compiled no shader module"
    errors = tint_errors(sources)
    report = "\n".join(f"{name}: {messages[0]}" for name, messages in sorted(errors.items())[:20])
    assert errors == {}, f"Tint rejects {len(errors)} of {len(sources)} modules, such as:\n{report}"
