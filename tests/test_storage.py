"""Constants are copied once, into shared memory (or a disk file system, for a backend that asks)
when large, and leave no files behind."""

from __future__ import annotations

import gc
import os

import numpy as np

import webml
from webml import storage
from webml.storage import SHARED_THRESHOLD, ConstantStore, return_freed_memory


def test_large_constants_live_in_shared_memory_until_build():
    context = webml.ml.create_context(backend="reference")
    builder = webml.MLGraphBuilder(context)
    data = np.arange(SHARED_THRESHOLD // 4 * 2, dtype=np.float32)
    desc = {"dataType": "float32", "shape": [data.size]}
    k = builder.constant(desc, data)
    stored = builder._constants[k._value.id]
    path = builder._constant_files.get(k._value.id)
    if os.path.isdir("/dev/shm"):
        assert path is not None and os.path.exists(path)
    assert not stored.flags.writeable
    assert not np.shares_memory(stored, data)
    x = builder.input("x", desc)
    graph = builder.build({"y": builder.add(x, k)})
    data[:] = -1  # the graph keeps the copy made by constant()
    assert path is None or not os.path.exists(path)  # unlinked at build, mapping kept
    out = context.compute(graph, {"x": np.ones(data.size, np.float32)})["y"]
    np.testing.assert_array_equal(out, np.arange(data.size, dtype=np.float32) + 1)


def test_small_constants_are_plain_arrays():
    store = ConstantStore()
    small, path = store.copy(np.ones(4, np.float32))
    assert path is None and not small.flags.writeable


def test_an_unbuilt_builder_leaves_no_files():
    store = ConstantStore()
    big, path = store.copy(np.zeros(SHARED_THRESHOLD, np.uint8))
    directory = os.path.dirname(path or "")
    del store
    gc.collect()
    assert not directory or not os.path.exists(directory)
    assert big.sum() == 0  # the array itself stays valid


def test_returning_freed_memory_is_harmless():
    """glibc's malloc_trim where there is one, nothing elsewhere; arrays stay intact."""
    kept = np.arange(1 << 20, dtype=np.float32)
    return_freed_memory()
    return_freed_memory()
    assert kept[-1] == (1 << 20) - 1


def test_the_file_system_type_is_read_from_the_mount_table():
    assert storage._filesystem_type("/dev/shm") == "tmpfs"
    assert storage._filesystem_type("/proc/self") == "proc"


def test_constants_on_disk_go_to_a_disk_file_system_or_else_to_shared_memory():
    store = ConstantStore(on_disk=True)
    big, path = store.copy(np.arange(SHARED_THRESHOLD, dtype=np.uint8))
    disk = storage.disk_directory()
    expected_root = str(disk) if disk is not None else "/dev/shm"
    assert path is not None and path.startswith(expected_root + "/")
    if disk is not None:
        assert storage._filesystem_type(path) not in ("tmpfs", "ramfs")
    store.release_files()
    assert not os.path.exists(path)
    np.testing.assert_array_equal(big, np.arange(SHARED_THRESHOLD, dtype=np.uint8))  # the mapping stays


def test_a_full_file_system_leaves_an_ordinary_copy(monkeypatch):
    def no_space(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "write", no_space)
    store = ConstantStore()
    data = np.arange(SHARED_THRESHOLD, dtype=np.uint8)
    copy, path = store.copy(data)
    assert path is None and not copy.flags.writeable and not np.shares_memory(copy, data)
    np.testing.assert_array_equal(copy, data)
    assert store._files == [] and (store._dir is None or os.listdir(store._dir) == [])
