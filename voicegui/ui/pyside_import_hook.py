"""PySide6's import hook, answered from each module's file read once, not through Python's line cache.

PySide6 replaces `__import__` (for its `__feature__` switches). For every module imported after it, shiboken
asks `shibokensupport.feature._mod_uses_pyside(module)` whether the module's source mentions "PySide6", and that
function reads it with `inspect.getsource`: the file is read, split into lines that `linecache` keeps, and
joined again. The window imports ~1,000 modules after PySide6 (pyqtgraph, aiohttp, onnxruntime, the openai
SDK): that cost its start-up CPU, and the cached lines, small strings made among each import's own objects, left
pages half used once they were dropped (ui/app.py drops them after each start-up step): the idle window held
~201 or ~207 MB depending on which of two steps imported its modules first.

`install()` replaces that function with `uses_pyside`, which gives the same answer from the module's `.py` file
read once (for a module, `inspect.getsource` returns that whole file) and asks the original function for any
other module (no file, or not a `.py` file: frozen, zipped, an extension; in the one-folder app a module's
`.py` file named in `__file__` is absent). Nothing goes into `linecache` for a module read here. If
shiboken has no such function (another PySide6), nothing is replaced, logged at debug level;
tests/ui/test_pyside_import_hook.py checks the installed PySide6 has it and that every answer is the same.

Threads: `install()` runs on the GUI thread before the window's imports; `uses_pyside` runs on whichever thread
imports a module (it reads a file and keeps nothing).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from types import ModuleType

log = logging.getLogger(__name__)

FEATURE_MODULE = "shibokensupport.feature"
HOOK_NAME = "_mod_uses_pyside"
_original: Callable[[ModuleType], bool] | None = None


def uses_pyside(module: ModuleType) -> bool:
    """True if `module`'s source mentions "PySide6": `_mod_uses_pyside`'s answer, from its `.py` file."""
    path = getattr(module, "__file__", None)
    if isinstance(path, str) and path.endswith(".py"):
        try:
            with open(path, "rb") as f:
                # Bytes: a Python source's encoding is a superset of ASCII (PEP 263), so the ASCII word is
                # in the bytes where it is in the text; no decoding, no lines.
                return b"PySide6" in f.read()
        except FileNotFoundError:
            pass  # a frozen module (the one-folder app) names a .py file it does not ship: its loader may know
        except OSError as exc:
            log.debug("%s: %s; asking PySide6's own check", path, exc)
    assert _original is not None  # install() set it before putting this function in its place
    return _original(module)


def install() -> bool:
    """Put `uses_pyside` in the place of shiboken's check (PySide6 must be imported); True if it is there."""
    global _original
    feature = sys.modules.get(FEATURE_MODULE)
    current = getattr(feature, HOOK_NAME, None)
    if current is uses_pyside:
        return True
    if feature is None or not callable(current):
        log.debug("PySide6's import hook is left as it is: no %s.%s", FEATURE_MODULE, HOOK_NAME)
        return False
    _original = current
    setattr(feature, HOOK_NAME, uses_pyside)
    return True
