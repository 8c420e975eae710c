"""Who may open a connection: the Host (loopback names only), then the token or the Origin's grant."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from . import token as tokens
from .grants import CAPABILITIES, GrantError, GrantStore, normalize_origin

__all__ = ["SUBPROTOCOL", "TOKEN_SUBPROTOCOL", "Admitted", "Refused", "admit", "loopback_host"]

SUBPROTOCOL = "webml.v1"
TOKEN_SUBPROTOCOL = "webml.token."


@dataclass(frozen=True)
class Admitted:
    principal: str  # "token" or "origin:<origin>"
    origin: str | None  # a browser's origin (None for token callers)
    capabilities: tuple[str, ...]
    grant: str  # "token", "allow-origin", or "grants-file"


@dataclass(frozen=True)
class Refused:
    message: str
    origin: str | None = None
    ungranted: bool = False  # a first-use request, to record


def loopback_host(host: str | None) -> bool:
    """Whether a Host header names a loopback address: 127.0.0.0/8, ``[::1]`` or ``localhost``, any port."""
    if not host:
        return False
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return False
    else:
        name, _, port = host.partition(":")
        if port and not port.isdigit():
            return False
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _offered_token(headers: Mapping[str, str], subprotocols: Iterable[str]) -> str | None:
    auth = headers.get("authorization")
    if auth is not None:
        scheme, _, value = auth.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else ""
    for sub in subprotocols:
        if sub.startswith(TOKEN_SUBPROTOCOL):
            return sub[len(TOKEN_SUBPROTOCOL) :]
    return None


def admit(
    headers: Mapping[str, str],
    subprotocols: list[str],
    *,
    token: str,
    token_file: str,
    grants: GrantStore,
    allow_origins: frozenset[str],
) -> Admitted | Refused:
    """The decision for one WebSocket handshake (nothing of the connection runs before it)."""
    host = headers.get("host")
    origin = headers.get("origin")
    if not loopback_host(host):
        return Refused(f"the Host {host!r} is not a loopback name (127.0.0.1, localhost, [::1])", origin)
    offered = _offered_token(headers, subprotocols)
    if offered is not None:
        if not tokens.check(offered, token):
            return Refused("the token is wrong (it is in the service's token file)", origin)
        admitted = Admitted("token", None, CAPABILITIES, "token")
    elif origin is not None and origin != "null":
        try:
            key = normalize_origin(origin)
        except GrantError as exc:
            return Refused(str(exc), origin)
        if key in allow_origins:
            admitted = Admitted(f"origin:{key}", key, CAPABILITIES, "allow-origin")
        else:
            try:
                grant = grants.lookup(key)
            except GrantError as exc:
                return Refused(f"the grants file cannot be read: {exc}", origin)
            if grant is None or "compute" not in grant.capabilities:
                return Refused(
                    f"the origin {key} is not granted the use of webml serve; the user can grant it with: "
                    f"webml grants add {key}",
                    origin,
                    ungranted=True,
                )
            admitted = Admitted(f"origin:{key}", key, grant.capabilities, "grants-file")
    else:
        return Refused(
            "no token: callers that are not web pages give the token, as 'Authorization: Bearer <token>' or as the "
            f"subprotocol '{TOKEN_SUBPROTOCOL}<token>' (it is in {token_file})",
            origin,
        )
    if SUBPROTOCOL not in subprotocols:
        return Refused(f"the client must ask for the WebSocket subprotocol {SUBPROTOCOL!r}", origin)
    return admitted
