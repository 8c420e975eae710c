"""Where the bytes of each constant of a lowered model live.

Large constants are not serialized into the protobuf: those whose bytes are
a shared-memory file of :mod:`webml.storage` (the IR says which:
``Graph.constant_files``), or lie in a model file's mapping
(:func:`webml.storage.file_location`), become external-data tensors that ONNX
Runtime maps, the same pages and no copy (an OrtValue, it copies); others of at least ``EMBEDDED_BELOW``
bytes are handed over as OrtValues (embedded, they were copied into the
protobuf, its serialization and ONNX Runtime's parse: three copies, about
30% of EfficientNet-Lite0's build, and twice the weights held after build);
tiny ones (shapes, axes, scalars), and all of them when a model is saved,
are embedded.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from ...storage import file_location

__all__ = ["EMBEDDED_BELOW", "Weights"]

#: Constants smaller than this are serialized into the model.
EMBEDDED_BELOW = 1 << 10


class Weights:
    """The initializers of one model, and what ONNX Runtime needs to load the ones held outside it."""

    def __init__(self, *, embed_all: bool = False) -> None:
        self.embed_all = embed_all  # serialize every constant (webml.onnx.save)
        self.initializers: list[TensorProto] = []
        self.external_files: dict[str, str] = {}  # initializer -> absolute path of its file
        self.ortvalues: dict[str, np.ndarray] = {}  # initializer -> array handed over as an OrtValue
        self.in_model_files: dict[str, np.ndarray] = {}  # initializer -> array that ONNX Runtime maps from its file
        self._named: dict[int, bool] = {}  # model files' mappings checked by file_location, for this model

    def add(self, name: str, array: np.ndarray, file: str | None = None) -> None:
        """The initializer ``name`` holding ``array``; ``file``: the shared-memory file that holds it."""
        large = not self.embed_all and array.nbytes >= EMBEDDED_BELOW
        in_model_file = file_location(array, self._named) if large and file is None else None
        if file is not None and not self.embed_all:
            # ONNX Runtime maps the same pages.
            self.initializers.append(
                _external_tensor(name, array, location=file.lstrip("/"), offset="0", length=str(array.nbytes))
            )
            self.external_files[name] = file
        elif in_model_file is not None:
            # ONNX Runtime maps the model file's pages (an OrtValue it would copy).
            path, offset = in_model_file
            self.initializers.append(
                _external_tensor(name, array, location=path.lstrip("/"), offset=str(offset), length=str(array.nbytes))
            )
            self.in_model_files[name] = array
        elif large:
            # No shared-memory file: hand the array over as an OrtValue.
            self.ortvalues[name] = np.asarray(array, order="C")
            self.initializers.append(_external_tensor(name, array, location=f"ortvalue-{name}"))
        else:
            self.initializers.append(numpy_helper.from_array(np.asarray(array, order="C"), name))

    def keep(self, used: set[str]) -> None:
        """Drop the initializers no node reads (a lowering may have read a constant at lowering time)."""
        self.initializers = [t for t in self.initializers if t.name in used]
        self.external_files = {k: v for k, v in self.external_files.items() if k in used}
        self.ortvalues = {k: v for k, v in self.ortvalues.items() if k in used}
        self.in_model_files = {k: v for k, v in self.in_model_files.items() if k in used}

    @property
    def located(self) -> bool:
        """Whether an initializer's data is at a path (below "/"), which ONNX Runtime must be told."""
        return bool(self.external_files or self.in_model_files)


def _external_tensor(name: str, array: np.ndarray, **external_data: str) -> TensorProto:
    """A TensorProto of ``array``'s type and shape whose data lives outside the protobuf."""
    t = TensorProto()
    t.name = name
    t.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
    t.dims.extend(array.shape)
    t.data_location = TensorProto.EXTERNAL
    for key, value in external_data.items():
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return t
