"""Protected models: encrypted, signed ``.webmlpkg`` packages whose weights are never written in the clear.

A publisher encrypts a model for chosen recipients (devices or services,
each a key pair) and signs it; a recipient that trusts the publisher loads it
straight into a context: the signature is verified before anything is
decrypted, the model is decrypted chunk by chunk in memory and built from
memory, and the built graph never gives its weights back (its constants are
unreadable, ``webml.onnx.save`` refuses it).  ``docs/protected-models.md``
has the format byte by byte and the threat model: what this protects, and
what it cannot.

>>> import tempfile, numpy as np, onnx, webml, webml.protected as wp
>>> from onnx import helper, numpy_helper
>>> folder = tempfile.mkdtemp()
>>> publisher = wp.generate_key_pair(); device = wp.generate_key_pair()
>>> weights = numpy_helper.from_array(np.full((2, 2), 0.5, np.float32), "w")
>>> model = helper.make_model(helper.make_graph(
...     [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
...     [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2])],
...     [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2])], [weights]))
>>> package = wp.protect(model, folder + "/m.webmlpkg", recipients=[device.public_key()], key=publisher)
>>> context = webml.ml.create_context(backend="onnxruntime")
>>> graph = wp.load(package, context, key=device, trusted=[publisher.public_key()])
>>> context.compute(graph, {"x": np.ones((1, 2), np.float32)})["y"]
array([[1., 1.]], dtype=float32)
>>> graph.protected
True
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import format as fmt
from .errors import KeyFileError, PackageError, PackageRefusedError, ProtectedError
from .keys import (
    PrivateKey,
    PublicKey,
    generate_key_pair,
    load_private_key,
    load_public_key,
    new_key_pair,
    private_key_of,
    public_key_of,
)
from .opening import open_package, read_header

if TYPE_CHECKING:
    import onnx

    from ..api.context import MLContext
    from ..api.graph import MLGraph

__all__ = [
    "KeyFileError",
    "PackageError",
    "PackageRefusedError",
    "PrivateKey",
    "ProtectedError",
    "PublicKey",
    "describe",
    "generate_key_pair",
    "load",
    "load_private_key",
    "load_public_key",
    "new_key_pair",
    "protect",
    "rewrap",
    "unprotect",
]

_MODEL_ENTRY = "model.onnx"


def _trusted(trusted: object, where: str) -> list[PublicKey]:
    if trusted is None or isinstance(trusted, (str, os.PathLike, PublicKey, PrivateKey)):
        trusted = [] if trusted is None else [trusted]
    if not isinstance(trusted, Iterable):
        raise TypeError(f"{where}: trusted must be a list of publisher public keys (or .pub paths)")
    keys = [public_key_of(t, f"{where}: trusted") for t in trusted]  # type: ignore[union-attr]
    if not keys:
        raise TypeError(f"{where}: trusted must name at least one publisher public key (or .pub path)")
    return keys


def _output_path(value: object, where: str, what: str = "output") -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{where}: {what} must be a path, got {type(value).__name__}")
    return Path(value)


def _onnx_bytes(model: Any, where: str) -> bytes:
    """The ONNX model ``model`` (a path, bytes, a ModelProto or an MLGraph) serialized, read and checked by
    webml's importer first (external data folded in)."""
    import onnx

    from .. import onnx as webml_onnx
    from ..api.graph import MLGraph

    if isinstance(model, MLGraph):
        proto = webml_onnx.to_model(model)
    elif isinstance(model, (str, os.PathLike, bytes, onnx.ModelProto)):
        try:
            proto = webml_onnx.read_model(model)
        except webml_onnx.OnnxImportError as exc:
            raise PackageError(f"{where}: {exc}") from None
    else:
        raise TypeError(
            f"{where}: model must be an ONNX path, bytes, an onnx.ModelProto or an MLGraph, got {type(model).__name__}"
        )
    if proto.ByteSize() >= fmt.MAX_ENTRY_BYTES:
        raise PackageError(f"{where}: the model is {proto.ByteSize():,} bytes; a package holds at most 2 GiB")
    return proto.SerializeToString()


def _io(model_bytes: bytes) -> dict[str, Any]:
    """The model's inputs and outputs (names, element types, shapes): signed in the header so that
    ``webml info`` and the service describe the model without decrypting it."""
    import onnx
    from onnx import helper

    proto = onnx.ModelProto()
    proto.ParseFromString(model_bytes)
    initializers = {t.name for t in proto.graph.initializer}

    def describe(value: onnx.ValueInfoProto) -> dict[str, Any]:
        t = value.type.tensor_type
        known = t.elem_type in onnx.TensorProto.DataType.values() and t.elem_type != 0
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(t.elem_type).name if known else None
        return {"name": value.name, "dtype": dtype, "shape": dims}

    return {
        "inputs": [describe(v) for v in proto.graph.input if v.name not in initializers],
        "outputs": [describe(v) for v in proto.graph.output],
    }


def _expiry(expires: object, created: dt.datetime, where: str) -> dt.datetime | None:
    if expires is None:
        return None
    if isinstance(expires, dt.timedelta):
        expires = created + expires
    if not isinstance(expires, dt.datetime):
        raise TypeError(f"{where}: expires must be a datetime, a timedelta or None, got {type(expires).__name__}")
    if expires.tzinfo is None:
        raise TypeError(f"{where}: expires must be timezone-aware (e.g. datetime.now(timezone.utc) + ...)")
    if expires <= created:
        raise ValueError(f"{where}: expires ({fmt.iso(expires)}) must come after created ({fmt.iso(created)})")
    return expires.replace(microsecond=0)


def _backends(backends: object, where: str) -> tuple[str, ...] | None:
    from ..backends import BACKENDS

    if backends is None:
        return None
    if isinstance(backends, str) or not isinstance(backends, Iterable):
        raise TypeError(f"{where}: backends must be a list of backend names or None")
    names = tuple(dict.fromkeys(backends))
    unknown = [b for b in names if b not in BACKENDS]
    if unknown or not names:
        raise ValueError(f"{where}: backends must name some of {', '.join(BACKENDS)}; got {list(names)}")
    return names


def protect(
    model: str | os.PathLike[str] | bytes | onnx.ModelProto | MLGraph,
    output: str | os.PathLike[str],
    *,
    recipients: Sequence[PublicKey | str | os.PathLike[str]],
    key: PrivateKey | str | os.PathLike[str],
    expires: dt.datetime | dt.timedelta | None = None,
    backends: Sequence[str] | None = None,
    created: dt.datetime | None = None,
) -> Path:
    """Encrypt ``model`` for ``recipients`` and sign it with the publisher's ``key``; returns ``output``.

    ``model``: an ONNX model (path, bytes or ModelProto, checked by webml's importer; external data is
    folded in) or an MLGraph that kept its constants.  ``recipients``: public keys (or ``.pub`` paths)
    that may open the package; the publisher can always open its own.  ``expires``: a moment (or a
    time from ``created``, default now) after which loading is refused.  ``backends``: the only
    backends whose contexts may load it.
    """
    where = "protect"
    signer = private_key_of(key, f"{where}: key")
    if isinstance(recipients, (str, os.PathLike, PublicKey)) or not isinstance(recipients, Iterable):
        raise TypeError(f"{where}: recipients must be a list of public keys (or .pub paths)")
    publics = [public_key_of(r, f"{where}: recipient") for r in recipients]
    created = (created or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    if created.tzinfo is None:
        raise TypeError(f"{where}: created must be timezone-aware")
    expiry = _expiry(expires, created, where)
    bound = _backends(backends, where)
    out = _output_path(output, where)
    data = _onnx_bytes(model, where)
    from .sealing import seal

    seal(
        out,
        [(_MODEL_ENTRY, memoryview(data))],
        key=signer,
        recipients=publics,
        kind="onnx",
        io=_io(data),
        created=created,
        expires=expiry,
        backends=bound,
    )
    return out


def load(
    package: str | os.PathLike[str],
    context: MLContext,
    *,
    key: PrivateKey | str | os.PathLike[str],
    trusted: Sequence[PublicKey | str | os.PathLike[str]] | PublicKey | str | os.PathLike[str],
    free_dimensions: dict[str, int] | None = None,
    input_shapes: dict[str, Sequence[int]] | None = None,
) -> MLGraph:
    """The protected model in ``package`` built in ``context``, for the recipient ``key``.

    The package must be signed by one of the ``trusted`` publisher keys; its signature, expiry,
    backend bound and every chunk are checked before anything reaches the backend (a failure is a
    :class:`PackageError`, :class:`PackageRefusedError` for an intact package that may not be opened
    here).  The plaintext lives only in this process's memory; the graph is :attr:`MLGraph.protected`.
    Dynamic input dimensions must be fixed by ``free_dimensions`` or ``input_shapes``.
    """
    from ..api.context import MLContext
    from ..onnx import importer
    from ..storage import return_freed_memory

    where = "webml.protected.load"
    if not isinstance(context, MLContext):
        raise TypeError(f"{where}: context must be an MLContext, got {type(context).__name__}")
    recipient = private_key_of(key, f"{where}: key")
    publishers = _trusted(trusted, where)
    opened = open_package(package, key=recipient, trusted=publishers, backend=context.backend, where=where)
    plain = opened.entries.get(_MODEL_ENTRY) if opened.header.kind == "onnx" else None
    if plain is None:
        opened.wipe()
        raise PackageError(f"{where}: the package holds no {_MODEL_ENTRY}")
    try:
        # The decrypted buffer is nobody else's: the graph uses its large weights in place (no second
        # copy); it lives as long as the graph needs them, and is unmapped with the last of them.
        graph = importer.load(
            memoryview(plain).toreadonly(), context, free_dimensions, input_shapes=input_shapes, protected=True
        )
    except importer.OnnxImportError as exc:
        opened.wipe()
        raise PackageError(f"{where}: the protected model cannot be loaded: {exc}") from None
    except BaseException:
        opened.wipe()
        raise
    finally:
        return_freed_memory()
    return graph  # type: ignore[return-value]


def unprotect(
    package: str | os.PathLike[str], output: str | os.PathLike[str], *, key: PrivateKey | str | os.PathLike[str]
) -> Path:
    """Write the plaintext ONNX model of ``package`` to ``output`` (created, owner-only; never replaced).

    Only the publisher's own ``key`` may: a recipient can load a package, never extract it.
    """
    where = "unprotect"
    publisher = private_key_of(key, f"{where}: key")
    out = _output_path(output, where)
    if os.path.lexists(out):
        raise PackageError(f"{where}: {str(out)!r} exists already; it is never replaced")
    header, _ = read_header(package, None, where)
    if header.publisher != publisher.public_key().signing.public_bytes_raw():
        raise PackageRefusedError(
            f"{where}: {os.fspath(package)!r} was published by {header_fingerprint(header)}; only its "
            "publisher's own key may unprotect it (a recipient can load it, never extract it)"
        )
    opened = open_package(
        package, key=publisher, trusted=[publisher.public_key()], publisher_only=True, where=where
    )
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(opened.entries[_MODEL_ENTRY])
    finally:
        opened.wipe()
    return out


def header_fingerprint(header: fmt.Header) -> str:
    from .keys import publisher_fingerprint

    return publisher_fingerprint(header.publisher)


def rewrap(
    package: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    key: PrivateKey | str | os.PathLike[str],
    add: Sequence[PublicKey | str | os.PathLike[str]] = (),
    remove: Sequence[PublicKey | str | os.PathLike[str]] = (),
) -> Path:
    """A copy of ``package`` at ``output`` (may be the same path) whose recipients are ``add``-ed and
    ``remove``-d, signed again by its publisher's ``key``; the encrypted model is copied unchanged.

    ``remove`` takes public keys, ``.pub`` paths or recipient key ids (hex).  A removed recipient no
    longer opens the new file; one that kept the old file or the content key still can: to revoke
    for certain, ``protect`` the model again (a new content key).
    """
    from .opening import _mapped, _verified_header, check_payload, unwrap
    from .sealing import rewrap_file

    where = "rewrap"
    publisher = private_key_of(key, f"{where}: key")
    added = [public_key_of(a, f"{where}: add") for a in add]
    removed = set()
    for r in remove:
        removed.add(r.lower() if isinstance(r, str) and len(r) == 64 and not os.path.exists(r)
                    else public_key_of(r, f"{where}: remove").key_id)
    if publisher.public_key().key_id in removed:
        raise ValueError(f"{where}: the publisher's own key cannot be removed (it is how the publisher re-wraps)")
    out = _output_path(output, where)
    if not isinstance(package, (str, os.PathLike)):
        raise TypeError(f"{where}: expected the path of a .webmlpkg file, got {type(package).__name__}")
    name = repr(os.fspath(package))
    with _mapped(package, where) as data:
        header, _ = _verified_header(data, [publisher.public_key()], where, name)
        if header.publisher != publisher.public_key().signing.public_bytes_raw():  # pragma: no cover - trusted above
            raise PackageRefusedError(f"{where}: {name} was published by another key")
        unknown = removed - {r.key_id for r in header.recipients}
        if unknown:
            raise ValueError(f"{where}: {name} has no recipient with key id {', '.join(sorted(unknown))}")
        keys = unwrap(header, publisher, f"{where}: {name}")
        check_payload(data, header, keys, f"{where}: {name}")  # never sign again what someone else altered
        rewrap_file(data, header, out, key=publisher, content_key=keys.content_key, add=added, remove=removed)
    return out


def describe(
    package: str | os.PathLike[str],
    *,
    trusted: Sequence[PublicKey | str | os.PathLike[str]] | None = None,
) -> dict[str, Any]:
    """The signed header of ``package``, its signature verified, never decrypting anything.

    With ``trusted``, the publisher must be one of them (else :class:`PackageRefusedError`); without,
    the signature is checked against the key the header names (``"trusted": None``: intact, but the
    publisher is not known to be anyone in particular).
    """
    from .keys import publisher_fingerprint

    where = "describe"
    keys = None if trusted is None else _trusted(trusted, where)
    header, is_trusted = read_header(package, keys, where)
    return {
        "package": os.fspath(package),
        "format_version": fmt.VERSION,
        "package_id": header.package_id.hex(),
        "publisher": {
            "key": fmt.b64(header.publisher),
            "fingerprint": publisher_fingerprint(header.publisher),
            "trusted": True if is_trusted else None,
        },
        "signature": "valid",
        "created": fmt.iso(header.created),
        "expires": None if header.expires is None else fmt.iso(header.expires),
        "backends": None if header.backends is None else list(header.backends),
        "kind": header.kind,
        "cipher": fmt.CIPHER,
        "key_wrap": fmt.WRAP,
        "chunk_size": header.chunk_size,
        "entries": [{"name": e.name, "size": e.size, "chunks": e.chunks} for e in header.entries],
        "inputs": header.io.get("inputs", []),
        "outputs": header.io.get("outputs", []),
        "recipients": [{"key_id": r.key_id, "publisher": r.publisher} for r in header.recipients],
        "package_bytes": header.header_size + header.payload_size,
    }

