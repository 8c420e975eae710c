"""Image-classification data sets laid out as one folder per class, and their stratified split.

    DATA_DIR/
        cat/    001.jpg  002.png ...
        dog/    a.jpeg   b.webp  ...

:func:`load_image_folder` lists such a folder: class names are the
sub-folder names, sorted; a class's images are the image files anywhere
under its folder (by extension: see :data:`IMAGE_EXTENSIONS`; other files,
and names starting with a dot, are ignored and listed in ``ignored``).
Everything wrong with the layout is a :class:`DatasetError` with one
message that names the folders concerned.  Whether each image can be
decoded is checked later, when it is read (see
:func:`webml.train.embeddings.compute_embeddings`, which reads through
:func:`webml.images.read_image`: regular files only, bounded sizes), and
reported for all files at once as an :class:`UnreadableImagesError`; a
FIFO or a folder named ``x.png`` is listed here and reported there.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..images import IMAGE_EXTENSIONS

__all__ = [
    "IMAGE_EXTENSIONS",
    "DatasetError",
    "ImageFolder",
    "UnreadableImagesError",
    "load_image_folder",
    "stratified_split",
]


class DatasetError(ValueError):
    """The data set is unusable (missing folder, fewer than two classes, an empty class, unreadable images)."""


class UnreadableImagesError(DatasetError):
    """Some image files cannot be decoded; ``files`` holds every ``(path, reason)``."""

    def __init__(self, files: Sequence[tuple[str, str]]) -> None:
        self.files = list(files)
        listing = "\n".join(f"  {path}: {reason}" for path, reason in self.files)
        super().__init__(
            f"{len(self.files)} image file(s) cannot be read (fix or remove them, "
            f"or pass --skip-unreadable to train without them):\n{listing}"
        )


@dataclass
class ImageFolder:
    """A listed data set: ``paths[i]`` is an image of class ``class_names[labels[i]]``."""

    root: str
    class_names: list[str]
    paths: list[str]
    labels: np.ndarray  # int32, one per path
    ignored: list[str] = field(default_factory=list)  # files skipped because they are not images

    def counts(self) -> dict[str, int]:
        """Images per class."""
        return {name: int(np.sum(self.labels == i)) for i, name in enumerate(self.class_names)}

    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageFolder:
        """The same classes with only the images at ``indices``."""
        idx = np.asarray(indices, dtype=np.int64)
        return ImageFolder(self.root, self.class_names, [self.paths[i] for i in idx], self.labels[idx], self.ignored)


def _hidden(name: str) -> bool:
    return name.startswith(".")


def load_image_folder(data_dir: str | os.PathLike[str]) -> ImageFolder:
    """List ``data_dir``: one sub-folder of images per class (class names = folder names, sorted).

    Raises :class:`DatasetError` if ``data_dir`` is missing or not a folder,
    has fewer than two class folders, or if any class folder holds no image.
    """
    root = Path(data_dir)
    if not root.exists():
        raise DatasetError(f"the data folder {os.fspath(data_dir)!r} does not exist")
    if not root.is_dir():
        raise DatasetError(f"the data folder {os.fspath(data_dir)!r} is not a folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not _hidden(p.name))
    layout = f"put the images of each class in a sub-folder named after it ({root}/cat/1.jpg, {root}/dog/1.jpg, ...)"
    if not classes:
        raise DatasetError(f"the data folder {os.fspath(data_dir)!r} has no class sub-folders: {layout}")
    if len(classes) == 1:
        raise DatasetError(
            f"the data folder {os.fspath(data_dir)!r} has only one class ({classes[0]!r}); "
            f"a classifier needs at least two: {layout}"
        )
    paths: list[str] = []
    labels: list[int] = []
    ignored: list[str] = []
    empty: list[str] = []
    for label, name in enumerate(classes):
        found = 0
        for dirpath, dirnames, filenames in os.walk(root / name):
            dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
            for filename in sorted(filenames):
                path = os.path.join(dirpath, filename)
                if _hidden(filename):
                    continue
                if os.path.splitext(filename)[1].lower() in IMAGE_EXTENSIONS:
                    paths.append(path)
                    labels.append(label)
                    found += 1
                else:
                    ignored.append(path)
        if not found:
            empty.append(name)
    if empty:
        raise DatasetError(
            f"{len(empty)} class folder(s) of {os.fspath(data_dir)!r} hold no images: "
            + ", ".join(repr(n) for n in empty)
            + f" (image files end in {', '.join(IMAGE_EXTENSIONS)})"
        )
    return ImageFolder(str(root), classes, paths, np.asarray(labels, np.int32), ignored)


def stratified_split(
    labels: Sequence[int] | np.ndarray, validation_split: float, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, validation)``: ``validation_split`` of each class, drawn at random (seeded).

    Every class with at least two samples gives at least one to each side
    (when ``validation_split > 0``); a class with one sample stays in training.
    """
    if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)):
        raise TypeError(f"validation_split must be a number in [0, 1), got {validation_split!r}")
    if not 0 <= validation_split < 1:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = round(len(idx) * validation_split)
        if validation_split > 0 and len(idx) >= 2:
            n_val = min(max(n_val, 1), len(idx) - 1)
        elif len(idx) < 2:
            n_val = 0
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val)).astype(np.int64)
