"""aiohttp with its HTTP client imported when first used: voicegui's one way to import it (`from ... import web`).

aiohttp's package `__init__` imports its HTTP client to re-export the client's names (`from .client import
ClientSession, ...`, `.connector`, `.cookiejar`, `.tracing`, ...), so `from aiohttp import web`, which is all the
built-in server needs, also loaded the client. Its `aiohttp.connector` builds two TLS contexts from the
system's CA store when it is imported (`ssl.create_default_context()` and an unverified one that loads the same
store). The built-in server starts in the window at launch and in the process `voicegui speak` forks for the
built-in voices, which must answer before the first sound; neither uses the client, and voicegui's own HTTP
calls go through httpx2 (tls_contexts.short_lived_client), which the openai SDK brings.

`install()` puts a finder first on `sys.meta_path` that runs the package's `__init__` with each top-level
relative `from .module import name` left out; those names are imported when first asked for (a module
`__getattr__`, PEP 562, placed before the file's own `__getattr__`, which still answers for gunicorn's workers).
`aiohttp.ClientSession`, `from aiohttp import ClientSession` and `from aiohttp import *` give the same objects
as a plain import; `dir(aiohttp)` lists the same names (the file's own `__dir__` answers it from `__all__`).
Everything else in the file runs at import, as before (`from . import hdrs`, `__all__`, the functions).

If the file no longer has the shape this expects (a newer aiohttp: a left-out name read by code that runs at
import or by one of its functions, a star import), the package is loaded as Python always loads it, logged at
debug level ("loaded as usual"): slower, never different. tests/test_aiohttp_import.py fails then, so an upgrade
says so.

Threads: `install()` may be called from any thread (a lock makes it once). The finder runs on the thread that
imports aiohttp first (the window's server start-up worker, or a command's main thread); the `__getattr__` on
whichever thread asks, and Python's per-module import locks serialise the imports it makes.
"""

from __future__ import annotations

import ast
import importlib.machinery
import logging
import sys
import threading
from collections.abc import Sequence
from types import CodeType, ModuleType

from voicegui.lazy_package import Names, global_names, package_source, resolver

log = logging.getLogger(__name__)

PACKAGE = "aiohttp"
_lock = threading.Lock()


def install() -> None:
    """Load aiohttp's package as the module docstring says (no effect once it is imported)."""
    with _lock:
        if not any(isinstance(finder, AiohttpFinder) for finder in sys.meta_path):
            sys.meta_path.insert(0, AiohttpFinder())


def split_reexports(tree: ast.Module, filename: str) -> tuple[CodeType, Names] | None:
    """(the file's code without its top-level `from .module import names`, the names those give); None if
    something that runs would miss one of those names: a top-level statement, or a function of the file (its
    `__getattr__`, `__dir__`, ...), reads one; or it has a star import from a submodule."""
    kept: list[ast.stmt] = []
    names: Names = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is not None:
            for alias in node.names:
                if alias.name == "*":
                    return None
                names[alias.asname or alias.name] = (node.module, alias.name)
        else:
            kept.append(node)
    for node in kept:
        reads = global_names(node) if isinstance(node, ast.FunctionDef) else {
            n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        if reads & names.keys():
            return None
    return compile(ast.Module(body=kept, type_ignores=[]), filename, "exec"), names


class _PackageLoader(importlib.machinery.SourceFileLoader):
    """Runs the package's `__init__` without its re-exports, which its `__getattr__` imports when asked for."""

    def __init__(self, fullname: str, path: str, code: CodeType, names: Names) -> None:
        super().__init__(fullname, path)
        self.code = code
        self.names = names

    def exec_module(self, module: ModuleType) -> None:
        namespace = module.__dict__
        exec(self.code, namespace)
        namespace["__getattr__"] = resolver(module.__name__, self.names, fallback=namespace.get("__getattr__"))
        log.debug("%s: imported with %d names left until asked for", module.__name__, len(self.names))


class AiohttpFinder:
    """Finds PACKAGE when its source has the expected shape; None (not mine) for anything else."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != PACKAGE:
            return None
        # None = "not mine": the finders after this one (Python's own, or a bundler's) load it as always.
        found = package_source(fullname, path)
        if found is None:
            return None
        spec, origin, tree = found
        split = split_reexports(tree, origin)
        if split is None:
            log.debug("%s is loaded as usual: code in its __init__ reads the names it re-exports", fullname)
            return None
        spec.loader = _PackageLoader(fullname, origin, *split)
        return spec


install()
import aiohttp  # noqa: E402  (after install(): the finder must be in place first)
from aiohttp import web  # noqa: E402

__all__ = ["aiohttp", "web"]
