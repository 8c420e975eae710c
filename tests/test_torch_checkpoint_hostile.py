"""Hostile PyTorch checkpoints, built opcode by opcode: each must give CheckpointError, with little memory.

Every load runs in a child process under RLIMIT_AS (1 GiB) and a timeout, so that a blow-up shows as a
failed test rather than a machine in trouble.
"""

from __future__ import annotations

import io
import pickle
import struct
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

from test_zoo_efficientnet import Opcodes, legacy_checkpoint, state_dict_pickle, tensor_reduce

CHILD = textwrap.dedent(
    """
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    from webml.zoo.torch_checkpoint import CheckpointError, load_state_dict
    try:
        load_state_dict(sys.argv[1])
    except CheckpointError as exc:
        print("CheckpointError:", exc)
        sys.exit(0)
    print("loaded")
    sys.exit(3)
    """
)


def refused(path) -> str:
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr[-2000:])
    return done.stdout


def zip_checkpoint(path, entries, records, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compress) as archive:
        archive.writestr("c/data.pkl", state_dict_pickle(entries))
        archive.writestr("c/byteorder", "little")
        for key, raw in records.items():
            archive.writestr(f"c/data/{key}", raw)


def BIG(p):  # stands for the integer 2**62 (LONG1), which Opcodes.int_ cannot write
    p.op(b"\x8a\x08" + (2**62).to_bytes(8, "little"))


FOUR = np.arange(4, dtype=np.float32).tobytes()


def test_zero_strides_expanding_a_tiny_storage(tmp_path):
    path = tmp_path / "expand.pt"
    zip_checkpoint(path, [("x", tensor_reduce("FloatStorage", "0", 1, 0, (1 << 15, 1 << 15), (0, 0)))], {"0": FOUR[:4]})
    assert "would take" in refused(path)


def test_small_zero_stride_tensor_loads(tmp_path):
    from webml.zoo.torch_checkpoint import load_state_dict

    path = tmp_path / "expand_small.pt"
    zip_checkpoint(path, [("x", tensor_reduce("FloatStorage", "0", 4, 0, (3, 4), (0, 1)))], {"0": FOUR})
    np.testing.assert_array_equal(load_state_dict(path)["x"], np.tile(np.arange(4, dtype=np.float32), (3, 1)))


def test_zip_bomb(tmp_path):
    path = tmp_path / "bomb.pt"
    numel = 1 << 30  # 4 GiB of zeros, deflated to about 4 MB
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "c/data.pkl", state_dict_pickle([("x", tensor_reduce("FloatStorage", "0", numel, 0, (numel,), (1,)))])
        )
        with archive.open("c/data/0", "w", force_zip64=True) as member:
            chunk = bytes(1 << 24)
            for _ in range(numel * 4 // len(chunk)):
                member.write(chunk)
    assert "would take" in refused(path)


def test_storage_count_2_62(tmp_path):
    path = tmp_path / "count.pt"
    zip_checkpoint(path, [("x", tensor_reduce("FloatStorage", "0", BIG, 0, (4,), (1,)))], {"0": FOUR})
    assert "declares" in refused(path)
    legacy = tmp_path / "count.pth"
    entries = [("x", tensor_reduce("FloatStorage", "0", BIG, 0, (4,), (1,)))]
    raw = legacy_checkpoint(entries, keys=("0",), storages=(np.arange(4, dtype=np.float32),))
    legacy.write_bytes(raw)
    assert "elements in the file" in refused(legacy)


def test_deep_nesting(tmp_path):
    path = tmp_path / "deep.pth"
    deep = Opcodes().op(b"]" * 100_000 + b"a" * 99_999).done()
    out = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
        out.write(pickle.dumps(header, protocol=2))
    out.write(deep + pickle.dumps([], protocol=2))
    path.write_bytes(out.getvalue())
    assert "deep" in refused(path)


@pytest.mark.parametrize(
    "name, tensor, message",
    [
        ("negative_offset", tensor_reduce("FloatStorage", "0", 4, -1, (2,), (1,)), "offset"),
        ("negative_stride", tensor_reduce("FloatStorage", "0", 4, 3, (2,), (-1,)), "negative strides"),
        ("overrun", tensor_reduce("FloatStorage", "0", 4, 1, (2, 2), (2, 1)), "overruns"),
        ("wrong_dtype", tensor_reduce("ComplexFloatStorage", "0", 4, 0, (4,), (1,)), "refusing to unpickle"),
    ],
)
def test_bad_tensor(tmp_path, name, tensor, message):
    path = tmp_path / f"{name}.pt"
    zip_checkpoint(path, [("x", tensor)], {"0": FOUR})
    assert message in refused(path)


def test_missing_record(tmp_path):
    path = tmp_path / "missing.pt"
    zip_checkpoint(path, [("x", tensor_reduce("FloatStorage", "7", 4, 0, (4,), (1,)))], {"0": FOUR})
    assert "missing" in refused(path)


def test_truncated_files(tmp_path):
    good = legacy_checkpoint()
    for cut in (3, len(good) // 2, len(good) - 10):
        path = tmp_path / f"cut{cut}.pth"
        path.write_bytes(good[:cut])
        assert "CheckpointError" in refused(path)
    path = tmp_path / "cut.pt"
    zip_checkpoint(path, [("x", tensor_reduce("FloatStorage", "0", 4, 0, (4,), (1,)))], {"0": FOUR})
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 30])
    assert "CheckpointError" in refused(path)


def test_huge_memo_index(tmp_path):
    path = tmp_path / "memo.pth"
    out = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
        out.write(pickle.dumps(header, protocol=2))
    out.write(Opcodes().op(b"N" + b"r" + struct.pack("<I", 2**32 - 1)).done())
    path.write_bytes(out.getvalue())
    assert "CheckpointError" in refused(path)
