"""The parameter file of :meth:`webml.train.Trainer.save`: an .npz holding a format name and version,
the parameter names in order, and one float32 array per parameter (``param_0``, ``param_1``, ...).

Read with ``allow_pickle=False``: a parameter file is data only.

>>> import numpy as np, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "p.npz")
>>> write_parameters(path, {"w": np.ones((2, 2), np.float32), "b": np.zeros(2, np.float32)})
>>> {n: a.shape for n, a in read_parameters(path).items()}
{'w': (2, 2), 'b': (2,)}
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

__all__ = ["FORMAT", "FORMAT_VERSION", "read_parameters", "write_parameters"]

#: The ``format`` entry of a parameter file.
FORMAT = "webml.train.parameters"
#: The version of that format this module writes and reads.
FORMAT_VERSION = 1


def write_parameters(path: str | os.PathLike[str], params: Mapping[str, np.ndarray]) -> None:
    """Write ``params`` (name -> array) to ``path`` in the parameter-file format."""
    names = list(params)
    np.savez(
        path,
        format=np.array(FORMAT),
        version=np.array(FORMAT_VERSION),
        names=np.array(names, dtype=str),
        **{f"param_{i}": np.asarray(params[n], np.float32) for i, n in enumerate(names)},
    )


def read_parameters(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The parameters in a file written by :func:`write_parameters` (name -> float32 array)."""
    where = f"read_parameters({os.fspath(path)!r})"
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{where}: not a parameter file: {exc}") from exc
    with data:
        keys = set(data.files)
        if "format" not in keys or str(data["format"]) != FORMAT:
            raise ValueError(f"{where}: not a webml parameter file (no format {FORMAT!r})")
        version = int(data["version"]) if "version" in keys else None
        if version != FORMAT_VERSION:
            raise ValueError(f"{where}: format version {version} is not supported (this webml reads {FORMAT_VERSION})")
        names = [str(n) for n in data["names"]]
        missing = [f"param_{i}" for i in range(len(names)) if f"param_{i}" not in keys]
        if missing:
            raise ValueError(f"{where}: the file is incomplete (missing {missing})")
        return {n: np.asarray(data[f"param_{i}"], np.float32) for i, n in enumerate(names)}
