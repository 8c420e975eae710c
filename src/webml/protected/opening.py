"""Opening a package: every check before any byte is decrypted, then decryption chunk by chunk in memory.

The order is the point (docs/protected-models.md, "Opening"):

1. the file: a regular file of bounded size, its header lengths within bounds and inside the file;
2. the publisher named in the header must be one of the trusted keys, and the Ed25519 signature over
   the whole header must verify with it: nothing of the header is believed before;
3. the signed header's fields are checked, and the file must be exactly as long as the header says
   (a truncated or extended file is refused here, before decryption);
4. expiry and the backend bound;
5. the content key and the recipient's MAC key are unwrapped with its X25519 key (HPKE);
6. each entry's payload (ciphertexts and tags) must carry the recipient's GMAC listed in the signed
   header: the publisher sealed these bytes (another recipient, who knows the content key, could
   make chunks whose GCM tags verify, but not this MAC);
7. AES-256-GCM decrypts each chunk into the entry's buffer, its tag checked with the associated data.

Only after every chunk of every entry has passed does the caller get the plaintext, so a package
that fails anywhere gives its error before any weight reaches a backend.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import hmac
import mmap
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..files import RefusedFileError, open_regular_file
from ..storage import anonymous_memory
from . import format as fmt
from .errors import PackageError, PackageRefusedError
from .keys import PrivateKey, PublicKey, publisher_fingerprint

__all__ = ["Opened", "mapped_file", "open_package", "read_header"]

#: The largest package read: the largest entries webml loads, and their tags.
MAX_PACKAGE_BYTES = fmt.MAX_ENTRY_BYTES + (64 << 20)


@dataclass
class Opened:
    """A verified, decrypted package: its header and each entry's plaintext (private buffers)."""

    header: fmt.Header
    entries: dict[str, Plaintext]

    def wipe(self) -> None:
        """Overwrite the plaintext with zeros, and give anonymous mappings back to the system."""
        for buffer in self.entries.values():
            zero(buffer)
            if isinstance(buffer, mmap.mmap):
                with contextlib.suppress(BufferError):  # a view still alive: unmapped with its last user
                    buffer.close()


#: An entry's plaintext: private anonymous memory (webml.storage.anonymous_memory), unmapped, not
#: left in the heap, once nothing uses it.
Plaintext = mmap.mmap | bytearray


def zero(buffer: Plaintext) -> None:
    """Fill ``buffer`` with zeros in place (memset: 20 times faster than assigning a bytes of zeros)."""
    if len(buffer) and not (isinstance(buffer, mmap.mmap) and buffer.closed):
        ctypes.memset((ctypes.c_char * len(buffer)).from_buffer(buffer), 0, len(buffer))


@contextmanager
def _mapped(path: str | os.PathLike[str], what: str) -> Iterator[memoryview]:
    """The package file's bytes (a read-only mapping: the ciphertext is never copied whole)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what}: expected the path of a .webmlpkg file, got {type(path).__name__}")
    name = repr(os.fspath(path))
    try:
        f = open_regular_file(path, MAX_PACKAGE_BYTES)
    except FileNotFoundError:
        raise PackageError(f"{what}: no such package: {name}") from None
    except RefusedFileError as exc:
        raise PackageError(f"{what}: {name} {exc.reason}") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size < fmt.PREAMBLE.size:
            raise PackageError(f"{what}: {name} is not a webml package (too short: {size} bytes)")
        with mapped_file(f) as view:
            yield view


@contextmanager
def mapped_file(f: BinaryIO) -> Iterator[memoryview]:
    """An open file's bytes as a read-only mapping, unmapped when the block ends."""
    mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    view = memoryview(mapping)
    try:
        yield view
    finally:
        view.release()
        mapping.close()


def _header_parts(data: memoryview, where: str, name: str) -> tuple[bytes, bytes, bytes]:
    what = f"{where}: {name}"
    c, r = fmt.read_preamble(bytes(data[: fmt.PREAMBLE.size]), len(data), what)
    start = fmt.PREAMBLE.size
    content = bytes(data[start : start + c])
    recipients = bytes(data[start + c : start + c + r])
    signature = bytes(data[start + c + r : start + c + r + fmt.SIGNATURE_BYTES])
    return content, recipients, signature


def _verified_header(
    data: memoryview, trusted: Iterable[PublicKey] | None, where: str, name: str
) -> tuple[fmt.Header, bool]:
    """The header, its signature verified against the trusted publisher keys (or, with ``trusted``
    None, only against the key it names: intact, but not known to be anyone's), and whether the
    publisher is trusted."""
    what = f"{where}: {name}"
    content, recipients, signature = _header_parts(data, where, name)
    publisher = fmt.publisher_of(content, what)
    if trusted is not None:
        known = {k.signing_b64 for k in trusted}
        if fmt.b64(publisher) not in known:
            raise PackageRefusedError(
                f"{what} is signed by publisher {publisher_fingerprint(publisher)}, which is not among the "
                f"trusted publisher keys ({len(known)} given)"
            )
    try:
        Ed25519PublicKey.from_public_bytes(publisher).verify(signature, fmt.signed_bytes(content, recipients))
    except InvalidSignature:
        raise PackageError(
            f"{what}: the publisher's signature does not verify: the package was altered after it was signed"
        ) from None
    header = fmt.parse_header(content, recipients, signature, what)
    expected = header.header_size + header.payload_size
    if len(data) < expected:
        raise PackageError(f"{what} is truncated: {len(data):,} bytes of the {expected:,} its signed header lists")
    if len(data) > expected:
        raise PackageError(f"{what} has {len(data) - expected:,} bytes more than its signed header lists")
    return header, trusted is not None


def read_header(
    path: str | os.PathLike[str], trusted: Iterable[PublicKey] | None = None, where: str = "describe"
) -> tuple[fmt.Header, bool]:
    """A package's verified header, never decrypting anything (see :func:`_verified_header`)."""
    with _mapped(path, where) as data:
        return _verified_header(data, trusted, where, repr(os.fspath(path)))


def check_may_open(header: fmt.Header, backend: str | None, now: dt.datetime, what: str) -> None:
    """Refuse an expired package, or one bound to other backends than ``backend`` (None: no bound checked)."""
    if header.expires is not None and now >= header.expires:
        raise PackageRefusedError(f"{what} expired on {fmt.iso(header.expires)}")
    if backend is not None and header.backends is not None and backend not in header.backends:
        raise PackageRefusedError(
            f"{what} may be opened only by the backends {', '.join(header.backends)}, not {backend}"
        )


@dataclass(frozen=True)
class Unwrapped:
    """What HPKE gave a recipient: the content key, its own MAC key, and its entry of the header."""

    content_key: bytes
    mac_key: bytes
    recipient: fmt.Recipient


def unwrap(header: fmt.Header, key: PrivateKey, what: str) -> Unwrapped:
    """The content key and the recipient's MAC key, unwrapped with ``key`` (HPKE)."""
    key_id = key.public_key().key_id
    entry = next((r for r in header.recipients if hmac.compare_digest(r.key_id, key_id)), None)
    if entry is None:
        raise PackageRefusedError(
            f"{what} is not wrapped for this key (recipient key id {key_id[:16]}; the package has "
            f"{len(header.recipients)} recipient(s))"
        )
    try:
        keys = fmt.SUITE.decrypt(
            entry.enc + entry.wrapped, key.agreement, info=fmt.hpke_info(header.package_id, header.content_hash)
        )
    except (InvalidTag, ValueError):
        raise PackageError(f"{what}: the content key does not unwrap with this key (the package was altered)") from None
    if len(keys) != fmt.WRAPPED_PLAINTEXT_BYTES:
        raise PackageError(f"{what}: the wrapped keys have the wrong size")
    return Unwrapped(keys[: fmt.KEY_BYTES], keys[fmt.KEY_BYTES :], entry)


def check_payload(data: memoryview, header: fmt.Header, keys: Unwrapped, what: str) -> None:
    """Each entry's payload must carry this recipient's GMAC: it was sealed by the publisher, not forged
    by another recipient (who knows the content key but not this recipient's MAC key)."""
    for index, (entry, start) in enumerate(zip(header.entries, header.entry_offsets())):
        with data[start : start + fmt.entry_payload_size(entry)] as payload:
            mac = fmt.payload_mac(keys.mac_key, index, payload)
        if not hmac.compare_digest(mac, keys.recipient.macs[index]):
            raise PackageError(
                f"{what}: the encrypted {entry.name!r} was altered (its MAC for this recipient does not verify)"
            )


def decrypt_entries(data: memoryview, header: fmt.Header, content_key: bytes, what: str) -> dict[str, Plaintext]:
    """Each entry's plaintext, every chunk's GCM tag checked."""
    aead = AESGCM(content_key)
    content_hash = header.content_hash
    out: dict[str, Plaintext] = {}
    for entry_index, (entry, offset) in enumerate(zip(header.entries, header.entry_offsets())):
        plain = anonymous_memory(entry.size)  # bounded: the file holds at least this many bytes, checked above
        target = memoryview(plain)
        for chunk in range(entry.chunks):
            start = chunk * header.chunk_size
            n = min(header.chunk_size, entry.size - start)
            # Views of the mapping are released at once: the mapping closes even after an error.
            with data[offset : offset + n + fmt.TAG_BYTES] as sealed, target[start : start + n] as into:
                aad = fmt.chunk_aad(header.package_id, content_hash, entry.name, chunk, chunk == entry.chunks - 1)
                try:
                    aead.decrypt_into(fmt.chunk_nonce(entry_index, chunk), sealed, aad, into)
                except InvalidTag:
                    into.release()
                    target.release()
                    zero(plain)
                    raise PackageError(f"{what}: chunk {chunk} of {entry.name!r} does not authenticate") from None
            offset += n + fmt.TAG_BYTES
        target.release()
        out[entry.name] = plain
    return out


def open_package(
    path: str | os.PathLike[str],
    *,
    key: PrivateKey,
    trusted: Iterable[PublicKey],
    backend: str | None = None,
    now: dt.datetime | None = None,
    publisher_only: bool = False,
    where: str = "webml.protected.load",
) -> Opened:
    """Verify and decrypt the package at ``path`` for ``key`` (see the module's steps).

    ``backend``: the context's backend, checked against the package's bound.  ``publisher_only``:
    ``key`` must be the publisher's own (unprotect, rewrap), who is not bound by expiry or backends.
    """
    name = repr(os.fspath(path)) if isinstance(path, (str, os.PathLike)) else ""
    what = f"{where}: {name}"
    with _mapped(path, where) as data:
        header, _ = _verified_header(data, list(trusted), where, name)
        if publisher_only:
            if header.publisher != key.public_key().signing.public_bytes_raw():
                raise PackageRefusedError(
                    f"{what} was published by {publisher_fingerprint(header.publisher)}; only its publisher's "
                    "key may do this"
                )
        else:
            check_may_open(header, backend, now or dt.datetime.now(dt.UTC), what)
        keys = unwrap(header, key, what)
        check_payload(data, header, keys, what)
        return Opened(header, decrypt_entries(data, header, keys.content_key, what))
