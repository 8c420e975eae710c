"""The policy-controlled feature ``webnn`` (Permissions-Policy; default allowlist ``'self'``).

Headers are Structured Field dictionaries (RFC 8941), parsed and written with
the ``http-sfv`` package: ``webnn=(self "https://a.example")``, ``webnn=*``,
``webnn=()``.
"""

from __future__ import annotations

from typing import Any

import http_sfv

__all__ = ["FEATURE", "PolicyError", "allows", "self_header"]

FEATURE = "webnn"


class PolicyError(ValueError):
    """A Permissions-Policy that is not a structured-field dictionary."""


def self_header() -> str:
    """``webnn=(self)``: the header of the pages the service serves itself."""
    policy = http_sfv.Dictionary()
    policy[FEATURE] = http_sfv.InnerList([http_sfv.Item(http_sfv.Token("self"))])
    return str(policy)


def _allowlist(header: str) -> list[Any] | None:
    """The members of ``webnn``'s allowlist in ``header``, or None when it does not name the feature."""
    policy = http_sfv.Dictionary()
    try:
        policy.parse(header.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        detail = f": {exc}" if str(exc) else ""
        raise PolicyError(f"the Permissions-Policy {header[:200]!r} is not a structured-field dictionary{detail}") \
            from None
    if FEATURE not in policy:
        return None
    member = policy[FEATURE]
    items = list(member) if isinstance(member, http_sfv.InnerList) else [member]
    return [item.value if isinstance(item, http_sfv.Item) else item for item in items]


def allows(header: str | None, origin: str, *, cross_origin_frame: bool = False) -> bool:
    """Whether a document of ``origin`` under the policy ``header`` may use webnn.

    ``cross_origin_frame``: the document is an iframe whose origin is not its
    parent's; ``self`` (the default allowlist) does not reach it, ``*`` or the
    origin itself (as the iframe's ``allow`` attribute gives it) do.
    """
    members = None if header is None else _allowlist(header)
    if members is None:
        members = [http_sfv.Token("self")]
    for value in members:
        if isinstance(value, http_sfv.Token):
            if str(value) == "*":
                return True
            if str(value) == "self" and not cross_origin_frame:
                return True
        elif isinstance(value, str) and value.rstrip("/").lower() == origin.lower():
            return True
    return False
