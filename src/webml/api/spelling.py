"""The spec's JavaScript spellings, met with the Python ones.

The Python API spells methods, attributes and keyword arguments in
snake_case (``average_pool2d``, ``create_tensor``, ``data_type``,
``input_layout=``); dictionaries keep the spec's camelCase keys, as in
JavaScript (descriptors, an operator's options dict, MLContextOptions).
Code written the JavaScript way gets the Python spelling in its error:

* a camelCase attribute or method (``builder.averagePool2d``) is an
  AttributeError saying ``did you mean average_pool2d?``
  (:class:`PythonSpelling`);
* a camelCase keyword (``inputLayout=``) is a TypeError saying
  ``did you mean input_layout=?`` (:func:`unexpected_keyword`).

The dict forms themselves are accepted: :func:`options_members` reads a
WebIDL dictionary into keyword arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..ops.registry import snake_case


class PythonSpelling:
    """A missing attribute spelled the spec's way (camelCase) names its Python spelling."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        # Python calls this only after normal lookup failed, so ordinary access costs nothing.
        cls = type(self)
        if not name.startswith("_") and hasattr(cls, name):
            # A property of the class raised AttributeError itself: let that error through.
            return object.__getattribute__(self, name)
        message = f"{cls.__name__!r} object has no attribute {name!r}"
        python = snake_case(name)
        if python != name and hasattr(cls, python):
            message += f" (did you mean {python}? Python spells the spec's names in snake_case)"
        raise AttributeError(message)


def unexpected_keyword(where: str, key: str, keywords: Iterable[str]) -> TypeError:
    """The TypeError for keyword ``key`` that a call of ``where`` does not take (``keywords``: those it does)."""
    keywords = sorted(keywords)
    python = snake_case(key)
    if python != key and python in keywords:
        hint = f"did you mean {python}=?"
    elif keywords:
        hint = f"it takes {', '.join(keywords)}"
    else:
        hint = "it takes no keyword arguments"
    return TypeError(f"{where}: unexpected keyword argument {key!r} ({hint})")


def options_members(options: Mapping[str, Any], members: Iterable[str], where: str) -> dict[str, Any]:
    """The members of an options dictionary that are among ``members`` (Python names), by Python name.

    Keys are the spec's camelCase names (``inputLayout``); the Python names
    (``input_layout``) are read too.  Other keys are ignored, as WebIDL
    ignores unknown dictionary members.
    """
    if not isinstance(options, Mapping):
        raise TypeError(f"{where}: the options must be a dict, got {type(options).__name__}")
    wanted = set(members)
    found: dict[str, Any] = {}
    keys: dict[str, str] = {}  # Python name -> the key that gave it
    for key, value in options.items():
        name = snake_case(key) if isinstance(key, str) else None
        if name not in wanted:
            continue
        if name in found:
            raise TypeError(f"{where}: the options give {name} twice, as {keys[name]!r} and {key!r}")
        found[name], keys[name] = value, key
    return found


def merge_options(where: str, members: Mapping[str, Any], keywords: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments and an options dict's ``members`` as one set; a name given in both is a TypeError."""
    both = sorted(members.keys() & {k for k, v in keywords.items() if v is not None})
    if both:
        raise TypeError(f"{where}: {', '.join(both)} given both in the options dict and as keyword arguments")
    return {**keywords, **members}


__all__ = ["PythonSpelling", "merge_options", "options_members", "unexpected_keyword"]
