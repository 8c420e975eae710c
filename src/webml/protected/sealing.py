"""Writing packages: sealing entries under a fresh content key (protect), and re-wrapping it (rewrap).

A package is written to a temporary file beside the output and renamed over
it once complete, so a reader never sees half of one.  The header's sizes are
all known before the first chunk (the digests take 32 bytes a chunk), so the
chunks are encrypted and written one at a time, and the digests and the
signature are written into their places last.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import format as fmt
from .errors import PackageError
from .keys import PrivateKey, PublicKey

__all__ = ["rewrap_file", "seal"]


def wrap_for(
    recipients: Iterable[tuple[PublicKey, bool]], content_key: bytes, package_id: bytes, content_hash: bytes
) -> list[fmt.Recipient]:
    """The content key wrapped (HPKE) for each ``(public key, is the publisher)``, one entry per key."""
    out: dict[str, fmt.Recipient] = {}
    info = fmt.hpke_info(package_id, content_hash)
    for public, is_publisher in recipients:
        sealed = fmt.SUITE.encrypt(content_key, public.agreement, info=info)
        entry = fmt.Recipient(public.key_id, sealed[: fmt.ENC_BYTES], sealed[fmt.ENC_BYTES :], is_publisher)
        if entry.key_id not in out or is_publisher:
            out[entry.key_id] = entry
    return list(out.values())


@contextmanager
def _replacing(output: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A new temporary file beside ``output``, renamed to it when the block ends without an error."""
    folder = output.parent
    if not folder.is_dir():
        raise PackageError(f"protect: the folder of {str(output)!r} does not exist")
    temporary = folder / f".{output.name}.{secrets.token_hex(4)}.part"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        with os.fdopen(fd, "wb") as f:
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
    wrapped = wrap_for([(publisher, True), *((r, False) for r in recipients)], content_key, package_id, content_hash)
    recipients_bytes = fmt.recipients_json(wrapped)
    chunks = sum(e.chunks for e in listed)
    aead = AESGCM(content_key)
    digests = bytearray()
    with _replacing(output) as f:
        f.write(fmt.signed_bytes(content, bytes(fmt.DIGEST_BYTES * chunks), recipients_bytes))
        f.write(bytes(fmt.SIGNATURE_BYTES))
        for entry_index, ((name, data), entry) in enumerate(zip(entries, listed)):
            for chunk in range(entry.chunks):
                piece = data[chunk * fmt.CHUNK_SIZE : (chunk + 1) * fmt.CHUNK_SIZE]
                aad = fmt.chunk_aad(package_id, content_hash, name, chunk, chunk == entry.chunks - 1)
                sealed = aead.encrypt(fmt.chunk_nonce(entry_index, chunk), piece, aad)
                digests += hashlib.sha256(sealed).digest()
                f.write(sealed)
        digests_bytes = bytes(digests)
        signature = key.signing.sign(fmt.signed_bytes(content, digests_bytes, recipients_bytes))
        f.seek(fmt.PREAMBLE.size + len(content))
        f.write(digests_bytes)
        f.seek(len(recipients_bytes), os.SEEK_CUR)
        f.write(signature)
    return fmt.parse_header(content, digests_bytes, recipients_bytes, signature, str(output))


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
    content header and every chunk stay as they are (nothing is decrypted or encrypted again)."""
    kept = [r for r in header.recipients if r.key_id not in remove]
    kept_ids = {r.key_id for r in kept}
    new = wrap_for(((p, False) for p in add if p.key_id not in kept_ids), content_key, header.package_id,
                   header.content_hash)
    recipients_bytes = fmt.recipients_json([*kept, *new])
    signature = key.signing.sign(fmt.signed_bytes(header.content_bytes, header.digests, recipients_bytes))
    with _replacing(output) as f:
        f.write(fmt.signed_bytes(header.content_bytes, header.digests, recipients_bytes))
        f.write(signature)
        start = header.header_size
        step = 64 << 20
        for offset in range(start, len(data), step):
            with data[offset : min(offset + step, len(data))] as piece:
                f.write(piece)
    return fmt.parse_header(header.content_bytes, header.digests, recipients_bytes, signature, str(output))
