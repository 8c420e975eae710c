"""The token of non-browser callers: random, in a file only the user can read (as Jupyter does)."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

__all__ = ["check", "default_path", "new_token", "write_token"]


def default_path(port: int) -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR") or str(Path.home() / ".local" / "state")
    return Path(runtime) / "webml" / f"serve-{port}.token"


def new_token() -> str:
    return secrets.token_hex(32)


def write_token(path: Path, token: str) -> None:
    """Write ``token`` to ``path`` with mode 0600 (created so from the start: never readable by others)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (token + "\n").encode("ascii"))
    finally:
        os.close(fd)
    os.replace(tmp, path)


def check(given: str | None, token: str) -> bool:
    """Whether ``given`` is the token, in constant time."""
    return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("ascii"))
