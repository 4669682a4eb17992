"""voicegui/aiohttp_import.py: aiohttp imported without its HTTP client until something asks for it, giving the
same names and objects as a plain import. Each check runs in a fresh interpreter (a package is imported once per
process), against the installed aiohttp: an upgrade that changes the file's shape fails here."""

from __future__ import annotations

import ast
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from voicegui.aiohttp_import import AiohttpFinder, split_reexports

REPO = Path(__file__).resolve().parents[1]

# Every public name of the package, as "module.qualname" for what has one, else the value's type; and the
# names a star import gives, and dir().
DESCRIBE = """
import json, sys
names = {}
for name in aiohttp.__all__:
    value = getattr(aiohttp, name)
    names[name] = (f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', '')}"
                   if hasattr(value, "__qualname__") else type(value).__name__)
star = {}
exec("from aiohttp import *", star)
print(json.dumps({"names": names, "star": sorted(set(star) - {"__builtins__"}), "dir": sorted(dir(aiohttp))}))
"""


def run_python(code: str) -> dict:
    """The JSON `python -c code` prints last, run from the checkout."""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_the_server_runs_without_aiohttps_client():
    """The built-in server's modules (and aiohttp.web) load neither the client nor its TLS contexts."""
    out = run_python("""
import json, sys
import voicegui.server.thread, voicegui.server.app
from voicegui.aiohttp_import import aiohttp, web
print(json.dumps({"loaded": sorted(m for m in ("aiohttp.client", "aiohttp.connector", "aiohttp.cookiejar")
                                   if m in sys.modules),
                  "lazy": type(aiohttp.__spec__.loader).__name__, "web": web.__name__}))
""")
    assert out == {"loaded": [], "lazy": "_PackageLoader", "web": "aiohttp.web"}


def test_every_name_is_the_one_a_plain_import_gives():
    lazy = run_python("from voicegui.aiohttp_import import aiohttp\n" + DESCRIBE)
    plain = run_python("import aiohttp\n" + DESCRIBE)
    assert lazy == plain
    assert "ClientSession" in lazy["star"] and "TCPConnector" in lazy["star"]


def test_a_name_asked_for_is_the_client_modules_own_object():
    out = run_python("""
import json, sys
from voicegui.aiohttp_import import aiohttp
before = "aiohttp.client" in sys.modules
session = aiohttp.ClientSession
from aiohttp import ClientTimeout, TCPConnector
print(json.dumps({"before": before, "same": session is sys.modules["aiohttp.client"].ClientSession
                  and TCPConnector is sys.modules["aiohttp.connector"].TCPConnector
                  and ClientTimeout is sys.modules["aiohttp.client"].ClientTimeout,
                  "kept": "ClientSession" in vars(aiohttp)}))
""")
    assert out == {"before": False, "same": True, "kept": True}


def test_the_files_own_getattr_still_answers_and_unknown_names_raise():
    out = run_python("""
import json
from voicegui.aiohttp_import import aiohttp
try:
    aiohttp.NoSuchName
    raised = False
except AttributeError:
    raised = True
print(json.dumps({"raised": raised, "worker": repr(aiohttp.GunicornWebWorker)[:60]}))
""")
    plain = run_python("import json, aiohttp\nprint(json.dumps(repr(aiohttp.GunicornWebWorker)[:60]))")
    assert out == {"raised": True, "worker": plain}


def test_split_reexports_leaves_out_only_what_nothing_reads_at_import():
    code, names = split_reexports(ast.parse(
        "__version__ = '1'\nfrom . import hdrs\nfrom .client import A, B as C\n__all__ = ('A', 'C')\n"
        "def __getattr__(name):\n    raise AttributeError(name)\n"), "<test>") or (None, None)
    assert names == {"A": ("client", "A"), "C": ("client", "B")}
    assert code is not None and {"__version__", "hdrs", "__all__", "__getattr__"} <= set(code.co_names)
    assert not {"client", "A", "B", "C"} & set(code.co_names)  # that import is gone from the code that runs
    # Code that runs at import or in a function of the file would miss a left-out name: loaded as usual.
    assert split_reexports(ast.parse("from .client import A\nX = A\n"), "<test>") is None
    assert split_reexports(ast.parse("from .client import A\ndef f():\n    return A\n"), "<test>") is None
    assert split_reexports(ast.parse("from .client import *\n"), "<test>") is None


def test_an_aiohttp_of_another_shape_is_loaded_as_usual(tmp_path, caplog):
    package = tmp_path / "aiohttp"
    package.mkdir()
    (package / "__init__.py").write_text("from .client import ClientSession\nDEFAULT = ClientSession\n")
    with caplog.at_level(logging.DEBUG, logger="voicegui.aiohttp_import"):
        assert AiohttpFinder().find_spec("aiohttp", [str(tmp_path)]) is None
    assert "loaded as usual" in caplog.text
    (package / "__init__.py").write_text("from .client import ClientSession\n__all__ = ('ClientSession',)\n")
    spec = AiohttpFinder().find_spec("aiohttp", [str(tmp_path)])
    assert spec is not None and type(spec.loader).__name__ == "_PackageLoader"
    assert AiohttpFinder().find_spec("aiohttp.web", [str(tmp_path)]) is None  # only the package is the finder's
