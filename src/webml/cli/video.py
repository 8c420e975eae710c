"""``webml video SOURCE``: classify the frames of a video file or a camera, the frames' planes fed straight
into the graph (colour conversion, crop, resize and normalization run inside it; see webml.media)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ..images import NORMALIZATIONS
from ..scores import top_classes
from . import CliError
from .classify import batch_dimensions, read_labels, top_k
from .common import Progress, onnx_errors, read_onnx_model


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "source",
        metavar="SOURCE",
        help="a video file, or a camera: /dev/video0 (Linux), avfoundation:0 (macOS), dshow:video=NAME (Windows)",
    )
    p.add_argument("--model", help="an ONNX image classifier instead of the built-in EfficientNet-Lite0")
    p.add_argument("--labels", help="with --model: a text file of class names, one per line")
    p.add_argument(
        "--normalize", choices=sorted(NORMALIZATIONS), help="with --model: input normalization (default: imagenet)"
    )
    p.add_argument("--every", type=int, default=1, metavar="N", help="classify every N-th frame (default: every one)")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after classifying N frames (a camera never ends)")
    p.add_argument("--top-k", type=int, help="classes printed per frame (default: 5, or all if fewer)")
    p.add_argument("--json", action="store_true", help="one JSON object per frame on stdout")
    p.add_argument(
        "--camera-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an FFmpeg option of the camera device (video_size=640x480, framerate=30, input_format=mjpeg)",
    )


def _camera_options(values: list[str]) -> dict[str, str]:
    options = {}
    for value in values:
        key, sep, setting = value.partition("=")
        if not sep or not key:
            raise CliError(f"--camera-option must be KEY=VALUE, got {value!r}")
        options[key] = setting
    return options


def _efficientnet(context: Any) -> tuple[Any, int, list[str] | None]:
    from webml.media.pipeline import FrameRunner
    from webml.zoo import efficientnet_lite as lite

    params = lite.pretrained_parameters()
    runner = FrameRunner(context, lambda b, x: {"logits": lite.add_classifier(b, params, x)}, lite.frame_preprocess)
    return runner, lite.CLASSES, [name.split(",")[0] for name in lite.class_names()]


def _onnx(args: argparse.Namespace, context: Any) -> tuple[Any, int, list[str] | None]:
    """A FrameRunner of the ONNX classifier, the frame pieces in front of its graph."""
    import webml.onnx
    from webml.images import NORMALIZATIONS
    from webml.media.colour import Preprocess
    from webml.media.pipeline import FrameRunner
    from webml.train.export import classifier_metadata

    model = read_onnx_model(args.model)
    if classifier_metadata(model) is not None:
        raise CliError(
            f"{args.model!r} was exported by webml train with its own preprocessing; "
            "webml video takes ONNX classifiers whose input is an image (use webml classify for this one)"
        )
    dims = webml.onnx.input_dimensions(model)
    if len(dims) != 1:
        raise CliError(f"{args.model!r}: an image classifier has one input; this model has {sorted(dims)}")
    ((name, shape),) = dims.items()
    fixed = batch_dimensions(model)
    shape = [fixed.get(d, d) if isinstance(d, str) else d for d in shape]
    if len(shape) != 4 or not all(isinstance(d, int) and d > 0 for d in shape) or shape[0] != 1:
        raise CliError(f"{args.model!r}: input {name!r} {shape} is not one image of a fixed size")
    if 3 not in (shape[1], shape[3]):
        raise CliError(f"{args.model!r}: input {name!r} {shape} is not an image (NCHW or NHWC with 3 channels)")
    nchw = shape[1] == 3
    size = (shape[2], shape[3]) if nchw else (shape[1], shape[2])
    mean, std = NORMALIZATIONS[args.normalize or "imagenet"]
    pre = Preprocess(size=size, mean=mean, std=std, layout="nchw" if nchw else "nhwc")

    def build(builder: Any, x: Any) -> dict[str, Any]:
        with onnx_errors():
            outputs = webml.onnx.add_to_builder(model, builder, {name: x}, free_dimensions=fixed)
        first = next(iter(outputs))
        return {first: outputs[first]}

    runner = FrameRunner(context, build, pre)
    labels = read_labels(args.labels) if args.labels else None
    return runner, 0, labels


def main(args: argparse.Namespace) -> int:
    import webml
    from webml.media.video import VideoError, VideoSource

    if args.every < 1:
        raise CliError(f"--every must be at least 1, got {args.every}")
    if args.max_frames is not None and args.max_frames < 1:
        raise CliError(f"--max-frames must be at least 1, got {args.max_frames}")
    if args.top_k is not None and args.top_k < 1:
        raise CliError(f"--top-k must be at least 1, got {args.top_k}")
    for option in ("labels", "normalize"):
        if getattr(args, option) and not args.model:
            raise CliError(f"--{option} goes with --model")
    try:
        source = VideoSource(args.source, options=_camera_options(args.camera_option) or None)
    except VideoError as exc:
        raise CliError(str(exc)) from None
    progress = Progress.of(args)
    with source:
        context = webml.ml.create_context(backend=args.backend)
        runner, classes, labels = _onnx(args, context) if args.model else _efficientnet(context)
        total = source.frame_count
        expected = None if total is None else -(-total // args.every)
        if expected is not None and args.max_frames is not None:
            expected = min(expected, args.max_frames)
        start = time.perf_counter()
        done = 0
        k = None
        decoded_before = uploads_before = conversions_before = 0
        for frame in source.frames(args.every):
            try:
                outputs = runner.run(frame)
            except ValueError as exc:  # a frame the graph cannot take (an odd-sized 4:2:0 frame)
                raise CliError(f"{args.source!r}: {exc}") from None
            scores = next(iter(outputs.values())).reshape(-1)
            if k is None:
                classes = classes or scores.size
                if labels is not None and len(labels) != classes:
                    raise CliError(f"{args.labels!r} has {len(labels)} labels, the model outputs {classes} classes")
                k = top_k(args, classes, repr(args.model) if args.model else "EfficientNet-Lite0")
            top = top_classes(scores, k, labels)
            # Host copies of this frame's pixels: the decoder's (one per decoded frame, skipped ones
            # too), a format conversion's, and the uploads' (0 where import_tensor shares the planes).
            copies = {
                "decoder": source.decoded - decoded_before,
                "conversions": source.conversions - conversions_before,
                "upload": runner.stats.upload_copies - uploads_before,
            }
            decoded_before, conversions_before = source.decoded, source.conversions
            uploads_before = runner.stats.upload_copies
            _print_frame(args, done, frame, top, runner.stats.last, copies)
            done += 1
            if expected:
                progress.count(done, expected, "frames")
            if args.max_frames is not None and done >= args.max_frames:
                break
        elapsed = time.perf_counter() - start
        if done == 0:
            raise CliError(f"{args.source!r}: no frame was decoded")
        _summary(args, context, source, runner.stats, done, elapsed)
        runner.close()
    return 0


def _print_frame(args: argparse.Namespace, index: int, frame: Any, top: list, last: dict, copies: dict) -> None:
    seconds = float(frame.time) if frame.time is not None else None
    if args.json:
        record = {
            "frame": index,
            "time": None if seconds is None else round(seconds, 6),
            "top": [[label, round(p, 6)] for label, p in top],
            "ms": {stage: round(s * 1000, 3) for stage, s in last.items()},
            "host_copies": copies,
        }
        print(json.dumps(record), flush=True)
    else:
        when = "" if seconds is None else f" {seconds:8.3f} s"
        best = ", ".join(f"{p:6.2%} {label}" for label, p in top)
        print(f"frame {index:5d}{when}: {best}", flush=True)


def _summary(args: argparse.Namespace, context: Any, source: Any, stats: Any, frames: int, elapsed: float) -> None:
    decode_ms = source.decode_seconds / max(1, source.decoded) * 1000
    line = (
        f"{frames} frames in {elapsed:.2f} s ({frames / elapsed:.1f} fps) on the {context.backend} backend; "
        f"per frame: decode {decode_ms:.2f} ms, upload {stats.upload_seconds / frames * 1000:.3f} ms, "
        f"inference {stats.inference_seconds / frames * 1000:.2f} ms; "
        f"host copies of pixels: {source.decoded} by the decoder, {source.conversions} format conversions, "
        f"{stats.upload_copies} by uploads"
    )
    if args.json:
        summary = {
            "summary": {
                "frames": frames,
                "decoded": source.decoded,
                "seconds": round(elapsed, 6),
                "fps": round(frames / elapsed, 3),
                "backend": context.backend,
                "ms_per_frame": {
                    "decode": round(decode_ms, 3),
                    "upload": round(stats.upload_seconds / frames * 1000, 3),
                    "inference": round(stats.inference_seconds / frames * 1000, 3),
                },
                "host_copies": {
                    "decoder": source.decoded,
                    "conversions": source.conversions,
                    "uploads": stats.upload_copies,
                },
                "graph_builds": stats.builds,
            }
        }
        print(json.dumps(summary), flush=True)
    else:
        print(f"({line})")
