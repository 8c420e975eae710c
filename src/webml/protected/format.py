"""The ``.webmlpkg`` format: layout, header, and the bindings of every chunk (docs/protected-models.md).

All integers little-endian::

    offset  bytes  field
    0       8      magic "WEBMLPKG"
    8       2      format version (1)
    10      4      C: length of the content header
    14      4      R: length of the recipient list
    18      C      content header: UTF-8 JSON (package id, publisher, dates, backends, kind, entries)
    18+C    R      recipient list: UTF-8 JSON, per recipient its key id, HPKE enc, wrapped keys, payload MACs
    18+C+R  64     Ed25519 signature by the publisher over every byte above
    ..             payload: each entry's chunks in order, each its ciphertext then its 16-byte GCM tag

Every chunk holds ``chunk_size`` plaintext bytes but the entry's last (an
empty entry has one empty chunk).  Chunk ``i`` of entry ``e`` is sealed with
AES-256-GCM under the package's content key, nonce ``e`` (4 bytes, big-endian)
followed by ``i`` (8 bytes), and associated data binding the package id, the
SHA-256 of the content header, the entry's name, ``i`` and whether it is the
entry's last chunk.  The content key is fresh and random for each package, so
a nonce never repeats under a key.

Every recipient (the publisher is one) has its own random MAC key, and the
recipient list holds, per recipient and entry, the GMAC (AES-256-GCM with no
plaintext, NIST SP 800-38D) of the entry's payload bytes under that key, nonce
"wmac" then ``e`` (8 bytes, big-endian).  The content key and the MAC key
(64 bytes) are wrapped together for each recipient with HPKE (RFC 9180:
DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, base mode), with the
package id and the content header's hash as HPKE's info.  Why a MAC per
recipient: every recipient knows the content key, so GCM tags alone would let
one recipient forge chunks that another accepts; it does not know the others'
MAC keys.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import math
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import PackageError

__all__ = [
    "CHUNK_SIZE",
    "MAGIC",
    "SUITE",
    "VERSION",
    "Entry",
    "Header",
    "Recipient",
    "b64",
    "chunk_aad",
    "chunk_nonce",
    "hpke_info",
]

MAGIC = b"WEBMLPKG"
VERSION = 1
PREAMBLE = struct.Struct("<8sHII")
SIGNATURE_BYTES = 64
TAG_BYTES = 16
MAC_BYTES = 16
KEY_BYTES = 32
#: What HPKE wraps for a recipient: the content key, then its MAC key.
WRAPPED_PLAINTEXT_BYTES = 2 * KEY_BYTES
#: Plaintext bytes per chunk: large enough that the per-chunk work (a tag, a call) is noise, small
#: enough that a flipped byte is found in the chunk that holds it.
CHUNK_SIZE = 1 << 20
#: Bounds checked before anything is allocated.
MAX_CONTENT_BYTES = 1 << 20
MAX_RECIPIENTS_BYTES = 1 << 20
MAX_RECIPIENTS = 1000
MAX_ENTRIES = 16
#: The largest entry: an ONNX protobuf cannot exceed 2 GiB, and an entry's payload (its bytes and
#: tags) is one GMAC message, at most 2**31 - 1 bytes for pyca cryptography.
MAX_ENTRY_BYTES = (1 << 31) - (1 << 26)
KINDS = ("onnx",)
CIPHER = "AES-256-GCM"
WRAP = "HPKE-X25519-HKDF-SHA256-AES-256-GCM"
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
ENC_BYTES = hpke.KEM.X25519.enc_length()


@dataclass(frozen=True)
class Entry:
    """One file of the package: ``name`` (``model.onnx``) and its plaintext ``size``."""

    name: str
    size: int
    chunks: int


@dataclass(frozen=True)
class Recipient:
    """One recipient: the keys wrapped for the X25519 key whose SHA-256 is ``key_id``, and the GMAC
    of each entry's payload under its MAC key."""

    key_id: str
    enc: bytes
    wrapped: bytes
    macs: tuple[bytes, ...]
    publisher: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "enc": b64(self.enc),
            "wrapped_keys": b64(self.wrapped),
            "payload_macs": [b64(m) for m in self.macs],
            "publisher": self.publisher,
        }


def chunk_count(size: int, chunk_size: int = CHUNK_SIZE) -> int:
    return max(1, math.ceil(size / chunk_size))


def chunk_nonce(entry_index: int, chunk_index: int) -> bytes:
    return struct.pack(">IQ", entry_index, chunk_index)


def chunk_aad(package_id: bytes, content_hash: bytes, name: str, chunk_index: int, last: bool) -> bytes:
    encoded = name.encode("utf-8")
    return b"".join(
        (b"webmlpkg/1 chunk\0", package_id, content_hash, struct.pack("<H", len(encoded)), encoded,
         struct.pack("<QB", chunk_index, 1 if last else 0))
    )


def mac_nonce(entry_index: int) -> bytes:
    return b"wmac" + struct.pack(">Q", entry_index)


def payload_mac(mac_key: bytes, entry_index: int, payload: bytes | memoryview) -> bytes:
    """The GMAC of one entry's payload bytes (ciphertexts and tags) under a recipient's MAC key."""
    return AESGCM(mac_key).encrypt(mac_nonce(entry_index), b"", payload)


def hpke_info(package_id: bytes, content_hash: bytes) -> bytes:
    return b"webmlpkg/1 content key\0" + package_id + content_hash


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def b64(data: bytes) -> str:
    """Standard base64 text of ``data``, as the header stores keys and MACs."""
    return base64.b64encode(data).decode("ascii")


def encode_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


@dataclass(frozen=True)
class Header:
    """A package's header as read (not yet trusted until :meth:`verify`-ed by the opener)."""

    content_bytes: bytes
    recipients_bytes: bytes
    signature: bytes
    package_id: bytes
    publisher: bytes  # raw Ed25519 public key
    created: dt.datetime
    expires: dt.datetime | None
    backends: tuple[str, ...] | None
    kind: str
    chunk_size: int
    entries: tuple[Entry, ...]
    io: dict[str, Any]
    recipients: tuple[Recipient, ...]

    @property
    def content_hash(self) -> bytes:
        return hashlib.sha256(self.content_bytes).digest()

    @property
    def signed_bytes(self) -> bytes:
        return signed_bytes(self.content_bytes, self.recipients_bytes)

    @property
    def header_size(self) -> int:
        return PREAMBLE.size + len(self.content_bytes) + len(self.recipients_bytes) + SIGNATURE_BYTES

    @property
    def total_chunks(self) -> int:
        return sum(e.chunks for e in self.entries)

    @property
    def payload_size(self) -> int:
        return sum(entry_payload_size(e) for e in self.entries)

    def entry_offsets(self) -> list[int]:
        """Where each entry's payload starts in the file."""
        offsets, at = [], self.header_size
        for e in self.entries:
            offsets.append(at)
            at += entry_payload_size(e)
        return offsets


def entry_payload_size(entry: Entry) -> int:
    return entry.size + TAG_BYTES * entry.chunks


def signed_bytes(content: bytes, recipients: bytes) -> bytes:
    return PREAMBLE.pack(MAGIC, VERSION, len(content), len(recipients)) + content + recipients


def content_header(
    *,
    package_id: bytes,
    publisher_b64: str,
    created: dt.datetime,
    expires: dt.datetime | None,
    backends: tuple[str, ...] | None,
    kind: str,
    entries: list[Entry],
    io: dict[str, Any],
) -> bytes:
    return encode_json(
        {
            "format": "webmlpkg",
            "version": VERSION,
            "package_id": package_id.hex(),
            "publisher": publisher_b64,
            "created": iso(created),
            "expires": None if expires is None else iso(expires),
            "backends": None if backends is None else list(backends),
            "kind": kind,
            "cipher": CIPHER,
            "key_wrap": WRAP,
            "chunk_size": CHUNK_SIZE,
            "entries": [{"name": e.name, "size": e.size, "chunks": e.chunks} for e in entries],
            "io": io,
        }
    )


def recipients_json(recipients: list[Recipient]) -> bytes:
    return encode_json([r.as_json() for r in recipients])


# -- reading: every field of a stranger's header checked ----------------------------------------


def read_preamble(data: bytes, file_size: int, what: str) -> tuple[int, int]:
    """The two section lengths, checked against the bounds and the file's size."""
    if len(data) < PREAMBLE.size:
        raise PackageError(f"{what} is not a webml package (too short: {file_size} bytes)")
    magic, version, c, r = PREAMBLE.unpack(data[: PREAMBLE.size])
    if magic != MAGIC:
        raise PackageError(f"{what} is not a webml package (no WEBMLPKG magic)")
    if version != VERSION:
        raise PackageError(f"{what} is a webml package of format version {version}; this webml reads version {VERSION}")
    if not 0 < c <= MAX_CONTENT_BYTES or not 0 < r <= MAX_RECIPIENTS_BYTES:
        raise PackageError(f"{what}: the header's section lengths are out of bounds (the file is corrupt)")
    if PREAMBLE.size + c + r + SIGNATURE_BYTES > file_size:
        raise PackageError(f"{what} is truncated: it ends inside its header")
    return c, r


def _fail(what: str, problem: str) -> PackageError:
    return PackageError(f"{what}: the header is corrupt ({problem})")


def _json(data: bytes, what: str, section: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _fail(what, f"the {section} is not JSON") from None


def publisher_of(content: bytes, what: str) -> bytes:
    """The raw Ed25519 key that names the publisher (read to choose the key the signature is checked with)."""
    fields = _json(content, what, "content header")
    value = fields.get("publisher") if isinstance(fields, dict) else None
    raw = _decode_b64(value, what, "publisher")
    if len(raw) != 32:
        raise _fail(what, "the publisher key is not 32 bytes")
    return raw


def _decode_b64(value: Any, what: str, field: str) -> bytes:
    if not isinstance(value, str):
        raise _fail(what, f"{field} is not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _fail(what, f"{field} is not base64") from None


def _date(value: Any, what: str, field: str) -> dt.datetime:
    if not isinstance(value, str):
        raise _fail(what, f"{field} is not a date")
    try:
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise _fail(what, f"{field} is not a date") from None


def _int(value: Any, what: str, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(what, f"{field} must be an integer in [{low}, {high}]")
    return value


def parse_header(content: bytes, recipients_bytes: bytes, signature: bytes, what: str) -> Header:
    """Every field of a header whose signature has been verified, checked (types, bounds, counts)."""
    fields = _json(content, what, "content header")
    if not isinstance(fields, dict) or fields.get("format") != "webmlpkg" or fields.get("version") != VERSION:
        raise _fail(what, "not a version 1 content header")
    if fields.get("cipher") != CIPHER or fields.get("key_wrap") != WRAP:
        raise _fail(what, f"cipher {fields.get('cipher')!r} / key wrap {fields.get('key_wrap')!r} are not webml's")
    kind = fields.get("kind")
    if kind not in KINDS:
        raise _fail(what, f"kind {kind!r} is not one of {', '.join(KINDS)}")
    try:
        package_id = bytes.fromhex(fields.get("package_id") or "")
    except (TypeError, ValueError):
        raise _fail(what, "package_id is not hex") from None
    if len(package_id) != 16:
        raise _fail(what, "package_id is not 16 bytes")
    chunk_size = _int(fields.get("chunk_size"), what, "chunk_size", 1 << 12, 1 << 26)
    raw_entries = fields.get("entries")
    if not isinstance(raw_entries, list) or not 1 <= len(raw_entries) <= MAX_ENTRIES:
        raise _fail(what, f"entries must be a list of 1 to {MAX_ENTRIES}")
    entries = []
    for i, e in enumerate(raw_entries):
        if not isinstance(e, dict) or not isinstance(e.get("name"), str) or not 0 < len(e["name"]) <= 255:
            raise _fail(what, f"entry {i} has no name")
        size = _int(e.get("size"), what, f"entry {i} size", 0, MAX_ENTRY_BYTES)
        chunks = _int(e.get("chunks"), what, f"entry {i} chunks", 1, MAX_ENTRY_BYTES)
        if chunks != chunk_count(size, chunk_size):
            raise _fail(what, f"entry {i} has {chunks} chunks for {size} bytes")
        entries.append(Entry(e["name"], size, chunks))
    if len({e.name for e in entries}) != len(entries):
        raise _fail(what, "two entries have the same name")
    expires = fields.get("expires")
    backends = fields.get("backends")
    if backends is not None and (
        not isinstance(backends, list) or not backends or not all(isinstance(b, str) for b in backends)
    ):
        raise _fail(what, "backends must be a list of names or null")
    io = fields.get("io")
    if not isinstance(io, dict):
        raise _fail(what, "io is not an object")
    return Header(
        content_bytes=content,
        recipients_bytes=recipients_bytes,
        signature=signature,
        package_id=package_id,
        publisher=publisher_of(content, what),
        created=_date(fields.get("created"), what, "created"),
        expires=None if expires is None else _date(expires, what, "expires"),
        backends=None if backends is None else tuple(backends),
        kind=kind,
        chunk_size=chunk_size,
        entries=tuple(entries),
        io=io,
        recipients=parse_recipients(recipients_bytes, len(entries), what),
    )


def parse_recipients(data: bytes, entries: int, what: str) -> tuple[Recipient, ...]:
    items = _json(data, what, "recipient list")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_RECIPIENTS:
        raise _fail(what, f"the recipient list must hold 1 to {MAX_RECIPIENTS} recipients")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("key_id"), str) or len(item["key_id"]) != 64:
            raise _fail(what, f"recipient {i} has no key id")
        enc = _decode_b64(item.get("enc"), what, f"recipient {i} enc")
        wrapped = _decode_b64(item.get("wrapped_keys"), what, f"recipient {i} wrapped_keys")
        if len(enc) != ENC_BYTES or len(wrapped) != WRAPPED_PLAINTEXT_BYTES + TAG_BYTES:
            raise _fail(what, f"recipient {i} has wrapped keys of the wrong size")
        macs = item.get("payload_macs")
        if not isinstance(macs, list) or len(macs) != entries:
            raise _fail(what, f"recipient {i} does not have one payload MAC per entry")
        decoded = tuple(_decode_b64(m, what, f"recipient {i} payload_macs") for m in macs)
        if any(len(m) != MAC_BYTES for m in decoded):
            raise _fail(what, f"recipient {i} has a payload MAC of the wrong size")
        out.append(Recipient(item["key_id"], enc, wrapped, decoded, item.get("publisher") is True))
    if len({r.key_id for r in out}) != len(out):
        raise _fail(what, "a recipient is listed twice")
    return tuple(out)
