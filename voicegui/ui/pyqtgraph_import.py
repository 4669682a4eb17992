"""pyqtgraph, imported with what voicegui draws with: voicegui's one way to import it (`from ... import pg`).

`import pyqtgraph` cost ~36 MB resident and ~0.25 s on the GUI thread (while the window builds its plots), for a
plot widget, a few items and the pen helpers; imported this way, ~19 MB and ~0.1 s. Two things in pyqtgraph's
own `__init__` files made most of it, and `install()` puts a finder first on `sys.meta_path` that loads those
two modules from their source with one change each:

- **The Qt layer** (`pyqtgraph/Qt/__init__.py`) filled its `QtCore`, `QtGui` and `QtWidgets` modules by copying
  every attribute of PySide6's (`_copy_attrs`: `dir()`, then `getattr` of each name). PySide6 makes a class's
  Python type only when it is first asked for, so the copy made all of them (~1,500 types). Here
  `_copy_attrs(src, dst)` gives `dst` a module `__getattr__` (PEP 562) that fetches a name from `src` when first
  asked for and keeps it in `dst`: `pyqtgraph.Qt.QtGui.QPen`, `from pyqtgraph.Qt.QtGui import QPen` and `dir()`
  give the same objects as before; what pyqtgraph sets on its modules itself is found first, as before.
- **The package** (`pyqtgraph/__init__.py`) imported ~95 modules (every widget, image and colour-map tool) to
  re-export their names. Here its imports from its subpackages (`.widgets.TreeWidget`, `.imageview`, ...) are
  deferred, except those of EAGER_SUBMODULES (what voicegui's plots use) and those the eager part has imported
  anyway (they bind their names at once); the rest of the file runs at import (SplitPackage says exactly which).
  A deferred name given by name (`from .widgets.GroupBox import GroupBox`) is imported alone when first asked
  for; a submodule not imported yet is imported alone (`from .. import functions_qimage`, as the import system
  would); any other name the package lacks runs every deferred import, in the file's order, as a plain import
  would have, and is then looked up again (a name nothing exports still raises AttributeError). A function of
  the file that reads a name only a deferred import gives (`pyqtgraph.image` reads `ImageView`) runs them first
  when called. Only `dir(pyqtgraph)` and `vars(pyqtgraph)` list fewer names until then.

If either file no longer has the shape this expects (a newer pyqtgraph), it is loaded as Python always loads it,
logged at debug level ("loaded as usual"): slower, never different. tests/ui/test_pyqtgraph_import.py fails
then, so an upgrade says so, and checks that drawing voicegui's plots runs no deferred import.

Threads: `install()` may be called from any thread (a lock makes it once); pyqtgraph is imported and used on the
GUI thread only.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import importlib.machinery
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from types import CodeType, ModuleType
from typing import Any

from voicegui.lazy_package import global_names, package_source

log = logging.getLogger(__name__)

PACKAGE = "pyqtgraph"
QT_LAYER = "pyqtgraph.Qt"
COPY_FUNCTION = "_copy_attrs"
# The package's relative imports run at import: the Qt layer and colours the file itself uses, and what
# voicegui's plots draw with (ui/plots.py, plot_items.py, plot_theme.py: PlotWidget, its PlotItem and ViewBox,
# InfiniteLine, TextItem, LegendItem, GraphicsObject, mkPen/mkBrush). The package's exit clean-up uses ViewBox.
EAGER_SUBMODULES = frozenset({
    "Qt", "colors", "functions", "graphicsItems.GraphicsObject", "graphicsItems.InfiniteLine",
    "graphicsItems.LegendItem", "graphicsItems.PlotItem", "graphicsItems.TextItem", "graphicsItems.ViewBox",
    "widgets.PlotWidget",
})
_lock = threading.Lock()


def install() -> None:
    """Load pyqtgraph's package and Qt layer as the module docstring says (no effect on what is imported)."""
    with _lock:
        if not any(isinstance(finder, PyqtgraphFinder) for finder in sys.meta_path):
            sys.meta_path.insert(0, PyqtgraphFinder())


# ---- the Qt layer -------------------------------------------------------------------------------------------

def forward_attrs(src: ModuleType, dst: ModuleType) -> None:
    """Make `dst` answer every name of `src` (what `_copy_attrs(src, dst)` did by copying them all), each
    fetched when first asked for and kept in `dst`; names `dst` already has are its own."""

    def __getattr__(name: str) -> Any:
        value = getattr(src, name)  # AttributeError, naming `src`, for a name it lacks
        setattr(dst, name, value)  # found directly from now on: pyqtgraph looks classes up while it paints
        return value

    dst.__getattr__ = __getattr__  # type: ignore[method-assign]
    dst.__dir__ = lambda: sorted(set(vars(dst)) | set(dir(src)))  # type: ignore[method-assign]


def without_copy_function(tree: ast.Module) -> ast.Module | None:
    """The Qt layer's code without its top-level `def _copy_attrs(src, dst)` (the loader supplies
    `forward_attrs` under that name); None if it has no such function."""
    for i, node in enumerate(tree.body):
        if (isinstance(node, ast.FunctionDef) and node.name == COPY_FUNCTION
                and [a.arg for a in node.args.args] == ["src", "dst"]):
            return ast.Module(body=tree.body[:i] + tree.body[i + 1:], type_ignores=[])
    return None


# ---- the package ----------------------------------------------------------------------------------------------

class SplitPackage:
    """The package's `__init__` split and compiled: `eager` runs at import; `deferred` runs when a name is
    missing; `named` maps each name a deferred import gives by name to (submodule, name in it); `reads` holds
    the names each top-level function looks up when it runs. No syntax tree is kept (the loader stays with the
    module).

    A relative import is deferred when it is not from EAGER_SUBMODULES, it comes from one of the package's
    subpackages (`.graphicsItems.ROI`, `.imageview`: `is_package` says which first parts are packages) and it
    binds no name that is that first part. Importing a submodule binds its name on the package (`pyqtgraph.Point`
    = the module), and the file then binds some of those names again, to the class of the same name (`from .Point
    import Point`; `from .ThreadsafeTimer import *`): deferred, that second binding would wait while the first
    stood. A subpackage's modules bind their names on the subpackage, and the file binds none of them again."""

    def __init__(self, tree: ast.Module, filename: str, is_package: Callable[[str], bool]) -> None:
        eager: list[ast.stmt] = []
        # One code object per deferred import, in the file's order: (submodule, its code).
        self.deferred: list[tuple[str, CodeType]] = []
        self.named: dict[str, tuple[str, str]] = {}
        for node in tree.body:
            module = self._deferrable(node, is_package) if isinstance(node, ast.ImportFrom) else None
            if module is None:
                eager.append(node)
                continue
            assert isinstance(node, ast.ImportFrom)  # only an import has a submodule
            self.deferred.append((module, compile(ast.Module(body=[node], type_ignores=[]), filename, "exec")))
            for alias in node.names:
                if alias.name != "*":
                    self.named[alias.asname or alias.name] = (module, alias.name)
        self.splits = bool(self.deferred)  # else there is nothing to gain: load as usual
        self.eager = compile(ast.Module(body=eager, type_ignores=[]), filename, "exec")
        self.reads = {node.name: global_names(node) for node in eager if isinstance(node, ast.FunctionDef)}

    @staticmethod
    def _deferrable(node: ast.ImportFrom, is_package: Callable[[str], bool]) -> str | None:
        """The submodule `node` imports from if it is deferred (see the class docstring), else None."""
        if node.level != 1 or node.module is None or node.module in EAGER_SUBMODULES:
            return None
        first = node.module.partition(".")[0]
        if any((alias.asname or alias.name) == first for alias in node.names):
            return None
        return node.module if "." in node.module or is_package(first) else None


class _PackageLoader(importlib.machinery.SourceFileLoader):
    """Runs the package's `__init__` without its deferred imports; see the module docstring."""

    def __init__(self, fullname: str, path: str, split: SplitPackage) -> None:
        super().__init__(fullname, path)
        self.split = split

    def exec_module(self, module: ModuleType) -> None:
        split, namespace = self.split, module.__dict__
        exec(split.eager, namespace)
        pending = list(split.deferred)

        def run(imports: list[tuple[str, CodeType]]) -> None:
            for item in imports:
                pending.remove(item)
                exec(item[1], namespace)

        # The deferred imports whose submodule the eager part has imported anyway cost nothing: they bind their
        # names now (`pyqtgraph.AxisItem`, imported by PlotItem), so asking for those loads nothing.
        run([item for item in pending if f"{module.__name__}.{item[0]}" in sys.modules])
        log.debug("%s: imported with %d of its imports deferred", module.__name__, len(pending))

        running = False

        def run_deferred() -> None:
            nonlocal running
            if pending and not running:
                log.debug("%s: every deferred import runs now", module.__name__)
                running = True
                try:
                    run(list(pending))
                finally:
                    running = False

        def __getattr__(attr: str) -> Any:
            if attr in split.named and pending:
                submodule, name = split.named[attr]
                value = getattr(importlib.import_module(f"{module.__name__}.{submodule}"), name)
                namespace[attr] = value
                return value
            # Dunder probes (`__wrapped__`, `__path__` lookups by tools) are not names pyqtgraph exports; a star
            # import asks for `__all__`, which the package has none of, and then takes every public name.
            if attr.startswith("__") and attr != "__all__":
                raise AttributeError(f"module {module.__name__!r} has no attribute {attr!r}")
            # A submodule not imported yet (`from .. import functions_qimage` asks with hasattr first): imported
            # alone, which binds it here, as the import system would have.
            if importlib.machinery.PathFinder.find_spec(f"{module.__name__}.{attr}", list(module.__path__)):
                return importlib.import_module(f"{module.__name__}.{attr}")
            if running:  # asked while the deferred imports run: not bound yet, as in a plain import
                raise AttributeError(f"partially initialized module {module.__name__!r} has no attribute {attr!r}")
            run_deferred()
            try:
                return namespace[attr]
            except KeyError:
                raise AttributeError(f"module {module.__name__!r} has no attribute {attr!r}") from None

        namespace["__getattr__"] = __getattr__
        available = set(namespace) | set(dir(builtins))
        for name, reads in split.reads.items():
            if reads - available and callable(namespace.get(name)):
                namespace[name] = _after(run_deferred, namespace[name])


def _after(first: Callable[[], None], function: Callable[..., Any]) -> Callable[..., Any]:
    """`function`, calling `first()` before each call."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        first()
        return function(*args, **kwargs)

    return wrapper


# ---- the finder -----------------------------------------------------------------------------------------------

class _QtLayerLoader(importlib.machinery.SourceFileLoader):
    """Runs the Qt layer without `_copy_attrs`, with `forward_attrs` in its place."""

    def __init__(self, fullname: str, path: str, code: CodeType) -> None:
        super().__init__(fullname, path)
        self.code = code

    def exec_module(self, module: ModuleType) -> None:
        module.__dict__[COPY_FUNCTION] = forward_attrs
        exec(self.code, module.__dict__)
        log.debug("%s: Qt names forwarded, not copied", module.__name__)


class PyqtgraphFinder:
    """Finds PACKAGE and QT_LAYER when their source has the expected shape; None (not mine) otherwise."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in (PACKAGE, QT_LAYER):
            return None
        # None = "not mine": the finders after this one (Python's own, or a bundler's) load it as always. In a
        # one-folder app the module's bytecode is in the bundler's archive and its source beside it (the spec
        # ships it); PathFinder finds that source file.
        found = package_source(fullname, path)
        if found is None:
            return None
        spec, origin, tree = found
        if fullname == QT_LAYER:
            layer = without_copy_function(tree)
            if layer is None:
                log.debug("%s is loaded as usual: it has no %s(src, dst)", fullname, COPY_FUNCTION)
                return None
            spec.loader = _QtLayerLoader(fullname, origin, compile(layer, origin, "exec"))
            return spec
        locations = list(spec.submodule_search_locations or [])

        def is_package(name: str) -> bool:
            found = importlib.machinery.PathFinder.find_spec(f"{fullname}.{name}", locations)
            return found is not None and found.submodule_search_locations is not None

        split = SplitPackage(tree, origin, is_package)
        if not split.splits:
            log.debug("%s is loaded as usual: it defers no import", fullname)
            return None
        spec.loader = _PackageLoader(fullname, origin, split)
        return spec


install()
import pyqtgraph as pg  # noqa: E402  (after install(): the finder must be in place first)

__all__ = ["pg"]
