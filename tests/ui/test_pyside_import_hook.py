"""voicegui/ui/pyside_import_hook.py: shiboken's "does this module use PySide6?" answered from the file read once,
with the same answers, and nothing left in Python's line cache.

Each check runs in a fresh interpreter: the hook is process-wide, and the test process imported its modules
long ago.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_python(code: str) -> dict:
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


SAME_ANSWERS = """
import json, linecache, sys
import PySide6.QtCore
from voicegui.ui import pyside_import_hook as hook
feature = sys.modules[hook.FEATURE_MODULE]
original = feature._mod_uses_pyside
installed = hook.install()
linecache.clearcache()
import http.cookiejar, xml.dom.minidom, numpy  # imported after the hook is in place
from voicegui.ui import plots  # modules that do mention PySide6
cached = sorted(name for name in linecache.cache if not name.startswith("<"))
modules = [m for m in list(sys.modules.values()) if m is not None]
differ = [m.__name__ for m in modules if hook.uses_pyside(m) != original(m)]
marks = feature.pyside_feature_dict
print(json.dumps({"installed": installed, "ours": feature._mod_uses_pyside is hook.uses_pyside, "cached": cached[:5],
                  "differ": differ[:5], "checked": len(modules), "mentions": sum(map(hook.uses_pyside, modules)),
                  "items_mark": marks.get("voicegui.ui.plot_items"), "ring_mark": marks.get("voicegui.stream.ring")}))
"""


def test_the_hook_gives_shibokens_answers_and_caches_no_source():
    out = run_python(SAME_ANSWERS)
    assert out["installed"] and out["ours"], "the installed PySide6 has no hook of that name: see the module"
    assert out["differ"] == [] and out["checked"] > 300 and out["mentions"] > 5
    assert out["cached"] == [], "imports put module sources in linecache"
    # shiboken's own marks, made through our function: 0 for a module that uses PySide6, -1 for one that does not
    assert out["items_mark"] == 0 and out["ring_mark"] == -1


def test_without_pyside6_loaded_nothing_is_replaced():
    out = run_python("""
import json, sys
from voicegui.ui import pyside_import_hook as hook
print(json.dumps({"installed": hook.install(), "qt": "PySide6" in sys.modules}))
""")
    assert out == {"installed": False, "qt": False}


def test_a_module_without_a_py_file_is_asked_of_shibokens_own_check():
    out = run_python("""
import json, sys, types
import PySide6.QtCore
from voicegui.ui import pyside_import_hook as hook
hook.install()
asked = []
hook._original = lambda module: asked.append(module.__name__) or True
frozen = types.ModuleType("frozen_in_a_bundle")
frozen.__file__ = "/nonexistent/bundle/_internal/frozen_in_a_bundle.py"  # what a one-folder app's module names
answers = [hook.uses_pyside(types.ModuleType("made_in_memory")), hook.uses_pyside(frozen)]
print(json.dumps({"answers": answers, "asked": asked}))
""")
    assert out == {"answers": [True, True], "asked": ["made_in_memory", "frozen_in_a_bundle"]}
