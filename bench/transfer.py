"""Transfer learning benchmark: EfficientNet-Lite0 features + a softmax head on Fashion-MNIST.

    apt-get install dataset-fashion-mnist        # Debian's package of the data set
    .venv/bin/python bench/transfer.py [--per-class 100] [--test 1000] [--threads 1] [--write-docs docs/performance.md]

In one run it measures:

* **accuracy**: ``--per-class`` training images of each of the 10 classes
  (drawn with ``--seed``) and ``--test`` test images (also drawn), 28x28
  grayscale made RGB and resized to the base's 224x224 (the whole image, no
  centre crop); the frozen EfficientNet-Lite0 embeds them, a head (softmax,
  or ``--hidden N``) is trained with webml's :class:`~webml.train.Trainer`
  (Adam, softmax cross-entropy) and evaluated on the test images;
* **training-step time** of that head against PyTorch on the CPU doing the
  same step (same head shape, batch, Adam, softmax cross-entropy), with the
  same number of threads, interleaved in blocks so that both see the same
  machine state; the median over ``--steps`` steps and the ratio
  webml / PyTorch.  PyTorch is only the yardstick (``pip install torch``);
  without it the timing row says so.

``--write-docs PATH`` writes the results as the "Transfer learning" section
of PATH, between ``<!-- transfer -->`` and ``<!-- /transfer -->`` (replacing
an earlier one; the rest of the file, written by bench/run.py, is kept).
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import webml
from webml.train import Adam, Trainer
from webml.train.embeddings import EfficientNetLite0Features
from webml.train.transfer import head_forward, initial_head

DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
BEGIN, END = "<!-- transfer -->", "<!-- /transfer -->"


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format, gzipped) as a uint8 array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    images, labels = DATA_DIR / f"{prefix}-images-idx3-ubyte.gz", DATA_DIR / f"{prefix}-labels-idx1-ubyte.gz"
    if not images.is_file():
        sys.exit(f"bench/transfer.py: {images} is missing: apt-get install dataset-fashion-mnist")
    return read_idx(images), read_idx(labels).astype(np.int32)


def draw(labels: np.ndarray, per_class: int | None, total: int | None, rng: np.random.Generator) -> np.ndarray:
    """Indices: ``per_class`` of each class, or ``total`` at random."""
    if per_class is not None:
        return np.sort(
            np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)])
        )
    return np.sort(rng.choice(len(labels), total, replace=False))


def embed(base: EfficientNetLite0Features, images: np.ndarray, what: str) -> tuple[np.ndarray, float]:
    from PIL import Image

    start = time.perf_counter()
    out = []
    step = 256
    for s in range(0, len(images), step):
        out.append(base([Image.fromarray(im, "L") for im in images[s : s + step]]))
        if sys.stderr.isatty():
            print(f"\r  embedding {what}: {min(s + step, len(images))}/{len(images)}", end="", file=sys.stderr)
    seconds = time.perf_counter() - start
    print(f"{chr(13) if sys.stderr.isatty() else ''}  embedded {len(images)} {what} ({seconds:.1f} s)", file=sys.stderr)
    return np.concatenate(out), seconds


def webml_step_times(trainer: Trainer, batches: list[tuple[np.ndarray, np.ndarray]], steps: int) -> list[float]:
    times = []
    for i in range(steps):
        x, y = batches[i % len(batches)]
        start = time.perf_counter()
        trainer.train_step(x, y)
        times.append(time.perf_counter() - start)
    trainer.steps  # noqa: B018  (reads the step counter: every dispatched step has finished)
    return times


def torch_step_times(step, batches: list[tuple[np.ndarray, np.ndarray]], steps: int) -> list[float]:
    times = []
    for i in range(steps):
        x, y = batches[i % len(batches)]
        start = time.perf_counter()
        step(x, y)
        times.append(time.perf_counter() - start)
    return times


def make_torch_step(params: dict[str, np.ndarray], learning_rate: float, threads: int):
    """PyTorch's version of the same training step (or None without PyTorch)."""
    try:
        import torch
    except ImportError:
        return None, None
    torch.set_num_threads(threads)
    weights = {n: torch.tensor(a, requires_grad=True) for n, a in params.items()}
    optimizer = torch.optim.Adam(list(weights.values()), lr=learning_rate)

    def step(x: np.ndarray, y: np.ndarray) -> None:
        xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
        optimizer.zero_grad(set_to_none=True)
        h = xt
        if "w1" in weights:
            h = torch.relu(h @ weights["w1"] + weights["b1"])
        loss = torch.nn.functional.cross_entropy(h @ weights["w"] + weights["b"], yt)
        loss.backward()
        optimizer.step()

    return step, torch.__version__


def write_docs(path: Path, section: str) -> None:
    """Put ``section`` between the transfer markers of ``path``, keeping everything else."""
    block = f"{BEGIN}\n{section.rstrip()}\n{END}\n"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    start = old.find(BEGIN)
    if start >= 0:
        end = old.find(END, start)
        rest = old[end + len(END) :].lstrip("\n") if end >= 0 else ""
        new = old[:start] + block + (("\n" + rest) if rest else "")
    else:
        new = (old.rstrip() + "\n\n" if old.strip() else "# Performance\n\n") + block
    path.write_text(new, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=100, help="training images per class (default: 100)")
    parser.add_argument("--test", type=int, default=1000, help="test images (default: 1000)")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=0, help="hidden layer width (default: 0, a softmax head)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="threads of both webml and PyTorch (default: 1)")
    parser.add_argument("--steps", type=int, default=2000, help="timed training steps of each (default: 2000)")
    parser.add_argument("--write-docs", metavar="PATH", help="write the results into PATH's transfer section")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    train_images, train_labels = load_fashion_mnist("train")
    test_images, test_labels = load_fashion_mnist("test")
    train_idx = draw(train_labels, args.per_class, None, rng)
    test_idx = draw(test_labels, None, args.test, rng)

    context = webml.ml.create_context(intra_op_threads=args.threads)
    embed_context = webml.ml.create_context()  # the base on every core
    base = EfficientNetLite0Features(embed_context, batch_size=32, center_crop=False)
    x_train, train_seconds = embed(base, train_images[train_idx], "training images")
    x_test, test_seconds = embed(base, test_images[test_idx], "test images")
    y_train, y_test = train_labels[train_idx], test_labels[test_idx]

    params = initial_head(base.dim, 10, args.hidden, args.seed)
    trainer = Trainer(
        context,
        head_forward,
        params,
        Adam(args.learning_rate),
        batch_size=args.batch_size,
        input_shape=[base.dim],
        eval_batch_size=250,
    )
    history = trainer.fit(x_train, y_train, args.epochs, seed=args.seed, progress=False)
    accuracy = trainer.evaluate(x_test, y_test)
    fit_seconds = sum(history["time"])
    print(
        f"accuracy {accuracy:.2%} on {len(y_test)} test images after {args.epochs} epochs "
        f"({fit_seconds:.2f} s; final loss {history['loss'][-1]:.4f})",
        file=sys.stderr,
    )

    # Training-step time: the same head, batch and optimizer; interleaved blocks of steps.
    batches = [
        (np.ascontiguousarray(x_train[i : i + args.batch_size]), y_train[i : i + args.batch_size].copy())
        for i in range(0, len(y_train) - args.batch_size + 1, args.batch_size)
    ]
    timer = Trainer(
        context, head_forward, params, Adam(args.learning_rate), batch_size=args.batch_size, input_shape=[base.dim]
    )
    torch_step, torch_version = make_torch_step(params, args.learning_rate, args.threads)
    webml_times: list[float] = []
    torch_times: list[float] = []
    webml_step_times(timer, batches, 100)  # warm-up
    if torch_step:
        torch_step_times(torch_step, batches, 100)
    block = 100
    for _ in range(max(1, args.steps // block)):
        webml_times += webml_step_times(timer, batches, block)
        if torch_step:
            torch_times += torch_step_times(torch_step, batches, block)
    webml_us = statistics.median(webml_times) * 1e6
    torch_us = statistics.median(torch_times) * 1e6 if torch_times else None

    command = "".join(f" {a}" for a in (sys.argv[1:] if argv is None else argv))
    head = f"1280 → {args.hidden} → 10" if args.hidden else "1280 → 10"
    cpu = platform.processor() or platform.machine()
    lines = [
        "## Transfer learning",
        "",
        f"Measured by `.venv/bin/python bench/transfer.py{command}` on {time.strftime('%Y-%m-%d')} "
        f"({os.cpu_count()} CPUs, {cpu}; Python {platform.python_version()}).",
        "",
        f"Fashion-MNIST (Debian's `dataset-fashion-mnist`): {args.per_class} training images per class "
        f"(seed {args.seed}), {len(y_test)} test images; 28x28 grayscale made RGB and resized to 224x224; "
        f"frozen EfficientNet-Lite0 features (1280), a {head} softmax head trained by webml's `Trainer` "
        f"(Adam, learning rate {args.learning_rate}, batch {args.batch_size}, {args.epochs} epochs).",
        "",
        "| measure | value |",
        "| --- | ---: |",
        f"| test accuracy | {accuracy:.1%} |",
        f"| embedding ({len(y_train) + len(y_test)} images, all cores) | "
        f"{(train_seconds + test_seconds) / (len(y_train) + len(y_test)) * 1e3:.1f} ms per image |",
        f"| head training ({args.epochs} epochs, {args.epochs * (len(y_train) // args.batch_size)} steps) | "
        f"{fit_seconds:.2f} s |",
        "",
        f"Training-step time of the head (batch {args.batch_size}, Adam, softmax cross-entropy; "
        f"{args.threads} thread{'s' if args.threads != 1 else ''} each; median of {len(webml_times)} steps, "
        "interleaved in blocks of 100):",
        "",
        "| webml (onnxruntime) | PyTorch (CPU) | webml / PyTorch |",
        "| ---: | ---: | ---: |",
        (
            f"| {webml_us:.0f} µs | {torch_us:.0f} µs (torch {torch_version}) | {webml_us / torch_us:.2f} |"
            if torch_us
            else f"| {webml_us:.0f} µs | (PyTorch not installed) | - |"
        ),
        "",
        "A webml step is one `MLContext.dispatch` of one graph (forward, gradients and the Adam update; "
        "parameters and optimizer state stay in MLTensors) plus writing the batch; PyTorch's is "
        "`zero_grad`, forward, `cross_entropy`, `backward` and `Adam.step`.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write_docs:
        write_docs(Path(args.write_docs), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
