"""``webml train DATA_DIR --output MODEL.onnx|MODEL.npz``: transfer learning on a folder of class sub-folders.

Embeds every image with a frozen base (EfficientNet-Lite0's features, or an
output of an ONNX model with ``--base-model``), trains a softmax head on a
stratified train/validation split, prints progress (stderr) and the
validation accuracy (stdout), and writes the classifier in the format its
extension names: ``.onnx``, one standard ONNX model of the whole classifier
(base and head, see :mod:`webml.train.export`), or ``.npz``, webml's own
file of the head.  ``webml classify --model MODEL IMAGE ...`` uses either.
The history (loss and validation accuracy per epoch, the confusion matrix)
goes to MODEL.history.json (``--history``), and with ``--plot PNG`` into a
plot.  Unreadable images are
all listed and training stops, unless ``--skip-unreadable`` is given (then
they are left out with a warning).  Only regular files are read, and
images whose declared size is over :data:`webml.images.MAX_IMAGE_PIXELS`
(decompression bombs) count as unreadable.  MODEL.npz is checked before
any work and written (with the history and plot) whole or not at all.  Embeddings are cached on disk (see
``--cache-dir``), so retraining on the same images is fast.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from . import CliError
from .common import check_output_file, progress_stream, write_files_atomically


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_dir", metavar="DATA_DIR", help="a folder with one sub-folder of images per class")
    p.add_argument(
        "--output",
        "-o",
        required=True,
        metavar="MODEL",
        help="the classifier to write (checked first): MODEL.onnx, one ONNX model of base and head, "
        "or MODEL.npz, webml's own file",
    )
    p.add_argument(
        "--history", metavar="PATH.json", help="where the training history goes (default: MODEL.history.json)"
    )
    p.add_argument(
        "--plot", metavar="PATH.png", help="also plot the loss, the accuracy and the validation confusion matrix"
    )
    p.add_argument("--epochs", type=int, default=50, help="passes over the training images (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=16, help="images per training step (default: %(default)s)")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's learning rate (default: %(default)s)")
    p.add_argument(
        "--validation-split",
        type=float,
        default=0.2,
        help="fraction of each class held out for validation, in [0, 1) (default: %(default)s)",
    )
    p.add_argument("--hidden", type=int, default=0, help="width of a hidden ReLU layer (default: 0, none)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the initial weights and the shuffling")
    p.add_argument(
        "--skip-unreadable", action="store_true", help="leave unreadable images out with a warning instead of stopping"
    )
    p.add_argument(
        "--base-model",
        metavar="MODEL.onnx",
        help="an ONNX image model as the base (default: EfficientNet-Lite0's features)",
    )
    p.add_argument("--base-output", metavar="NAME", help="with --base-model: the output to use (default: the first)")
    p.add_argument(
        "--base-normalize",
        choices=("imagenet", "lite", "unit"),
        default="imagenet",
        help="with --base-model: its input normalization (default: %(default)s)",
    )
    p.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="embedding cache folder (default: $WEBML_CACHE_DIR/embeddings, else ~/.cache/webml/embeddings)",
    )
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache on disk")


def _check(args: argparse.Namespace) -> None:
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise CliError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.hidden < 0:
        raise CliError(f"--hidden must be 0 (no hidden layer) or more, got {args.hidden}")
    if not args.learning_rate > 0:
        raise CliError(f"--learning-rate must be positive, got {args.learning_rate}")
    if not 0 <= args.validation_split < 1:
        raise CliError(f"--validation-split must be in [0, 1), got {args.validation_split}")
    if args.base_output and not args.base_model:
        raise CliError("--base-output goes with --base-model")
    if args.base_model and not Path(args.base_model).is_file():
        raise CliError(f"no such base model file: {args.base_model!r}")
    suffix = Path(args.output).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise CliError(
            f"--output {args.output!r}: the file name must end in .onnx (one ONNX model of the whole classifier) "
            f"or .npz (webml's own classifier file)"
        )
    if suffix == ".onnx" and args.base_model:
        raise CliError("--output .onnx needs the default base (EfficientNet-Lite0); with --base-model save as .npz")
    # Every file is checked before any image is embedded.
    check_output_file(args.output, "--output", suffix)
    check_output_file(history_path(args), "--history", ".json")
    if args.plot:
        check_output_file(args.plot, "--plot", ".png")


#: What --output's extension selects.
OUTPUT_FORMATS = (".onnx", ".npz")


def history_path(args: argparse.Namespace) -> str:
    """``--history``, by default MODEL.history.json beside the model."""
    return args.history or str(Path(args.output).with_suffix(".history.json"))


def main(args: argparse.Namespace) -> int:
    import webml
    import webml.onnx
    from webml.train.embeddings import EfficientNetLite0Features, EmbeddingCache, OnnxFeatures, default_cache_dir
    from webml.train.image_folder import DatasetError
    from webml.train.transfer import train_classifier

    _check(args)
    start = time.perf_counter()
    context = webml.ml.create_context(backend=args.backend)
    try:
        if args.base_model:
            base = OnnxFeatures(args.base_model, context, output=args.base_output, normalize=args.base_normalize)
        else:
            base = EfficientNetLite0Features(context)
        cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
        result = train_classifier(
            context,
            args.data_dir,
            base,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            validation_split=args.validation_split,
            hidden=args.hidden,
            seed=args.seed,
            cache=EmbeddingCache(cache_dir),
            skip_unreadable=args.skip_unreadable,
            progress=progress_stream(args) or False,
        )
    except DatasetError as exc:
        raise CliError(str(exc)) from None
    except webml.onnx.OnnxImportError as exc:
        raise CliError(str(exc)) from None
    from webml.train.export import export_onnx
    from webml.train.history import plot_history, write_history

    if Path(args.output).suffix.lower() == ".onnx":

        def save(path: str) -> None:
            export_onnx(result.classifier, path, context)
    else:
        save = result.classifier.save
    writes = {Path(args.output): save, Path(history_path(args)): lambda path: write_history(result, path)}
    if args.plot:
        writes[Path(args.plot)] = lambda path: plot_history(result, path)
    write_files_atomically(writes)
    classes = result.classifier.class_names
    if result.validation_accuracy is None:
        print(f"validation accuracy: - (no validation images; --validation-split {args.validation_split})")
    else:
        print(f"validation accuracy: {result.validation_accuracy:.2%} ({result.validation_count} images)")
    print(
        f"saved {os.fspath(args.output)}: {len(classes)} classes ({', '.join(classes)}), "
        f"trained on {result.train_count} images with {result.classifier.base_name} "
        f"on the {context.backend} backend in {time.perf_counter() - start:.1f} s"
    )
    print(f"history: {history_path(args)}" + (f", plot: {args.plot}" if args.plot else ""))
    return 0
