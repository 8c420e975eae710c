"""The user's grants: which web origins may open a connection, with what, until when.

One JSON file (``$XDG_CONFIG_HOME/webml/grants.json``; ``--grants PATH`` or
``WEBML_GRANTS`` overrides it)::

    {"grants": {"https://app.example": {"capabilities": ["compute"], "expires": null, "granted": "..."}},
     "requests": {"https://other.example": {"first": "...", "last": "...", "count": 3}}}

Writes take an exclusive lock on ``PATH.lock`` and replace the file atomically
(a temporary file in the same folder, fsync, ``os.replace``); the service reads
the file on every connection, so a revocation applies to the next connection.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["CAPABILITIES", "Grant", "GrantError", "GrantStore", "default_path", "normalize_origin", "parse_expiry"]

#: "compute": contexts, graphs, tensors, dispatch; "accelerated": contexts with ``accelerated: true``
#: (without it a context of that origin is created with ``accelerated: false``).
CAPABILITIES = ("compute", "accelerated")
DEFAULT_CAPABILITIES = CAPABILITIES


class GrantError(ValueError):
    """A bad origin, capability, expiry, or an unreadable grants file."""


@dataclass(frozen=True)
class Grant:
    origin: str
    capabilities: tuple[str, ...]
    expires: dt.datetime | None
    granted: str

    def expired(self, now: dt.datetime | None = None) -> bool:
        return self.expires is not None and (now or _now()) >= self.expires

    def as_json(self) -> dict[str, Any]:
        return {
            "capabilities": list(self.capabilities),
            "expires": None if self.expires is None else self.expires.isoformat(),
            "granted": self.granted,
        }


def default_path() -> Path:
    if env := os.environ.get("WEBML_GRANTS"):
        return Path(env)
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "webml" / "grants.json"


def normalize_origin(origin: str) -> str:
    """``https://App.Example:443`` -> ``https://app.example``; anything but scheme://host[:port] is a GrantError."""
    if not isinstance(origin, str) or not origin or len(origin) > 2048:
        raise GrantError(f"not an origin: {origin!r}")
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError as exc:
        raise GrantError(f"not an origin: {origin!r} ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query \
            or parts.fragment or parts.username or parts.password:
        raise GrantError(f"not an origin (scheme://host[:port]): {origin!r}")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")


_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_expiry(text: str | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """``None``/"never", a duration ("30d", "12h", "90m"), or an ISO 8601 date or time (UTC if no zone)."""
    if text is None or text == "never":
        return None
    if m := _DURATION.match(text.strip()):
        return (now or _now()) + dt.timedelta(**{_UNITS[m[2]]: int(m[1])})
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise GrantError(f"--expires: {text!r} is neither a duration (30d, 12h, 90m) nor an ISO date") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class GrantStore:
    """The grants file at ``path``."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()

    # -- reading -----------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"grants": {}, "requests": {}}
        except OSError as exc:
            raise GrantError(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise GrantError(f"{self.path} is not JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("grants", {}), dict) \
                or not isinstance(data.get("requests", {}), dict):
            raise GrantError(f"{self.path}: expected an object with 'grants' and 'requests' objects")
        data.setdefault("grants", {})
        data.setdefault("requests", {})
        return data

    def grants(self) -> list[Grant]:
        out = []
        for origin, entry in self._read()["grants"].items():
            if not isinstance(entry, dict):
                continue
            caps = tuple(c for c in entry.get("capabilities", DEFAULT_CAPABILITIES) if c in CAPABILITIES)
            expires = entry.get("expires")
            try:
                when = parse_expiry(expires) if isinstance(expires, str) else None
            except GrantError:
                when = dt.datetime.min.replace(tzinfo=dt.UTC)  # an unreadable expiry has expired
            out.append(Grant(origin, caps, when, str(entry.get("granted", ""))))
        return out

    def requests(self) -> dict[str, dict[str, Any]]:
        return dict(self._read()["requests"])

    def lookup(self, origin: str) -> Grant | None:
        """The unexpired grant of ``origin``, read from the file now."""
        try:
            key = normalize_origin(origin)
        except GrantError:
            return None
        grant = next((g for g in self.grants() if g.origin == key), None)
        return None if grant is None or grant.expired() else grant

    # -- writing -------------------------------------------------------------------

    @contextlib.contextmanager
    def _update(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._read()
            yield data
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(data, f, indent=2, sort_keys=True)
                    f.write("\n")
                    f.flush()
                    os.fsync(f.fileno())
                os.chmod(tmp, 0o600)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise

    def add(self, origin: str, capabilities: list[str] | None = None, expires: str | None = None) -> Grant:
        key = normalize_origin(origin)
        caps = tuple(capabilities) if capabilities else DEFAULT_CAPABILITIES
        if bad := [c for c in caps if c not in CAPABILITIES]:
            raise GrantError(f"unknown capabilities {', '.join(bad)} (known: {', '.join(CAPABILITIES)})")
        grant = Grant(key, caps, parse_expiry(expires), _now().isoformat(timespec="seconds"))
        with self._update() as data:
            data["grants"][key] = grant.as_json()
            data["requests"].pop(key, None)
        return grant

    def revoke(self, origin: str) -> bool:
        key = normalize_origin(origin)
        with self._update() as data:
            return data["grants"].pop(key, None) is not None

    def record_request(self, origin: str) -> None:
        """Note a connection attempt from an ungranted origin, so that ``webml grants list`` shows it."""
        try:
            key = normalize_origin(origin)
        except GrantError:
            return
        when = _now().isoformat(timespec="seconds")
        with self._update() as data:
            requests = data["requests"]
            if key not in requests and len(requests) >= 1000:
                return  # a flood of origins does not grow the file without bound
            entry = requests.setdefault(key, {"first": when, "count": 0})
            entry["last"] = when
            entry["count"] = int(entry.get("count", 0)) + 1
