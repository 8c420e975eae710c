"""Finding the items of a batch run in INPUT, which may come from a stranger.

INPUT is one of:

* a folder of images (any depth; the extensions of :data:`webml.images.IMAGE_EXTENSIONS`);
* a folder of ``.npy`` files (any depth), one model input each;
* a Parquet dataset: a ``.parquet`` file, or a folder of them (any depth).

Items are identified by their path relative to INPUT (``cats/1.jpg``), or
for Parquet by the id column.  Only regular files inside INPUT are taken: a
symbolic link that leads outside it, a FIFO or a device is skipped (and
counted in :attr:`Items.skipped`), hidden files and folders are ignored.
Each file is read later, by a worker, through :func:`webml.files.open_regular_file`
with a bounded size; a Parquet file's declared uncompressed size is
bounded here, from its footer, before Ray reads any of it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..images import IMAGE_EXTENSIONS

__all__ = ["MAX_PARQUET_BYTES", "Items", "find_items"]

#: The largest uncompressed size a Parquet file of INPUT may declare (its row groups, from the footer).
MAX_PARQUET_BYTES = 8 * 2**30

_KINDS = {"images": IMAGE_EXTENSIONS, "npy": (".npy",), "parquet": (".parquet",)}


@dataclass
class Items:
    """What :func:`find_items` found: the kind of INPUT and its files (absolute) with their identifiers."""

    kind: str  # "images", "npy" or "parquet"
    root: Path
    files: list[Path] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # relative paths not taken, with why
    columns: list[str] = field(default_factory=list)  # Parquet: the columns every file has


def find_items(input: str | os.PathLike[str]) -> Items:
    """The items of ``input`` (see the module's notes); ``ValueError`` naming ``input`` if it has none."""
    root = Path(input)
    if not root.exists():
        raise FileNotFoundError(f"input {str(input)!r} does not exist")
    if root.is_file():
        if root.suffix.lower() != ".parquet":
            raise ValueError(f"input {str(input)!r} is a file; give a folder of images or .npy files, or Parquet")
        items = Items("parquet", root.resolve().parent, [root.resolve()], [root.name])
        _check_parquet(items)
        return items
    if not root.is_dir():
        raise ValueError(f"input {str(input)!r} is neither a folder nor a Parquet file")
    root = root.resolve()
    found: dict[str, list[tuple[Path, str]]] = {kind: [] for kind in _KINDS}
    skipped: list[str] = []
    for folder, dirs, names in os.walk(root):  # os.walk does not follow links to folders
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            kind = next((k for k, ends in _KINDS.items() if name.lower().endswith(ends)), None)
            if kind is None:
                continue
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            why = _refusal(path, root)
            if why:
                skipped.append(f"{rel} ({why})")
                continue
            found[kind].append((path, rel))
    kinds = [k for k, v in found.items() if v]
    if not kinds:
        extra = f"; skipped: {', '.join(skipped[:5])}" if skipped else ""
        raise ValueError(
            f"input {str(input)!r} holds no images ({', '.join(IMAGE_EXTENSIONS)}), .npy or .parquet files{extra}"
        )
    if len(kinds) > 1:
        counts = ", ".join(f"{len(found[k])} {k}" for k in kinds)
        raise ValueError(f"input {str(input)!r} mixes kinds of files ({counts}); give a folder of one kind")
    (kind,) = kinds
    items = Items(kind, root, [p for p, _ in found[kind]], [r for _, r in found[kind]], skipped)
    if kind == "parquet":
        _check_parquet(items)
    return items


def _refusal(path: Path, root: Path) -> str | None:
    """Why ``path`` is not taken (a link out of INPUT, not a regular file), or None."""
    try:
        target = path.resolve(strict=True)
        st = os.stat(target)
    except (OSError, RuntimeError) as exc:  # a dangling or looping link
        return f"cannot be read: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}"
    if not target.is_relative_to(root):
        return "a link that leads outside the input folder"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    return None


def _check_parquet(items: Items) -> None:
    """Each Parquet file is readable and declares at most :data:`MAX_PARQUET_BYTES` (read from its footer)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..files import RefusedFileError, open_regular_file

    common: list[str] | None = None
    for path, ident in zip(items.files, items.ids):
        try:
            with open_regular_file(path) as f:
                parquet = pq.ParquetFile(f)
                metadata, names = parquet.metadata, parquet.schema_arrow.names
        except (RefusedFileError, OSError, pa.ArrowException) as exc:
            raise ValueError(f"input {ident!r} is not a readable Parquet file ({exc})") from None
        declared = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
        if declared > MAX_PARQUET_BYTES:
            raise ValueError(
                f"input {ident!r} declares {declared:,} bytes of data, more than the {MAX_PARQUET_BYTES:,} "
                "webml batch reads from one Parquet file (split it)"
            )
        common = names if common is None else [n for n in common if n in names]
    items.columns = common or []
