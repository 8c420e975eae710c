"""Teachable-Machine-style transfer learning: a frozen base, a small trainable head, one model file.

1. :func:`load_image_folder` lists a folder with one sub-folder of images per
   class (class names = folder names, sorted).
2. A frozen base (:class:`~webml.train.embeddings.FeatureExtractor`; by default
   EfficientNet-Lite0's 1280-wide features, or a chosen output of any ONNX
   model) embeds every image once, in batches, through the embedding cache.
3. A head — a softmax classifier, optionally with one hidden ReLU layer — is
   trained on the embeddings with :class:`~webml.train.Trainer` (Adam,
   softmax cross-entropy), on a stratified, seeded train/validation split.
4. The head is saved as one ``.npz`` file: its parameters, the class names,
   the base's name and spec, the preprocessing and format version.
   :func:`load_classifier` reads it back and :func:`classify_with_head`
   classifies new images with it (base and head both run as WebNN graphs).

For a folder ``photos/`` with one sub-folder of images per class (the
tests run this on generated photos)::

    result = train_classifier(context, "photos/", epochs=50)
    result.validation_accuracy, result.classifier.class_names   # (1.0, ['cat', 'cup', 'person'])
    result.classifier.save("pets.npz")
    classify_with_head(context, "pets.npz", ["new.jpg"], top_k=1)   # [[('cat', 0.98)]]
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from ..api.builder import MLGraphBuilder
from ..api.context import MLContext
from ..api.operand import MLOperand
from .embeddings import (
    EfficientNetLite0Features,
    EmbeddingCache,
    FeatureExtractor,
    base_from_spec,
    compute_embeddings,
)
from .image_folder import DatasetError, ImageFolder, load_image_folder, stratified_split
from .optimizers import Adam
from .trainer import Trainer

__all__ = [
    "CLASSIFIER_FORMAT",
    "CLASSIFIER_VERSION",
    "TrainResult",
    "TransferClassifier",
    "classify_with_head",
    "confusion_matrix",
    "head_forward",
    "initial_head",
    "is_classifier_file",
    "load_classifier",
    "train_classifier",
]

#: The ``format`` entry of classifier files.
CLASSIFIER_FORMAT = "webml.transfer.classifier"
#: The version of that format this module writes and reads.
CLASSIFIER_VERSION = 1


def head_forward(b: MLGraphBuilder, params: dict[str, MLOperand], x: MLOperand) -> MLOperand:
    """The head's logits: ``x @ w + b``, or ``relu(x @ w1 + b1) @ w + b`` when ``params`` has ``w1``."""
    if "w1" in params:
        x = b.relu(b.add(b.matmul(x, params["w1"]), params["b1"]))
    return b.add(b.matmul(x, params["w"]), params["b"])


def initial_head(dim: int, classes: int, hidden: int = 0, seed: int | None = 0) -> dict[str, np.ndarray]:
    """Glorot-uniform weights and zero biases for a head of ``dim`` inputs and ``classes`` outputs."""
    rng = np.random.default_rng(seed)

    def glorot(fan_in: int, fan_out: int) -> np.ndarray:
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)

    params: dict[str, np.ndarray] = {}
    width = dim
    if hidden:
        params["w1"] = glorot(dim, hidden)
        params["b1"] = np.zeros(hidden, np.float32)
        width = hidden
    params["w"] = glorot(width, classes)
    params["b"] = np.zeros(classes, np.float32)
    return params


@dataclass
class TransferClassifier:
    """A trained head with what is needed to use it: class names and the base it was trained on."""

    class_names: list[str]
    params: dict[str, np.ndarray]
    base_name: str
    base_spec: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def hidden(self) -> int:
        """Width of the hidden layer (0: none)."""
        return int(self.params["w1"].shape[1]) if "w1" in self.params else 0

    @property
    def dim(self) -> int:
        """Width of the embeddings the head takes."""
        return int(self.params.get("w1", self.params["w"]).shape[0])

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the classifier as one ``.npz`` file (no pickles)."""
        import webml

        meta = {
            "webml_version": webml.__version__,
            "base": self.base_spec,
            "hidden": self.hidden,
            **self.metadata,
        }
        names = sorted(self.params)
        with open(path, "wb") as f:  # np.savez would append ".npz" to a path without it
            np.savez(
                f,
                format=np.array(CLASSIFIER_FORMAT),
                version=np.array(CLASSIFIER_VERSION),
                class_names=np.array(self.class_names, dtype=str),
                base_name=np.array(self.base_name),
                metadata=np.array(json.dumps(meta)),
                param_names=np.array(names, dtype=str),
                **{f"param_{n}": self.params[n] for n in names},
            )

    def probabilities(self, context: MLContext, features: np.ndarray) -> np.ndarray:
        """Softmax probabilities ``[N, classes]`` of embeddings ``[N, dim]``, computed by a WebNN graph."""
        features = np.ascontiguousarray(features, np.float32)
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"the head takes embeddings [N, {self.dim}], got {list(features.shape)}")
        b = MLGraphBuilder(context)
        x = b.input("x", {"dataType": "float32", "shape": list(features.shape)})
        params = {n: b.constant({"dataType": "float32", "shape": list(a.shape)}, a) for n, a in self.params.items()}
        graph = b.build({"p": b.softmax(head_forward(b, params, x), 1)})
        return context.compute(graph, {"x": features})["p"]


def is_classifier_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a classifier file written by :meth:`TransferClassifier.save` (by content)."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":  # an .npz is a zip archive
                return False
        with np.load(path, allow_pickle=False) as data:
            return "format" in data.files and str(data["format"]) == CLASSIFIER_FORMAT
    except (OSError, ValueError):
        return False


def load_classifier(path: str | os.PathLike[str]) -> TransferClassifier:
    """Read a classifier file written by :meth:`TransferClassifier.save`."""
    where = f"load_classifier({os.fspath(path)!r})"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{where}: no such file")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{where}: not a webml classifier file ({exc})") from None
    with data:
        if "format" not in data.files or str(data["format"]) != CLASSIFIER_FORMAT:
            raise ValueError(f"{where}: not a webml classifier file (no format {CLASSIFIER_FORMAT!r})")
        version = int(data["version"]) if "version" in data.files else None
        if version != CLASSIFIER_VERSION:
            raise ValueError(f"{where}: format version {version} is not supported (this webml reads 1)")
        try:
            names = [str(n) for n in data["param_names"]]
            params = {n: np.asarray(data[f"param_{n}"], np.float32) for n in names}
            meta = json.loads(str(data["metadata"]))
            class_names = [str(c) for c in data["class_names"]]
            base_name = str(data["base_name"])
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{where}: the file is incomplete or corrupt ({exc})") from None
    if "w" not in params or "b" not in params or params["w"].shape[1] != len(class_names):
        raise ValueError(f"{where}: the head's parameters do not match its {len(class_names)} class names")
    base_spec = meta.pop("base", {})
    meta.pop("hidden", None)
    return TransferClassifier(class_names, params, base_name, base_spec, meta)


@dataclass
class TrainResult:
    """What :func:`train_classifier` returns."""

    classifier: TransferClassifier
    history: dict[str, Any]
    validation_accuracy: float | None  # None without a validation set
    train_count: int
    validation_count: int
    skipped: list[tuple[str, str]]  # unreadable files left out (with skip_unreadable)
    computed: int  # images run through the base
    cached: int  # embeddings read from the cache
    #: Validation images by true class (rows) and predicted class (columns); None without a validation set.
    confusion: np.ndarray | None = None


def train_classifier(
    context: MLContext,
    data: str | os.PathLike[str] | ImageFolder,
    base: FeatureExtractor | None = None,
    *,
    epochs: int = 50,
    batch_size: int = 16,
    learning_rate: float = 1e-3,
    validation_split: float = 0.2,
    hidden: int = 0,
    seed: int = 0,
    cache: EmbeddingCache | None = None,
    skip_unreadable: bool = False,
    progress: bool | IO[str] = True,
) -> TrainResult:
    """Train a head on ``data`` (a folder of class sub-folders, or an :class:`ImageFolder`).

    ``base`` defaults to :class:`EfficientNetLite0Features`; ``cache`` to
    :meth:`EmbeddingCache.default`.  The batch is capped at the number of
    training images.  Raises :class:`DatasetError` for unusable data.
    """
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 0:
        raise ValueError(f"hidden must be a non-negative integer (0: no hidden layer), got {hidden!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or not learning_rate > 0:
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
    folder = data if isinstance(data, ImageFolder) else load_image_folder(data)
    stream = sys.stderr if progress is True else (progress or None)
    base = EfficientNetLite0Features(context) if base is None else base
    cache = EmbeddingCache.default() if cache is None else cache
    emb = compute_embeddings(base, folder.paths, cache=cache, skip_unreadable=skip_unreadable, progress=progress)
    if emb.skipped:
        if stream:
            stream.write(f"webml: warning: skipped {len(emb.skipped)} unreadable image(s):\n")
            stream.writelines(f"  {p}: {why}\n" for p, why in emb.skipped)
        folder = folder.subset(emb.kept)
        empty = [n for n, c in folder.counts().items() if c == 0]
        if empty:
            raise DatasetError(f"no readable images left in class folder(s) {', '.join(map(repr, empty))}")
    x, y = emb.features, folder.labels
    train_idx, val_idx = stratified_split(y, validation_split, seed)
    classes = len(folder.class_names)
    params = initial_head(base.dim, classes, hidden, seed)
    batch = min(batch_size, len(train_idx))
    trainer = Trainer(
        context,
        head_forward,
        params,
        Adam(learning_rate),
        batch_size=batch,
        input_shape=[base.dim],
        eval_batch_size=max(1, min(64, len(val_idx) or batch)),
    )
    try:
        validation = (x[val_idx], y[val_idx]) if len(val_idx) else None
        if stream:
            counts = ", ".join(f"{n} {c}" for n, c in folder.counts().items())
            stream.write(
                f"training a {'hidden-' + str(hidden) + ' ' if hidden else ''}head on {len(train_idx)} images, "
                f"validating on {len(val_idx)} ({classes} classes: {counts})\n"
            )
        history = trainer.fit(
            x[train_idx], y[train_idx], epochs, validation_data=validation, seed=seed, progress=progress
        )
        accuracy = trainer.evaluate(*validation) if validation else None
        confusion = confusion_matrix(validation[1], trainer.predict(validation[0]), classes) if validation else None
        trained = trainer.parameters()
    finally:
        trainer.close()
    from ..zoo import efficientnet_lite as lite

    metadata = {
        "preprocessing": {"image_size": lite.IMAGE_SIZE, "base_name": base.name},
        "training": {
            "epochs": epochs,
            "batch_size": batch,
            "learning_rate": learning_rate,
            "optimizer": "adam",
            "validation_split": validation_split,
            "seed": seed,
            "train_images": len(train_idx),
            "validation_images": len(val_idx),
            "validation_accuracy": accuracy,
        },
    }
    classifier = TransferClassifier(
        list(folder.class_names), trained, base.name, dict(getattr(base, "spec", {"kind": base.name})), metadata
    )
    return TrainResult(
        classifier, history, accuracy, len(train_idx), len(val_idx), emb.skipped, emb.computed, emb.cached, confusion
    )


def confusion_matrix(labels: np.ndarray, logits: np.ndarray, classes: int) -> np.ndarray:
    """Counts ``[classes, classes]`` of samples by true class (row) and predicted class (column, the argmax)."""
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (np.asarray(labels, np.int64), np.argmax(logits, axis=1)), 1)
    return matrix


def classify_with_head(
    context: MLContext,
    model_file: str | os.PathLike[str] | TransferClassifier,
    images: Sequence[Any],
    top_k: int = 5,
    *,
    base: FeatureExtractor | None = None,
) -> list[list[tuple[str, float]]]:
    """The ``top_k`` classes of each image (PIL images or paths) as (class name, probability), best first.

    The base is rebuilt from the classifier file unless ``base`` is given
    (its name must match the one the head was trained on).
    """
    classifier = model_file if isinstance(model_file, TransferClassifier) else load_classifier(model_file)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    base = base_from_spec(classifier.base_spec, context) if base is None else base
    if base.name != classifier.base_name:
        raise ValueError(f"the classifier was trained on the base {classifier.base_name!r}, not on {base.name!r}")
    if not len(images):
        return []
    probs = classifier.probabilities(context, np.asarray(base(list(images)), np.float32)).astype(np.float64)
    results = []
    for row in probs:
        order = np.argsort(-row, kind="stable")[:top_k]
        results.append([(classifier.class_names[i], float(row[i])) for i in order])
    return results
