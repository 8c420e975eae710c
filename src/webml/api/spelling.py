"""The spec's JavaScript spellings, met with the Python ones.

The Python API spells methods, attributes and keyword arguments in
snake_case (``average_pool2d``, ``create_tensor``, ``data_type``,
``input_layout=``); dictionaries keep the spec's camelCase keys, as in
JavaScript (descriptors, an operator's options dict, MLContextOptions).
Code written the JavaScript way gets the Python spelling in its error:

* a camelCase attribute or method (``builder.averagePool2d``) is an
  AttributeError saying ``did you mean average_pool2d?``
  (:func:`add_javascript_names`);
* a camelCase keyword (``inputLayout=``) is a TypeError saying
  ``did you mean input_layout=?`` (:func:`unexpected_keyword`).

The dict forms themselves are accepted: :func:`options_members` reads a
WebIDL dictionary into keyword arguments.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from ..ops.registry import snake_case


class PythonSpelling:
    """A class whose spec names, spelled the JavaScript way, name their Python spelling.

    :func:`add_javascript_names` puts each camelCase name on the class as an
    attribute that raises that AttributeError.  A class attribute rather
    than ``__getattr__``: a ``__getattr__`` would slow every attribute access
    of these objects (CPython cannot specialize their lookups then) and would
    turn an AttributeError raised inside a property into a confusing one.
    """

    __slots__ = ()

    def __dir__(self) -> list[str]:
        # The JavaScript names are there to be refused, not offered (tab completion, help()).
        cls = type(self)
        return [n for n in super().__dir__() if not isinstance(inspect.getattr_static(cls, n, None), JavaScriptName)]


class JavaScriptName:
    """A class attribute under a spec name spelled the JavaScript way; reading it raises an AttributeError."""

    def __init__(self, python: str) -> None:
        self.python = python
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        of = f"{type(obj).__name__!r} object" if obj is not None else f"type object {owner.__name__!r}"
        raise AttributeError(
            f"{of} has no attribute {self.name!r} (did you mean {self.python}? "
            "Python spells the spec's names in snake_case)"
        )


def camel_case(name: str) -> str:
    """``create_tensor`` -> ``createTensor`` (the JavaScript spelling of a Python name)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def add_javascript_names(cls: type, spec_names: Mapping[str, str] | None = None) -> None:
    """Give ``cls`` the JavaScript spelling of each public name it has (``dataType`` for
    ``data_type``), and of ``spec_names`` (spec name -> Python name, for names such as
    ``gatherND`` that :func:`camel_case` does not give)."""
    names = {camel_case(n): n for n in dir(cls) if not n.startswith("_")}
    names.update(spec_names or {})
    for js, python in names.items():
        if js != python and inspect.getattr_static(cls, js, None) is None:
            attribute = JavaScriptName(python)
            setattr(cls, js, attribute)
            attribute.__set_name__(cls, js)


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


__all__ = [
    "JavaScriptName",
    "PythonSpelling",
    "add_javascript_names",
    "camel_case",
    "merge_options",
    "options_members",
    "unexpected_keyword",
]
