"""Key pairs of publishers and recipients.

A webml key pair is two keys of pyca ``cryptography``: an Ed25519 key that
signs packages (a publisher's) and an X25519 key that HPKE wraps content keys
to (a recipient's).  One pair serves both roles, so a publisher can open its
own packages (``unprotect``, ``rewrap``).

Files, both PEM (PKCS#8 for private keys, SubjectPublicKeyInfo for public
ones), the Ed25519 block first:

* ``NAME.key``: the two private keys, created readable by the user only
  (``0600``); loading refuses one that others can read, as ssh does;
* ``NAME.pub``: the two public keys, to hand to publishers (``--recipient``)
  and to devices that trust the publisher (``--trusted``).

>>> import tempfile, webml.protected as wp
>>> folder = tempfile.mkdtemp()
>>> private_path, public_path = wp.new_key_pair("device", folder)
>>> wp.load_public_key(public_path).key_id == wp.load_private_key(private_path).public_key().key_id
True
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from ..files import RefusedFileError, open_regular_file
from .errors import KeyFileError

__all__ = [
    "PrivateKey",
    "PublicKey",
    "generate_key_pair",
    "load_private_key",
    "load_public_key",
    "new_key_pair",
    "private_key_of",
    "public_key_of",
]

#: A key file is a few hundred bytes; anything much larger is not one (read no more).
MAX_KEY_FILE_BYTES = 16 << 10
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----\r?\n[A-Za-z0-9+/=\r\n]+-----END \1-----")
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def _raw(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(*_RAW)


@dataclass(frozen=True, eq=False)
class PublicKey:
    """A webml public key: ``signing`` (Ed25519) and ``agreement`` (X25519)."""

    signing: Ed25519PublicKey
    agreement: X25519PublicKey

    @property
    def key_id(self) -> str:
        """The recipient key id of packages: SHA-256 of the raw X25519 public key, hex."""
        return hashlib.sha256(_raw(self.agreement)).hexdigest()

    @property
    def signing_b64(self) -> str:
        """The raw Ed25519 public key, base64: how a package's header names its publisher."""
        return base64.b64encode(_raw(self.signing)).decode("ascii")

    @property
    def fingerprint(self) -> str:
        """A short name of the publisher key for messages: SHA-256 of the raw Ed25519 key, 16 hex digits."""
        return publisher_fingerprint(_raw(self.signing))

    def to_pem(self) -> bytes:
        pem = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        return self.signing.public_bytes(*pem) + self.agreement.public_bytes(*pem)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicKey):
            return NotImplemented
        return _raw(self.signing) == _raw(other.signing) and _raw(self.agreement) == _raw(other.agreement)

    def __hash__(self) -> int:
        return hash(self.key_id)

    def __repr__(self) -> str:
        return f"PublicKey(publisher {self.fingerprint}, recipient key id {self.key_id[:16]})"


def publisher_fingerprint(raw_signing_key: bytes) -> str:
    return hashlib.sha256(raw_signing_key).hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class PrivateKey:
    """A webml private key: ``signing`` (Ed25519) and ``agreement`` (X25519)."""

    signing: Ed25519PrivateKey
    agreement: X25519PrivateKey

    def public_key(self) -> PublicKey:
        return PublicKey(self.signing.public_key(), self.agreement.public_key())

    def to_pem(self) -> bytes:
        args = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        return self.signing.private_bytes(*args) + self.agreement.private_bytes(*args)

    def __repr__(self) -> str:  # never the key material
        return f"PrivateKey(publisher {self.public_key().fingerprint})"


def generate_key_pair() -> PrivateKey:
    """A new random key pair (in memory; :func:`new_key_pair` writes one to files)."""
    return PrivateKey(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())


def new_key_pair(name: str, folder: str | os.PathLike[str] = ".") -> tuple[Path, Path]:
    """Write a new key pair as ``folder/NAME.key`` (private, mode 0600) and ``folder/NAME.pub``;
    returns both paths.  Refuses to replace existing files."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise KeyFileError(
            f"keys new: the name must be letters, digits, '.', '_' or '-' (at most 100, not starting with "
            f"'.' or '-'), got {name!r}"
        )
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"keys new: folder must be a path, got {type(folder).__name__}")
    folder = Path(folder)
    if not folder.is_dir():
        raise KeyFileError(f"keys new: {str(folder)!r} is not a folder")
    private_path, public_path = folder / f"{name}.key", folder / f"{name}.pub"
    for path in (private_path, public_path):
        if os.path.lexists(path):
            raise KeyFileError(f"keys new: {str(path)!r} exists already; choose another name or remove it")
    key = generate_key_pair()
    _write_new(private_path, key.to_pem(), 0o600)
    try:
        comment = f"# webml public key {name}: publisher {key.public_key().fingerprint}\n".encode()
        _write_new(public_path, comment + key.public_key().to_pem(), 0o644)
    except BaseException:
        private_path.unlink(missing_ok=True)
        raise
    return private_path, public_path


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start (never a moment readable by others), ``data`` in it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    except OSError as exc:
        raise KeyFileError(f"keys new: cannot create {str(path)!r} ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _read_key_file(path: str | os.PathLike[str], what: str) -> tuple[bytes, os.stat_result]:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what} must be a key file path, got {type(path).__name__}")
    try:
        with open_regular_file(path, MAX_KEY_FILE_BYTES) as f:
            return f.read(), os.fstat(f.fileno())
    except FileNotFoundError:
        raise KeyFileError(f"{what}: no such key file: {os.fspath(path)!r}") from None
    except RefusedFileError as exc:
        raise KeyFileError(f"{what}: the key file {exc.path!r} {exc.reason}") from None


def _blocks(data: bytes, label: bytes) -> list[bytes]:
    return [m.group(0) for m in _PEM_BLOCK.finditer(data) if m.group(1) == label]


def _key_pair(
    blocks: list[bytes], load: Callable[[bytes], Any], kinds: tuple[type, type], what: str, name: str, hint: str
) -> tuple[Any, Any]:
    """The first key of each of ``kinds`` (signing, agreement) among the PEM ``blocks`` of the file ``name``,
    a ``what`` ("private key" or "public key") file; a block that cannot be read or a kind missing is a
    KeyFileError."""
    found: list[Any] = [None, None]
    for block in blocks:
        try:
            key = load(block)
        except (ValueError, TypeError):
            raise KeyFileError(f"{what}: {name!r} holds a key that cannot be read") from None
        for i, kind in enumerate(kinds):
            if isinstance(key, kind) and found[i] is None:
                found[i] = key
                break
    if None in found:
        raise KeyFileError(f"{what}: {name!r} is not a webml {what} (an Ed25519 and an X25519 key; {hint})")
    return found[0], found[1]


def load_private_key(path: str | os.PathLike[str]) -> PrivateKey:
    """The key pair in a ``NAME.key`` file; refuses a file that others can read or that is not one."""
    data, st = _read_key_file(path, "private key")
    name = os.fspath(path)
    if not _blocks(data, b"PRIVATE KEY") and _blocks(data, b"PUBLIC KEY"):
        raise KeyFileError(f"private key: {name!r} is a public key file; give the private key (.key) instead")
    if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"private key: {name!r} is readable by others (mode {stat.S_IMODE(st.st_mode):o}); "
            f"make it the user's only: chmod 600 {name}"
        )
    signing, agreement = _key_pair(
        _blocks(data, b"PRIVATE KEY"), lambda b: serialization.load_pem_private_key(b, password=None),
        (Ed25519PrivateKey, X25519PrivateKey), "private key", name, "make one with webml keys new NAME",
    )
    return PrivateKey(signing, agreement)


def load_public_key(path: str | os.PathLike[str]) -> PublicKey:
    """The public keys in a ``NAME.pub`` file (a ``NAME.key`` file is refused: hand out the .pub)."""
    data, _ = _read_key_file(path, "public key")
    name = os.fspath(path)
    if _blocks(data, b"PRIVATE KEY"):
        raise KeyFileError(f"public key: {name!r} is a private key file; give the .pub file instead")
    signing, agreement = _key_pair(
        _blocks(data, b"PUBLIC KEY"), serialization.load_pem_public_key,
        (Ed25519PublicKey, X25519PublicKey), "public key", name, "webml keys new NAME makes NAME.pub",
    )
    return PublicKey(signing, agreement)


def private_key_of(value: object, what: str = "key") -> PrivateKey:
    """``value`` (a PrivateKey or a path to a ``.key`` file) as a PrivateKey."""
    if isinstance(value, PrivateKey):
        return value
    if isinstance(value, (str, os.PathLike)):
        return load_private_key(value)
    raise TypeError(f"{what} must be a webml PrivateKey or the path of a .key file, got {type(value).__name__}")


def public_key_of(value: object, what: str = "public key") -> PublicKey:
    """``value`` (a PublicKey, a PrivateKey's public half, or a path to a ``.pub`` file) as a PublicKey."""
    if isinstance(value, PublicKey):
        return value
    if isinstance(value, PrivateKey):
        return value.public_key()
    if isinstance(value, (str, os.PathLike)):
        return load_public_key(value)
    raise TypeError(f"{what} must be a webml PublicKey or the path of a .pub file, got {type(value).__name__}")
