"""Writing packages: sealing entries under a fresh content key (protect), and re-wrapping it (rewrap).

A package is written to a temporary file beside the output and renamed over
it once complete, so a reader never sees half of one.  The header's sizes are
all known before the first chunk (each recipient's payload MACs have a fixed
size), so the chunks are encrypted and written one at a time, then the MACs
of what was written and the signature go into their places.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import format as fmt
from .errors import PackageError
from .keys import PrivateKey, PublicKey
from .opening import mapped_file

__all__ = ["rewrap_file", "seal"]


@dataclass
class _Wrapping:
    """A recipient being written: its public key, whether it is the publisher, its MAC key and HPKE output."""

    public: PublicKey
    is_publisher: bool
    mac_key: bytes
    enc: bytes
    wrapped: bytes

    def entry(self, macs: tuple[bytes, ...]) -> fmt.Recipient:
        return fmt.Recipient(self.public.key_id, self.enc, self.wrapped, macs, self.is_publisher)


def wrap_for(
    recipients: Iterable[tuple[PublicKey, bool]], content_key: bytes, package_id: bytes, content_hash: bytes
) -> list[_Wrapping]:
    """The content key and a fresh MAC key wrapped (HPKE) for each ``(public key, is the publisher)``,
    one per key id."""
    out: dict[str, _Wrapping] = {}
    info = fmt.hpke_info(package_id, content_hash)
    for public, is_publisher in recipients:
        if public.key_id in out and not is_publisher:
            continue
        mac_key = secrets.token_bytes(fmt.KEY_BYTES)
        sealed = fmt.SUITE.encrypt(content_key + mac_key, public.agreement, info=info)
        out[public.key_id] = _Wrapping(public, is_publisher, mac_key, sealed[: fmt.ENC_BYTES], sealed[fmt.ENC_BYTES :])
    return list(out.values())


def _macs(wrapping: _Wrapping, data: memoryview, header_entries: list[fmt.Entry], start: int) -> tuple[bytes, ...]:
    """The recipient's GMAC of each entry's payload, the payload starting at ``start`` of ``data``."""
    macs = []
    for index, entry in enumerate(header_entries):
        size = fmt.entry_payload_size(entry)
        with data[start : start + size] as payload:
            macs.append(fmt.payload_mac(wrapping.mac_key, index, payload))
        start += size
    return tuple(macs)


@contextmanager
def _replacing(output: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A new temporary file beside ``output``, renamed to it when the block ends without an error."""
    folder = output.parent
    if not folder.is_dir():
        raise PackageError(f"protect: the folder of {str(output)!r} does not exist")
    temporary = folder / f".{output.name}.{secrets.token_hex(4)}.part"
    # Read and write: the MACs are computed over the written ciphertext, mapped.
    fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        with os.fdopen(fd, "w+b") as f:
            yield f
        os.replace(temporary, output)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def seal(
    output: Path,
    entries: list[tuple[str, memoryview]],
    *,
    key: PrivateKey,
    recipients: list[PublicKey],
    kind: str,
    io: dict,
    created: dt.datetime,
    expires: dt.datetime | None,
    backends: tuple[str, ...] | None,
) -> fmt.Header:
    """Write a package of ``entries`` (name, plaintext) to ``output``; the publisher ``key`` signs it and
    is a recipient too."""
    package_id = secrets.token_bytes(16)
    content_key = AESGCM.generate_key(bit_length=256)
    listed = [fmt.Entry(name, len(data), fmt.chunk_count(len(data))) for name, data in entries]
    publisher = key.public_key()
    content = fmt.content_header(
        package_id=package_id,
        publisher_b64=publisher.signing_b64,
        created=created,
        expires=expires,
        backends=backends,
        kind=kind,
        entries=listed,
        io=io,
    )
    content_hash = hashlib.sha256(content).digest()
    wrappings = wrap_for([(publisher, True), *((r, False) for r in recipients)], content_key, package_id, content_hash)
    blank = tuple(bytes(fmt.MAC_BYTES) for _ in listed)
    # The MACs are of the ciphertext, written below; their JSON has the same length as the blanks'.
    placeholder = fmt.recipients_json([w.entry(blank) for w in wrappings])
    header_size = fmt.PREAMBLE.size + len(content) + len(placeholder) + fmt.SIGNATURE_BYTES
    aead = AESGCM(content_key)
    with _replacing(output) as f:
        f.write(fmt.signed_bytes(content, placeholder))
        f.write(bytes(fmt.SIGNATURE_BYTES))
        for entry_index, ((name, data), entry) in enumerate(zip(entries, listed)):
            for chunk in range(entry.chunks):
                piece = data[chunk * fmt.CHUNK_SIZE : (chunk + 1) * fmt.CHUNK_SIZE]
                aad = fmt.chunk_aad(package_id, content_hash, name, chunk, chunk == entry.chunks - 1)
                f.write(aead.encrypt(fmt.chunk_nonce(entry_index, chunk), piece, aad))
        f.flush()
        with mapped_file(f) as written:
            recipients_bytes = fmt.recipients_json([w.entry(_macs(w, written, listed, header_size)) for w in wrappings])
        if len(recipients_bytes) != len(placeholder):  # pragma: no cover - base64 of fixed sizes
            raise AssertionError("the recipient list changed length")
        signature = key.signing.sign(fmt.signed_bytes(content, recipients_bytes))
        f.seek(0)
        f.write(fmt.signed_bytes(content, recipients_bytes))
        f.write(signature)
    return fmt.parse_header(content, recipients_bytes, signature, str(output))


def rewrap_file(
    data: memoryview,
    header: fmt.Header,
    output: Path,
    *,
    key: PrivateKey,
    content_key: bytes,
    add: list[PublicKey],
    remove: set[str],
) -> fmt.Header:
    """Write ``header``'s package (its bytes ``data``) with a new recipient list, signed again; the
    content header and every chunk stay as they are (nothing is decrypted or encrypted again): an
    added recipient gets the content key, a MAC key of its own and the payload's MACs under it."""
    kept = [r for r in header.recipients if r.key_id not in remove]
    kept_ids = {r.key_id for r in kept}
    new = wrap_for(((p, False) for p in add if p.key_id not in kept_ids), content_key, header.package_id,
                   header.content_hash)
    entries = list(header.entries)
    added = [w.entry(_macs(w, data, entries, header.header_size)) for w in new]
    recipients_bytes = fmt.recipients_json([*kept, *added])
    signature = key.signing.sign(fmt.signed_bytes(header.content_bytes, recipients_bytes))
    with _replacing(output) as f:
        f.write(fmt.signed_bytes(header.content_bytes, recipients_bytes))
        f.write(signature)
        start = header.header_size
        step = 64 << 20
        for offset in range(start, len(data), step):
            with data[offset : min(offset + step, len(data))] as piece:
                f.write(piece)
    return fmt.parse_header(header.content_bytes, recipients_bytes, signature, str(output))
