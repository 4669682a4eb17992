"""What voicegui's import finders share: each loads a library's package `__init__` from its source with some of its
re-exports imported when first asked for (stream/sdk_import.py: the openai SDK's `types` packages;
aiohttp_import.py: aiohttp's client names; ui/pyqtgraph_import.py: pyqtgraph's widgets).

- `package_source(fullname, path)`: the package's spec from Python's own path finder and its `__init__.py`
  parsed, or None where there is no such source (a module, not a package; a one-folder app that ships only
  bytecode): the finder then says "not mine" and the package is loaded as Python always loads it (logged).
- `resolver(package, names, fallback)`: a module `__getattr__` (PEP 562) that imports each name of `names` from
  its submodule when first asked for and keeps it on the package.
- `global_names(function)`: the names a function of the file looks up in its module when it runs, so a finder
  can tell whether a function would miss a name that is not imported yet.

Threads: no state of its own. The `__getattr__` runs on whichever thread asks; Python's per-module import locks
serialise the imports, and a name resolved by two threads at once is the same object.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

# {name on the package: (submodule it comes from, or None for `from . import submodule`; name in that submodule)}
Names = dict[str, tuple[str | None, str]]


def package_source(fullname: str, path: Sequence[str] | None,
                   say_missing: bool = True) -> tuple[importlib.machinery.ModuleSpec, str, ast.Module] | None:
    """(spec, path of its `__init__.py`, that file parsed) of the package `fullname` as Python's path finder
    finds it; None if it is not a package with a readable source file, logged at debug level ("loaded as
    usual"; where there is no such file, only with `say_missing`)."""
    # Never hand back PathFinder's spec for anything but a package with its source: in a one-folder app the
    # library lives in the bundler's archive (its sources shipped beside it where the spec says so), and a data
    # directory of the same name would come back as a namespace package.
    spec = importlib.machinery.PathFinder.find_spec(fullname, path)
    origin = None if spec is None else spec.origin
    if spec is None or spec.submodule_search_locations is None or origin is None or not origin.endswith("__init__.py"):
        if say_missing:
            log.debug("%s is loaded as usual: its source was not found", fullname)
        return None
    try:
        with open(origin, encoding="utf-8") as f:
            return spec, origin, ast.parse(f.read(), origin)
    except (OSError, SyntaxError, ValueError) as exc:
        log.debug("%s is loaded as usual: %s", fullname, exc)
        return None


def resolver(package: str, names: Names, fallback: Callable[[str], Any] | None = None) -> Callable[[str], Any]:
    """A module `__getattr__` for `package` that imports each of `names` when first asked for and keeps it on the
    package; any other name goes to `fallback` (the file's own `__getattr__`, if it has one), else raises
    AttributeError."""

    submodules = {sub.partition(".")[0] for sub, _ in names.values() if sub}

    def __getattr__(attr: str) -> Any:
        if attr in submodules:  # run by the code, each `from .x import y` would have made `x` an attribute
            return importlib.import_module(f"{package}.{attr}")
        try:
            submodule, name = names[attr]
        except KeyError:
            if fallback is not None:
                return fallback(attr)
            raise AttributeError(f"module {package!r} has no attribute {attr!r}") from None
        if submodule is None:
            value: Any = importlib.import_module(f"{package}.{name}")
        else:
            value = getattr(importlib.import_module(f"{package}.{submodule}"), name)
        setattr(sys.modules[package], attr, value)  # found directly from now on, __getattr__ no longer asked
        return value

    return __getattr__


def global_names(function: ast.FunctionDef) -> set[str]:
    """The names `function`'s body reads that it does not bind itself (arguments, assignments, imports, inner
    definitions; a name it declares `global` counts as read from the module): what it looks up in the module or
    the builtins when it runs."""
    bound: set[str] = set()
    declared_global: set[str] = set()
    read: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).partition(".")[0])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node is not function:
            bound.add(node.name)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.Global):
            declared_global.update(node.names)
    return (read | declared_global) - (bound - declared_global)
