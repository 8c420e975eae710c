"""The contract between the layers (DESIGN.md, "Architecture principles"), checked on the source.

* No module reads another's private state: ``obj._name`` is only written
  where ``_name`` is defined (on ``self``/``cls``, or anywhere in the module
  that defines it).  Layers talk through the IR and small public methods.
* A lower layer never imports a higher one:
  ir <- ops <- backends <- api <- onnx/train/zoo/conformance/serve <- cli, where
  ``webml/__init__.py`` belongs to the API layer (it re-exports it).  The
  utility modules may be imported by any layer and import only each other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import webml

SRC = Path(webml.__file__).parent
ROOT = SRC.parent

#: Each top-level part of the package and its layer: a module may import its own layer and those below.
LAYERS = {
    "ir": 0,
    "ops": 1,
    "backends": 2,
    "api": 3,
    "onnx": 4,
    "train": 4,
    "zoo": 4,
    "conformance": 4,
    "shrink": 4,
    "serve": 4,  # webml serve: a client of webml.ml like any other program
    "web": 4,  # webml export --web: the model (onnx, train) as a static folder for onnxruntime-web
    "media": 4,  # frames as planes into graphs (webml.media): a client of the API, used by zoo, serve, cli
    "batch": 4,  # webml batch: the models (onnx, zoo, train) over Ray Data
    "protected": 4,  # signed, encrypted packages opened in memory into graphs (onnx, api)
    "federated": 4,  # Flower client/server around the Trainer (train) and the transfer-learning head
    "cli": 5,
    "__main__": 5,  # webml/__main__.py: `python -m webml`, the command
    "": 3,  # webml/__init__.py: the API layer's facade (it re-exports webml.api and the errors)
}
#: Utilities every layer may import; they import only each other.
UTILITIES = {"dtypes", "errors", "files", "images", "scores", "storage"}


def _sources() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8"), str(path))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _targets(node: ast.AST) -> Iterator[ast.expr]:
    if isinstance(node, ast.Assign):
        yield from node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        yield node.target


def _names_in(target: ast.expr) -> Iterator[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for t in target.elts:
            yield from _names_in(t)
    elif isinstance(target, ast.Starred):
        yield from _names_in(target.value)


def _is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def _defined_names(tree: ast.Module) -> set[str]:
    """Every name the module defines: functions, classes, class and module attributes, ``self._x``, slots."""
    names: set[str] = set()
    for scope in [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef))]:
        for stmt in scope.body:
            for target in _targets(stmt):
                names.update(_names_in(target))
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in stmt.names)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _is_self(node.value):
            names.add(node.attr)
        elif any(isinstance(t, ast.Name) and t.id == "__slots__" for t in _targets(node)):
            value = node.value
            if isinstance(value, (ast.Tuple, ast.List)):
                names.update(e.value for e in value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str))
    return names


def private_accesses() -> list[str]:
    """``file:line: expression`` of each access to another module's private name."""
    found = []
    for path, tree in _sources():
        defined = _defined_names(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not _is_private(node.attr):
                continue
            if _is_self(node.value) or node.attr in defined:
                continue
            found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_private_access_across_modules():
    found = private_accesses()
    assert not found, (
        f"{len(found)} access(es) to another module's private state:\n  "
        + "\n  ".join(found)
        + "\nInstead, give the owning module a small public, documented method or read-only property "
        "(marked non-spec where the spec has no such member), or a module-level function, and call that."
    )


# -- layering ----------------------------------------------------------------------------------


def _module_name(path: str) -> str:
    parts = path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_blocks(tree: ast.Module) -> set[int]:
    """ids of the import statements under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return inside


def _imported(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]) -> Iterator[str]:
    """The webml modules an import statement of ``module`` loads (a name imported from a package may be one)."""
    if isinstance(node, ast.Import):
        yield from (a.name for a in node.names)
        return
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    for alias in node.names:
        yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base


def _part(module: str) -> str | None:
    """The top-level part of the package that ``module`` is in ("" for the package itself); None if not webml."""
    parts = module.split(".")
    if parts[0] != "webml":
        return None
    return parts[1] if len(parts) > 1 else ""


def layer_violations() -> list[str]:
    sources = list(_sources())
    known = {_module_name(path) for path, _ in sources}
    found = []
    for path, tree in sources:
        module = _module_name(path)
        own = _part(module)
        skip = _type_checking_blocks(tree)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in skip:
                continue
            for target in _imported(module, path.endswith("__init__.py"), node, known):
                other = _part(target)
                if other is None or other == own:
                    continue
                if own in UTILITIES:
                    allowed = other in UTILITIES
                else:
                    allowed = other in UTILITIES or LAYERS[other] <= LAYERS[own]
                if not allowed:
                    found.append(f"{path}:{node.lineno}: {module} imports {target}")
    return found


def test_every_part_of_the_package_has_a_layer():
    parts = {_part(_module_name(path)) for path, _ in _sources()}
    assert parts - LAYERS.keys() - UTILITIES == set(), "add the new part of webml to LAYERS or UTILITIES"


def test_lower_layers_never_import_higher_ones():
    found = layer_violations()
    assert not found, (
        f"{len(found)} import(s) against the layering (ir <- ops <- backends <- api <- "
        "onnx/train/zoo/conformance <- cli):\n  "
        + "\n  ".join(found)
        + "\nInstead, move the code the lower layer needs down into it (or into a utility module), "
        "or have the higher layer pass it in."
    )
