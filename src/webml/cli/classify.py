"""``webml classify [IMAGE ...]``: top-k ImageNet classes with EfficientNet-Lite0, or any ONNX image classifier."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..images import NORMALIZATIONS, model_input_preparer
from ..scores import top_classes
from . import CliError
from .common import Progress, load_onnx_model, read_onnx_model

#: Extensions of video files: ``webml classify`` classifies their frames as ``webml video`` does.
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mkv", ".webm", ".mov", ".avi", ".mpg", ".mpeg", ".ts", ".flv", ".y4m")
#: Classes printed per image unless --top-k says otherwise.
DEFAULT_TOP_K = 5


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "images", nargs="*", metavar="IMAGE",
        help="image files or folders of them, or one video file (each frame; as webml video) "
        "(default: a sample photo)",
    )
    p.add_argument(
        "--model",
        help="an ONNX image classifier, or a classifier trained by webml train (.npz), "
        "instead of the built-in EfficientNet-Lite0",
    )
    p.add_argument("--labels", help="with --model: a text file of class names, one per line")
    p.add_argument(
        "--normalize",
        choices=sorted(NORMALIZATIONS),
        help="with an ONNX --model: input normalization (default: imagenet, ImageNet mean/std; "
        "a model exported by webml train says its own)",
    )
    p.add_argument(
        "--top-k", type=int, help="how many classes to print, at most the model's (default: 5, or all if fewer)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object per image")


def expand_folders(paths: list[str]) -> list[str]:
    """Each folder among ``paths`` replaced by its image files (by extension, sorted; not its sub-folders)."""
    from webml.images import IMAGE_EXTENSIONS

    out: list[str] = []
    for path in paths:
        if not Path(path).is_dir():
            out.append(path)
            continue
        found = sorted(
            str(f)
            for f in Path(path).iterdir()
            if f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.startswith(".") and not f.is_dir()
        )
        if not found:
            raise CliError(f"{path!r} is a folder with no image files (they end in {', '.join(IMAGE_EXTENSIONS)})")
        out.extend(found)
    return out


def top_k(args: argparse.Namespace, classes: int, what: str) -> int:
    """``--top-k``, from 1 to the number of classes the model tells apart (default: 5, or all if fewer)."""
    if args.top_k is None:
        return min(DEFAULT_TOP_K, classes)
    if not 1 <= args.top_k <= classes:
        raise CliError(f"--top-k must be from 1 to {classes} ({what} has {classes} classes), got {args.top_k}")
    return args.top_k


def is_video(path: str) -> bool:
    """Whether ``path`` names a video file (by its extension)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def classify_video(args: argparse.Namespace, path: str, head: bool) -> int:
    """``webml classify VIDEO``: every frame, through the frame pieces (webml.media), as ``webml video``;
    ``head``: whether ``--model`` is a ``webml train`` classifier (refused: it is for images)."""
    from . import video

    if head:
        raise CliError(
            f"{args.model!r} is a webml train classifier, for images; a video's frames take an ONNX image "
            "classifier or the built-in EfficientNet-Lite0"
        )
    return video.main(argparse.Namespace(**vars(args), source=path, every=1, max_frames=None, camera_option=[]))


def check_images(paths: list[str]) -> None:
    """Decode each image once, so that a bad one stops the command before any model is built.

    The images are decoded again, one at a time, when they are classified:
    holding them all would take up to ~200 MB each (see :mod:`webml.images`).
    """
    from webml.images import read_image

    for path in paths:
        try:
            read_image(path)
        except FileNotFoundError:
            raise CliError(f"no such image file: {path!r}") from None


def batch_dimensions(model) -> dict[str, int]:
    """A dynamic batch dimension of the model's inputs, fixed to 1 (one image at a time)."""
    import webml.onnx

    dims = webml.onnx.input_dimensions(model).values()
    return {d[0]: 1 for d in dims if d and isinstance(d[0], str)}


#: Images classified per step: progress is counted between steps (each image is classified alone,
#: so the results do not depend on it).
CHUNK = 16
Classify = Callable[[list[str]], list[list[tuple[str, float]]]]


def _onnx_classifier(args: argparse.Namespace, context) -> Classify:
    from webml.train.export import classifier_metadata

    model = read_onnx_model(args.model)
    graph = load_onnx_model(model, context, batch_dimensions(model))
    if len(graph.input_descriptors) != 1 or len(graph.output_descriptors) < 1:
        raise CliError(
            f"{args.model!r}: an image classifier has one input; this model has {list(graph.input_descriptors)}"
        )
    ((name, desc),) = graph.input_descriptors.items()
    shape = list(desc.shape)
    if len(shape) != 4 or 3 not in (shape[1], shape[3]):
        raise CliError(f"{args.model!r}: input {name!r} {desc} is not an image batch (NCHW or NHWC with 3 channels)")
    exported = classifier_metadata(model)
    if exported is not None:
        if args.normalize:
            raise CliError(f"--normalize does not go with {args.model!r}: webml train wrote its preprocessing in it")
        prepare = _exported_preprocessing(exported)
    else:
        prepare = model_input_preparer(shape, args.normalize or "imagenet")
    labels = read_labels(args.labels) if args.labels else (exported or {}).get("labels")
    out_name = next(iter(graph.output_descriptors))
    classes = int(np.prod(graph.output_descriptors[out_name].shape[1:], dtype=np.int64))
    if labels is not None and len(labels) != classes:
        raise CliError(f"{args.labels!r} has {len(labels)} labels, the model outputs {classes} classes")
    k = top_k(args, classes, repr(args.model))

    def classify(images: list[str]) -> list[list[tuple[str, float]]]:
        results = []
        for image in images:
            batch = np.broadcast_to(prepare(image), shape).astype(desc.data_type)
            scores = context.compute(graph, {name: batch})[out_name].reshape(shape[0], -1)[0]
            results.append(top_classes(scores, k, labels))
        return results

    return classify


def _exported_preprocessing(description: dict):
    """Image -> the input of a model exported by ``webml train``, prepared as its metadata says."""
    from webml.train.export import pixels

    def prepare(image: str) -> np.ndarray:
        try:
            return pixels(description, [image])[0]
        except (KeyError, TypeError, ValueError) as exc:
            raise CliError(f"the model's webml.classifier metadata is unusable ({exc})") from None

    return prepare


def read_labels(path: str) -> list[str]:
    """The class names in the text file ``path`` (``--labels``), one per line (blank lines left out)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read the labels file {path!r} ({exc})") from None
    labels = [line.strip() for line in lines if line.strip()]
    if not labels:
        raise CliError(f"the labels file {path!r} is empty")
    return labels


def _is_head(path: str) -> bool:
    """Whether ``--model`` names a classifier written by ``webml train`` (an .onnx file never is)."""
    from webml.files import RefusedFileError, open_regular_file
    from webml.train.transfer import is_classifier_file

    try:
        open_regular_file(path).close()  # a FIFO named model.npz would block the reads below
    except FileNotFoundError:
        pass  # reported by whichever reader is used
    except RefusedFileError as exc:
        raise CliError(f"--model {exc}") from None
    if Path(path).suffix.lower() == ".onnx":
        return False
    if is_classifier_file(path):
        return True
    if Path(path).suffix.lower() == ".npz" and Path(path).is_file():
        raise CliError(f"{path!r} is not a classifier written by webml train (no webml classifier format in it)")
    return False


def _head_classifier(args: argparse.Namespace, context) -> Classify:
    from webml.train.embeddings import base_from_spec
    from webml.train.transfer import classify_with_head, load_classifier

    if args.labels:
        raise CliError("--labels does not go with a webml train classifier: its class names are in the file")
    try:
        classifier = load_classifier(args.model)
        k = top_k(args, len(classifier.class_names), repr(args.model))
        base = base_from_spec(classifier.base_spec, context)  # built once, for every chunk
    except (ValueError, FileNotFoundError) as exc:
        raise CliError(f"{args.model!r}: {exc}") from None

    def classify(images: list[str]) -> list[list[tuple[str, float]]]:
        try:
            return classify_with_head(context, classifier, images, top_k=k, base=base)
        except (ValueError, FileNotFoundError) as exc:
            raise CliError(f"{args.model!r}: {exc}") from None

    return classify


def main(args: argparse.Namespace) -> int:
    import webml
    from webml.zoo import efficientnet_lite

    if args.top_k is not None and args.top_k < 1:
        raise CliError(f"--top-k must be at least 1, got {args.top_k}")
    for option in ("labels", "normalize"):
        if getattr(args, option) and not args.model:
            raise CliError(f"--{option} goes with --model")
    k = top_k(args, efficientnet_lite.CLASSES, "EfficientNet-Lite0") if not args.model else 0
    head = bool(args.model) and _is_head(args.model)
    if head and args.normalize:
        raise CliError("--normalize does not go with a webml train classifier: its preprocessing is in the file")
    paths = expand_folders(args.images) if args.images else [str(efficientnet_lite.sample_image_path())]
    if any(is_video(p) for p in paths):
        if len(paths) != 1:
            raise CliError("give one video or images: webml classify takes one video at a time (each frame classified)")
        return classify_video(args, paths[0], head)
    check_images(paths)
    start = time.perf_counter()
    context = webml.ml.create_context(backend=args.backend)
    if head:
        classify = _head_classifier(args, context)
    elif args.model:
        classify = _onnx_classifier(args, context)
    else:

        def classify(images: list[str]) -> list[list[tuple[str, float]]]:
            return efficientnet_lite.classify(context, images, top_k=k)

    progress = Progress.of(args)
    results: list[list[tuple[str, float]]] = []
    for first in range(0, len(paths), CHUNK):
        results += classify(paths[first : first + CHUNK])
        if len(paths) > CHUNK:
            progress.count(len(results), len(paths), "images")
    elapsed = time.perf_counter() - start
    for path, top in zip(paths, results):
        if args.json:
            print(json.dumps({"image": path, "top": [[label, round(p, 6)] for label, p in top]}))
        else:
            print(f"{path}:")
            for label, p in top:
                print(f"  {p:7.2%}  {label}")
    if not args.json:
        model = args.model or "EfficientNet-Lite0"
        print(f"({model} on the {context.backend} backend, {elapsed:.2f} s)")
    return 0
