"""js/src/media.js's frame pieces (addFrameInput, planeTensors) through the JS client and a real webml serve:
the same model input as webml.media.colour.model_input builds in Python, for I420 and NV12 planes laid out as
VideoFrame.copyTo lays them (copyPlanes itself runs on real VideoFrames in js/test/media.test.js)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import webml
from webml.media.colour import Preprocess, add_frame_inputs, model_input
from webml.media.frames import ColourSpace, frame_layout
from webml.serve.testing import TOKEN, make_service, running
from wgsl_tools import ensure_npm, tool

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = """
import { readFileSync } from "node:fs";
import { connect, MLGraphBuilder, addFrameInput, planeTensors } from "./js/src/index.js";
const [url, token, headerPath, dataPath, optionsJson] = process.argv.slice(1);
const header = JSON.parse(readFileSync(headerPath, "utf8"));
const data = new Uint8Array(readFileSync(dataPath));
const ml = await connect({ url, token });
const context = await ml.createContext();
const b = new MLGraphBuilder(context);
const x = addFrameInput(b, header, JSON.parse(optionsJson));
const graph = await b.build({ x });
const inputs = await planeTensors(context, { header, data });
const out = await context.createTensor({ dataType: "float32", shape: x.shape, readable: true });
context.dispatch(graph, inputs, { x: out });
const values = Array.from(new Float32Array(await context.readTensor(out)));
console.log(JSON.stringify({ shape: x.shape, names: Object.keys(inputs), values }));
ml.close();
"""


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    svc = make_service(tmp_path_factory.mktemp("serve"))
    with running(svc) as server:
        yield f"ws://127.0.0.1:{server.port}/webnn"


def _copy_to_layout(planes: list[np.ndarray], pads: list[int]) -> tuple[list[dict[str, int]], bytes]:
    """Planes packed one after another with ``pads`` extra bytes a row, as copyTo may lay them out."""
    rng = np.random.default_rng(3)
    layout, parts, offset = [], [], 0
    for plane, pad in zip(planes, pads):
        rows, width = plane.shape
        padded = rng.integers(0, 256, (rows, width + pad), dtype=np.uint8)
        padded[:, :width] = plane
        layout.append({"offset": offset, "stride": width + pad})
        parts.append(padded.tobytes())
        offset += padded.nbytes
    return layout, b"".join(parts)


@pytest.mark.parametrize(
    "format, colour, options",
    [
        (
            "I420",
            {"matrix": "smpte170m", "fullRange": False},
            {"size": [20, 24], "mean": [127, 127, 127], "std": [128] * 3},
        ),
        (
            "NV12",
            {"matrix": "bt709", "fullRange": True},
            {"size": [32, 48], "mean": [124, 116, 104], "std": [58, 57, 57], "layout": "nhwc"},
        ),
    ],
)
def test_js_frame_pieces_match_python(url: str, tmp_path: Path, format: str, colour: dict, options: dict) -> None:
    width, height = 64, 48
    rng = np.random.default_rng(18)
    y = rng.integers(16, 236, (height, width), dtype=np.uint8)
    u, v = (rng.integers(16, 241, (height // 2, width // 2), dtype=np.uint8) for _ in range(2))
    planes = [y, u, v] if format == "I420" else [y, np.stack([u, v], axis=-1).reshape(height // 2, width)]
    layout, data = _copy_to_layout(planes, [16, 8, 8][: len(planes)])
    header = {"format": format, "width": width, "height": height, "layout": layout, "colorSpace": colour}
    (tmp_path / "header.json").write_text(json.dumps(header))
    (tmp_path / "planes.bin").write_bytes(data)
    ensure_npm(ROOT / "js")
    done = subprocess.run(
        [
            tool("node"),
            "--input-type=module",
            "-e",
            SCRIPT,
            url,
            TOKEN,
            str(tmp_path / "header.json"),
            str(tmp_path / "planes.bin"),
            json.dumps(options),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout)
    # Python's pieces on the same memory (the layout's strides, views of the same bytes).
    fl = frame_layout(format, width, height, [p["stride"] for p in layout])
    arrays = [
        np.frombuffer(data, np.uint8, p.rows * p.row_bytes, d["offset"]).reshape(p.rows, p.row_bytes)
        for p, d in zip(fl.planes, layout)
    ]
    context = webml.ml.create_context(backend="onnxruntime")
    b = webml.MLGraphBuilder(context)
    space = ColourSpace(
        "bt709" if colour["matrix"] == "bt709" else "bt601", "full" if colour["fullRange"] else "limited"
    )
    pre = Preprocess(
        size=tuple(options["size"]),
        mean=tuple(map(float, options["mean"])),
        std=tuple(map(float, options["std"])),
        layout=options.get("layout", "nchw"),
    )
    graph = b.build({"x": model_input(b, add_frame_inputs(b, fl), fl, space, pre)})
    expected = context.compute(graph, {f"frame_{p.name}": a for p, a in zip(fl.planes, arrays)})["x"]
    assert got["names"] == [f"frame_{p.name}" for p in fl.planes]
    assert got["shape"] == list(expected.shape)
    np.testing.assert_allclose(np.array(got["values"], np.float32).reshape(expected.shape), expected, atol=1e-4)
