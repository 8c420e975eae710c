"""requirements.lock: the environment is exactly the lock, and the lock satisfies pyproject.toml's bounds."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def locked() -> dict[str, str]:
    """Name -> pinned version of every lock entry whose marker holds for this interpreter."""
    text = (ROOT / "requirements.lock").read_text()
    pins: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line[0] in " #-":
            continue
        requirement = Requirement(line.rstrip(" \\"))
        if requirement.marker is None or requirement.marker.evaluate():
            (spec,) = requirement.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def test_every_locked_package_is_hash_pinned():
    text = (ROOT / "requirements.lock").read_text()
    entries = re.split(r"\n(?=[a-z0-9])", text.split("\n", 2)[2])
    assert len(entries) > 20
    for entry in entries:
        assert "==" in entry.splitlines()[0] and "--hash=sha256:" in entry, entry


def test_the_environment_is_the_lock():
    pins = locked()
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    installed.pop("webml")
    # Anything installed by hand beside the lock (e.g. torch for bench/) is not checked; what the lock names is.
    wrong = {name: (installed.get(name), version) for name, version in pins.items() if installed.get(name) != version}
    assert not wrong, f"installed != locked: {wrong}"


def test_the_lock_satisfies_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # Every extra: the lock is compiled with all of them (scripts/upgrade-lock.sh) and ./test.sh installs them.
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    pins = locked()
    for line in requirements:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is in pyproject.toml but not in requirements.lock: run scripts/upgrade-lock.sh"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} breaks {line!r}"
