"""Protected packages (issue 17): format, keys, and every refusal before a weight reaches a backend.

The small MLP of tests/protected_models.py (three 1 MiB chunks) keeps the byte-flip matrix fast;
tests/test_protected_roundtrip.py runs the real models.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import struct

import numpy as np
import onnxruntime as ort
import pytest

import webml
import webml.onnx
import webml.onnx.importer
import webml.protected as wp
from protected_models import small_input, small_model
from webml.protected import format as fmt


@pytest.fixture(scope="module")
def keys():
    return {name: wp.generate_key_pair() for name in ("publisher", "device", "other", "stranger")}


@pytest.fixture(scope="module")
def package(tmp_path_factory, keys):
    path = tmp_path_factory.mktemp("pkg") / "mlp.webmlpkg"
    return wp.protect(small_model(), path, recipients=[keys["device"].public_key()], key=keys["publisher"])


@pytest.fixture(scope="module")
def context():
    return webml.ml.create_context(backend="onnxruntime")


def ort_output(model) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, small_input())[0]


def load(path, context, keys, key="device", trusted=("publisher",)):
    return wp.load(path, context, key=keys[key], trusted=[keys[t].public_key() for t in trusted])


def test_round_trip_matches_onnxruntime_and_graph_is_protected(package, context, keys):
    graph = load(package, context, keys)
    out = context.compute(graph, small_input())["y"]
    np.testing.assert_array_equal(out, ort_output(small_model()))  # the same engine: bit-identical
    assert graph.protected and not graph.keeps_constants
    assert graph.ir.protected


def test_constants_and_save_are_refused(package, context, keys, tmp_path):
    graph = load(package, context, keys)
    constant_ids = list(graph.ir.constants)
    assert constant_ids
    with pytest.raises(webml.InvalidStateError, match="protected model"):
        graph.ir.constants[constant_ids[0]]
    with pytest.raises(webml.InvalidStateError, match="protected model"):
        webml.onnx.save(graph, tmp_path / "out.onnx")
    with pytest.raises(webml.InvalidStateError, match="protected model"):
        webml.onnx.to_model(graph)
    assert not (tmp_path / "out.onnx").exists()


def test_keep_constants_context_still_keeps_nothing(package, keys):
    context = webml.ml.create_context(backend="onnxruntime", keep_constants=True)
    graph = load(package, context, keys)
    assert not graph.keeps_constants
    with pytest.raises(webml.InvalidStateError):
        webml.onnx.to_model(graph)


def test_constant_tensors_are_not_readable(context):
    tensor = context.create_constant_tensor({"dataType": "float32", "shape": [2]}, np.ones(2, np.float32))
    with pytest.raises(TypeError, match="not readable"):
        context.read_tensor(tensor)


def test_publisher_opens_its_own_package(package, context, keys):
    graph = load(package, context, keys, key="publisher")
    np.testing.assert_array_equal(context.compute(graph, small_input())["y"], ort_output(small_model()))


def test_describe_shows_the_signed_header_without_a_key(package, keys):
    info = wp.describe(package)
    assert info["signature"] == "valid" and info["publisher"]["trusted"] is None
    assert info["publisher"]["fingerprint"] == keys["publisher"].public_key().fingerprint
    assert info["inputs"] == [{"name": "x", "dtype": "float32", "shape": [1, 256]}]
    assert info["outputs"] == [{"name": "y", "dtype": "float32", "shape": [1, 8]}]
    assert info["entries"][0]["chunks"] == 3
    assert {r["key_id"] for r in info["recipients"]} == {
        keys["publisher"].public_key().key_id, keys["device"].public_key().key_id
    }
    assert info["package_bytes"] == os.path.getsize(package)
    assert wp.describe(package, trusted=[keys["publisher"].public_key()])["publisher"]["trusted"] is True
    with pytest.raises(wp.PackageRefusedError, match="not among the trusted"):
        wp.describe(package, trusted=[keys["stranger"].public_key()])


# -- refusals, each before any weight reaches the backend -----------------------------------------


@pytest.fixture
def no_import(monkeypatch):
    """Fails the test if the importer (the way to the backend) is ever called."""
    calls = []

    def spy(*args, **kwargs):
        calls.append(args)
        raise AssertionError("a plaintext model reached the importer")

    monkeypatch.setattr(webml.onnx.importer, "load", spy)
    return calls


def _regions(path) -> dict[str, int]:
    """Sample offsets across every region of the package."""
    data = path.read_bytes()
    _, _, c, r = fmt.PREAMBLE.unpack(data[: fmt.PREAMBLE.size])
    header = fmt.PREAMBLE.size + c + r + fmt.SIGNATURE_BYTES
    chunk = fmt.CHUNK_SIZE + fmt.TAG_BYTES
    content = fmt.PREAMBLE.size
    recipients = content + c
    return {
        "magic": 0,
        "version": 8,
        "content length": 10,
        "recipients length": 15,
        "content start": content,
        "content publisher": content + data[content : content + c].index(b'"publisher"') + 15,
        "content entries": content + data[content : content + c].index(b'"size"') + 8,
        "content end": content + c - 2,
        "recipients start": recipients,
        "recipient key id": recipients + data[recipients:].index(b'"key_id"') + 12,
        "recipient wrapped keys": recipients + data[recipients:].index(b'"wrapped_keys"') + 20,
        "recipient payload MAC": recipients + data[recipients:].index(b'"payload_macs"') + 20,
        "recipients end": recipients + r - 1,
        "signature": header - 30,
        "chunk 0 start": header,
        "chunk 0 middle": header + fmt.CHUNK_SIZE // 2,
        "chunk 0 tag": header + fmt.CHUNK_SIZE + 3,
        "chunk 1 start": header + chunk,
        "chunk 2 (last) middle": header + 2 * chunk + 1000,
        "last byte (a tag)": len(data) - 1,
    }


@pytest.fixture(scope="module")
def regions(package):
    return _regions(package)


REGION_NAMES = [
    "magic", "version", "content length", "recipients length", "content start", "content publisher",
    "content entries", "content end", "recipients start", "recipient key id", "recipient wrapped keys",
    "recipient payload MAC", "recipients end", "signature", "chunk 0 start", "chunk 0 middle", "chunk 0 tag",
    "chunk 1 start", "chunk 2 (last) middle", "last byte (a tag)",
]


@pytest.mark.parametrize("region", REGION_NAMES)
def test_a_flipped_byte_anywhere_is_one_clear_error(region, package, regions, context, keys, tmp_path, no_import):
    data = bytearray(package.read_bytes())
    data[regions[region]] ^= 0x20
    bad = tmp_path / "flipped.webmlpkg"
    bad.write_bytes(bytes(data))
    with pytest.raises(wp.PackageError) as info:
        load(bad, context, keys)
    message = str(info.value)
    assert "flipped.webmlpkg" in message and "\n" not in message
    assert not no_import


def test_every_byte_flip_in_the_header_is_refused(package, context, keys, tmp_path, no_import):
    """Every seventh byte of the header (preamble, content, recipients, signature) flipped."""
    data = package.read_bytes()
    _, _, c, r = fmt.PREAMBLE.unpack(data[: fmt.PREAMBLE.size])
    end = fmt.PREAMBLE.size + c + r + fmt.SIGNATURE_BYTES
    bad = tmp_path / "flipped.webmlpkg"
    for offset in range(0, end, 7):
        copy = bytearray(data)
        copy[offset] ^= 0x01
        bad.write_bytes(bytes(copy))
        with pytest.raises(wp.PackageError):
            load(bad, context, keys)
    assert not no_import


def test_random_byte_flips_across_the_whole_file_are_refused(package, context, keys, tmp_path, no_import):
    """64 positions drawn over the whole file (seeded), each flipped by a random non-zero mask."""
    data = package.read_bytes()
    rng = np.random.default_rng(17)
    bad = tmp_path / "flipped.webmlpkg"
    for offset, mask in zip(rng.integers(0, len(data), 64), rng.integers(1, 256, 64)):
        copy = bytearray(data)
        copy[int(offset)] ^= int(mask)
        bad.write_bytes(bytes(copy))
        with pytest.raises(wp.PackageError):
            load(bad, context, keys)
    assert not no_import


@pytest.mark.parametrize("cut", [0, 5, fmt.PREAMBLE.size, 300, -1, -17, -(fmt.CHUNK_SIZE + 16)])
def test_truncated_files_are_refused(cut, package, context, keys, tmp_path, no_import):
    data = package.read_bytes()
    bad = tmp_path / "cut.webmlpkg"
    bad.write_bytes(data[:cut] if cut else b"")
    with pytest.raises(wp.PackageError, match="truncated|not a webml package|too short|corrupt"):
        load(bad, context, keys)
    assert not no_import


def test_appended_bytes_are_refused(package, context, keys, tmp_path, no_import):
    bad = tmp_path / "longer.webmlpkg"
    bad.write_bytes(package.read_bytes() + b"\0" * 16)
    with pytest.raises(wp.PackageError, match="more than its signed header"):
        load(bad, context, keys)


def test_wrong_key_unknown_publisher(package, context, keys, no_import):
    with pytest.raises(wp.PackageRefusedError, match="not wrapped for this key"):
        load(package, context, keys, key="other")
    with pytest.raises(wp.PackageRefusedError, match="not among the trusted publisher keys"):
        load(package, context, keys, trusted=("stranger",))
    # A device's own key is not the publisher's: trusting it does not help.
    with pytest.raises(wp.PackageRefusedError, match="not among the trusted"):
        load(package, context, keys, trusted=("device",))
    assert not no_import


def test_a_publisher_key_swapped_into_the_header_fails_the_signature(package, context, keys, tmp_path, no_import):
    """Re-sign nothing, only name another (trusted) publisher: its key does not verify the signature."""
    data = bytearray(package.read_bytes())
    old = keys["publisher"].public_key().signing_b64.encode()
    new = keys["stranger"].public_key().signing_b64.encode()
    start = data.index(old)
    data[start : start + len(old)] = new
    bad = tmp_path / "swapped.webmlpkg"
    bad.write_bytes(bytes(data))
    with pytest.raises(wp.PackageError, match="signature does not verify"):
        load(bad, context, keys, trusted=("publisher", "stranger"))


def test_a_recipient_cannot_forge_chunks(package, context, keys, tmp_path, no_import):
    """A recipient knows the content key, so it could make chunks whose GCM tags verify; the other
    recipients' payload MACs (keys it does not know) still refuse them."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from webml.protected.opening import _mapped, _verified_header, unwrap

    with _mapped(package, "test") as view:
        header, _ = _verified_header(view, [keys["publisher"].public_key()], "test", "pkg")
        content_key = unwrap(header, keys["device"], "test").content_key
        data = bytearray(view)
    entry = header.entries[0]
    forged = AESGCM(content_key).encrypt(
        fmt.chunk_nonce(0, 1),
        bytes(fmt.CHUNK_SIZE),
        fmt.chunk_aad(header.package_id, header.content_hash, entry.name, 1, False),
    )
    start = header.header_size + fmt.CHUNK_SIZE + fmt.TAG_BYTES
    data[start : start + len(forged)] = forged
    bad = tmp_path / "forged.webmlpkg"
    bad.write_bytes(bytes(data))
    # The publisher (another recipient) refuses it: its MAC does not verify.
    with pytest.raises(wp.PackageError, match="the encrypted 'model.onnx' was altered"):
        load(bad, context, keys, key="publisher")
    # So does rewrap: the publisher never signs a forgery again.
    with pytest.raises(wp.PackageError, match="the encrypted 'model.onnx' was altered"):
        wp.rewrap(bad, tmp_path / "laundered.webmlpkg", key=keys["publisher"], add=[keys["other"].public_key()])
    assert not no_import


def test_expired_package_is_refused(tmp_path, context, keys, no_import):
    created = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    path = wp.protect(
        small_model(), tmp_path / "old.webmlpkg", recipients=[keys["device"].public_key()], key=keys["publisher"],
        created=created, expires=dt.timedelta(days=1),
    )
    with pytest.raises(wp.PackageRefusedError, match="expired on"):
        load(path, context, keys)
    assert wp.describe(path)["expires"] == fmt.iso(created + dt.timedelta(days=1))


def test_backend_bound(tmp_path, context, keys):
    path = wp.protect(
        small_model(), tmp_path / "ov.webmlpkg", recipients=[keys["device"].public_key()], key=keys["publisher"],
        backends=["openvino"],
    )
    with pytest.raises(wp.PackageRefusedError, match="only by the backends openvino, not onnxruntime"):
        load(path, context, keys)
    graph = load(path, webml.ml.create_context(backend="openvino"), keys)
    assert graph.protected


def test_bad_arguments_name_themselves(package, context, keys, tmp_path):
    with pytest.raises(TypeError, match="context must be an MLContext"):
        wp.load(package, "onnxruntime", key=keys["device"], trusted=[keys["publisher"].public_key()])
    with pytest.raises(TypeError, match="trusted must name at least one"):
        wp.load(package, context, key=keys["device"], trusted=[])
    with pytest.raises(TypeError, match="key must be a webml PrivateKey"):
        wp.load(package, context, key=b"secret", trusted=[keys["publisher"].public_key()])
    with pytest.raises(wp.PackageError, match="no such package"):
        load(tmp_path / "missing.webmlpkg", context, keys)
    with pytest.raises(wp.PackageError, match="is not a regular file"):
        load(tmp_path, context, keys)
    with pytest.raises(ValueError, match="backends must name some of"):
        wp.protect(small_model(), tmp_path / "x.webmlpkg", recipients=[], key=keys["publisher"], backends=["cuda"])
    with pytest.raises(TypeError, match="recipients must be a list"):
        wp.protect(small_model(), tmp_path / "x.webmlpkg", recipients=keys["device"].public_key(),
                   key=keys["publisher"])
    with pytest.raises(wp.PackageError, match="not an ONNX model"):
        wp.protect(b"not onnx", tmp_path / "x.webmlpkg", recipients=[], key=keys["publisher"])
    assert not (tmp_path / "x.webmlpkg").exists()


def test_not_a_package(tmp_path, context, keys):
    bad = tmp_path / "model.webmlpkg"
    bad.write_bytes(small_model().SerializeToString())
    with pytest.raises(wp.PackageError, match="not a webml package"):
        load(bad, context, keys)
    bad.write_bytes(fmt.MAGIC + struct.pack("<HII", 1, 1 << 30, 10) + bytes(100))
    with pytest.raises(wp.PackageError, match="out of bounds"):
        load(bad, context, keys)


def test_dynamic_inputs_must_be_fixed(tmp_path, context, keys):
    model = small_model()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    path = wp.protect(model, tmp_path / "dyn.webmlpkg", recipients=[keys["device"].public_key()],
                      key=keys["publisher"])
    with pytest.raises(wp.PackageError, match="dynamic dimensions \\('batch'\\)"):
        load(path, context, keys)
    graph = wp.load(path, context, key=keys["device"], trusted=[keys["publisher"].public_key()],
                    free_dimensions={"batch": 1})
    np.testing.assert_array_equal(context.compute(graph, small_input())["y"], ort_output(small_model()))


# -- rewrap, unprotect -------------------------------------------------------------------------------


def test_rewrap_adds_and_removes_recipients_without_reencrypting(package, context, keys, tmp_path):
    out = wp.rewrap(package, tmp_path / "re.webmlpkg", key=keys["publisher"],
                    add=[keys["other"].public_key()], remove=[keys["device"].public_key()])
    old, new = package.read_bytes(), out.read_bytes()
    old_header, new_header = wp.describe(package), wp.describe(out)
    assert new_header["package_id"] == old_header["package_id"]
    assert _payload(old) == _payload(new)  # the encrypted model, unchanged
    graph = load(out, context, keys, key="other")
    np.testing.assert_array_equal(context.compute(graph, small_input())["y"], ort_output(small_model()))
    with pytest.raises(wp.PackageRefusedError, match="not wrapped for this key"):
        load(out, context, keys, key="device")
    with pytest.raises(wp.PackageRefusedError, match="not among the trusted"):
        wp.rewrap(package, tmp_path / "x.webmlpkg", key=keys["device"], add=[keys["other"].public_key()])
    with pytest.raises(ValueError, match="publisher's own key cannot be removed"):
        wp.rewrap(package, tmp_path / "x.webmlpkg", key=keys["publisher"], remove=[keys["publisher"].public_key()])


def _payload(data: bytes) -> bytes:
    _, _, c, r = fmt.PREAMBLE.unpack(data[: fmt.PREAMBLE.size])
    return data[fmt.PREAMBLE.size + c + r + fmt.SIGNATURE_BYTES :]


def test_unprotect_is_for_the_publisher_only(package, keys, tmp_path):
    with pytest.raises(wp.PackageRefusedError, match="only its publisher.s own key may unprotect"):
        wp.unprotect(package, tmp_path / "m.onnx", key=keys["device"])
    assert not (tmp_path / "m.onnx").exists()
    out = wp.unprotect(package, tmp_path / "m.onnx", key=keys["publisher"])
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_bytes() == webml.onnx.read_model(small_model()).SerializeToString()
    with pytest.raises(wp.PackageError, match="exists already"):
        wp.unprotect(package, out, key=keys["publisher"])


# -- keys --------------------------------------------------------------------------------------------


def test_key_files(tmp_path):
    private, public = wp.new_key_pair("laptop", tmp_path)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = wp.load_private_key(private)
    assert wp.load_public_key(public) == key.public_key()
    assert "PRIVATE" not in public.read_text()
    with pytest.raises(wp.KeyFileError, match="exists already"):
        wp.new_key_pair("laptop", tmp_path)
    with pytest.raises(wp.KeyFileError, match="the name must be"):
        wp.new_key_pair("../evil", tmp_path)
    with pytest.raises(wp.KeyFileError, match="private key file; give the .pub"):
        wp.load_public_key(private)
    with pytest.raises(wp.KeyFileError, match="is a public key file; give the private key"):
        wp.load_private_key(public)
    with pytest.raises(wp.KeyFileError, match="not a webml private key"):
        wp.load_private_key(_owner_only(tmp_path / "half.key", private.read_bytes().split(b"-----END")[0]
                                        + b"-----END PRIVATE KEY-----\n"))
    private.chmod(0o644)
    with pytest.raises(wp.KeyFileError, match="readable by others.*chmod 600"):
        wp.load_private_key(private)
    with pytest.raises(wp.KeyFileError, match="no such key file"):
        wp.load_public_key(tmp_path / "nobody.pub")
    big = tmp_path / "big.pub"
    big.write_bytes(b"x" * (1 << 20))
    with pytest.raises(wp.KeyFileError, match="too large"):
        wp.load_public_key(big)
    assert "PRIVATE" not in repr(key) and "BEGIN" not in repr(key)


def _owner_only(path, data: bytes):
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def test_constants_from_is_for_protected_graphs_and_read_only_memory(context):
    memory = memoryview(bytearray(16))
    with pytest.raises(TypeError, match="constants_from must be a read-only memoryview, for a protected graph"):
        webml.MLGraphBuilder(context, constants_from=memory.toreadonly())
    with pytest.raises(TypeError, match="constants_from must be a read-only memoryview"):
        webml.MLGraphBuilder(context, protected=True, constants_from=memory)
    with pytest.raises(TypeError, match="protected must be a bool"):
        webml.MLGraphBuilder(context, protected="yes")


def test_a_protected_graph_uses_the_lent_weights_in_place(context):
    """Read-only arrays inside the lent memory are not copied; others (and writable ones) are."""
    data = np.arange(1 << 16, dtype=np.float32)
    lent = memoryview(data.tobytes()).toreadonly()
    inside = np.frombuffer(lent, np.float32)
    builder = webml.MLGraphBuilder(context, protected=True, constants_from=lent)
    store = context.constant_store(in_memory=True, lender=lent)
    assert store.copy(inside)[0] is inside
    outside = np.ones(1 << 16, np.float32)
    outside.flags.writeable = False
    assert store.copy(outside)[0] is not outside
    x = builder.input("x", {"dataType": "float32", "shape": [1 << 16]})
    graph = builder.build({"y": builder.add(x, builder.constant({"dataType": "float32", "shape": [1 << 16]}, inside))})
    out = context.compute(graph, {"x": np.ones(1 << 16, np.float32)})["y"]
    np.testing.assert_array_equal(out, data + 1)
