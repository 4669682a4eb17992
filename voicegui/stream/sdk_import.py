"""The openai SDK's `types` packages loaded name by name, on first use, instead of all at once.

`import openai` runs `openai/types/__init__.py`, which imports every request and response type of every API
(~500 modules, several hundred pydantic classes): ~0.45 s of the SDK's ~0.75 s import on these machines, and
~12 MB resident, of which a Speak uses a handful (the audio speech parameters, the Realtime events). Each of the
SDK's `types` package `__init__.py` files holds nothing but relative imports (`from .batch import Batch as
Batch`); `install()` puts a finder before Python's own that loads such a package with those imports turned
into a module `__getattr__` (PEP 562): `openai.types.Batch`, `from openai.types import Batch` and
`import openai.types.batch` all give the same objects as before, imported when first asked for. The same goes
for `openai.lib` itself (LIB_PACKAGE: the structured-output helpers its `__init__` imports, ~35 ms).

The SDK's vendored aiohttp transport (`openai._vendor.httpx_aiohttp`, behind `openai.DefaultAioHttpClient`) is not
imported at all: voicegui talks to servers through httpx2 (stream/fetch.py), and importing that transport imports
aiohttp, which builds TLS contexts from the system's CA store at import (~0.1 s of a `voicegui speak`'s start
with --base-url). The SDK imports it inside `try: ... except ImportError`, so it sees aiohttp as not installed:
`openai.DefaultAioHttpClient` would raise the SDK's own "install the aiohttp extra" error, and nothing here uses
it. The built-in server imports aiohttp itself when it is started.

A package whose `__init__.py` holds anything else (a newer SDK may add code there) is loaded as Python always
loads it, logged at debug level: slower, never different. tests/stream/test_sdk_import.py checks, against the
installed SDK, that every name a plain import gives is there and that no package is loaded the slow way.

Threads: `install()` may be called from any thread, any number of times (a lock makes it once). The finder
and the `__getattr__` it gives each package run on whichever thread imports; Python's per-module import locks
serialise the imports, and a name resolved twice by two threads is the same object.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import logging
import sys
import threading
from collections.abc import Sequence
from types import ModuleType

from voicegui.lazy_package import Names, package_source, resolver

log = logging.getLogger(__name__)

PACKAGE = "openai.types"
# Loaded lazily too, alone (not its subpackages, some of which hold code): its `__init__` imports the helpers of
# structured outputs (`_parsing`, `_tools`, with the chat completion types: ~35 ms), and the SDK's client
# imports `openai.lib._client_auth` from it at `import openai`. A Speak uses none of them.
LIB_PACKAGE = "openai.lib"
# Never imported in this process (see the module docstring): the SDK falls back to its "aiohttp not installed".
SKIPPED = ("openai._vendor.httpx_aiohttp",)
_lock = threading.Lock()
_installed = False


def install() -> None:
    """Load the SDK's `types` packages lazily from now on (no effect on packages already imported)."""
    global _installed
    with _lock:
        if not _installed:
            sys.meta_path.insert(0, LazyTypesFinder())
            sys.meta_path.insert(0, LazyTypesFinder(LIB_PACKAGE, subpackages=False))
            sys.meta_path.insert(0, SkippedModuleFinder())
            _installed = True


class SkippedModuleFinder:
    """Refuses to import SKIPPED (and their submodules) with an ImportError, the error a missing optional
    dependency gives; None (not mine) for anything else. Python needs only `find_spec` of a meta path finder."""

    def __init__(self, skipped: Sequence[str] = SKIPPED) -> None:
        self.skipped = tuple(skipped)

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if any(fullname == name or fullname.startswith(name + ".") for name in self.skipped):
            raise ImportError(f"{fullname} is not used by voicegui (stream/sdk_import.py)", name=fullname)
        return None


def exported_names(tree: ast.Module) -> Names | None:
    """What a package `__init__.py` made only of relative imports exports: {name: (submodule or None for
    `from . import name`, name in it)}; None if it holds anything else (then it is not loaded lazily)."""
    names: Names = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__" and node.level == 0:
            continue
        if not (isinstance(node, ast.ImportFrom) and node.level == 1):
            return None
        for alias in node.names:
            if alias.name == "*":
                return None
            names[alias.asname or alias.name] = (node.module, alias.name)
    return names


class _LazyTypesLoader(importlib.machinery.SourceFileLoader):
    """Loads one `types` package: its exports become a `__getattr__`; its code is not run."""

    def __init__(self, fullname: str, path: str, names: Names) -> None:
        super().__init__(fullname, path)
        self.names = names

    def exec_module(self, module: ModuleType) -> None:
        names = self.names
        module.__getattr__ = resolver(module.__name__, names)  # type: ignore[method-assign]
        module.__dir__ = lambda: sorted(set(vars(module)) | set(names))  # type: ignore[method-assign]


class LazyTypesFinder:
    """Finds the packages at (and with `subpackages`, under) `package` that it can load lazily; None (not mine)
    for anything else."""

    def __init__(self, package: str = PACKAGE, subpackages: bool = True) -> None:
        self.package = package
        self.subpackages = subpackages

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.package and not (self.subpackages and fullname.startswith(self.package + ".")):
            return None
        # None = "not mine": the finders after this one (Python's own, or a bundler's) load it as always.
        # Quiet where there is no source: most names under the package are modules, not packages.
        found = package_source(fullname, path, say_missing=False)
        if found is None:
            return None
        spec, origin, tree = found
        names = exported_names(tree)
        if names is None:
            log.debug("%s is loaded as usual: its __init__ holds more than relative imports", fullname)
            return None
        spec.loader = _LazyTypesLoader(fullname, origin, names)
        return spec
