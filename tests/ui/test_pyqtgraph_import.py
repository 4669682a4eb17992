"""voicegui/ui/pyqtgraph_import.py: pyqtgraph imported with what the plots draw with, its Qt layer forwarding
names instead of copying every Qt class, and nothing else different.

Each check of the import itself runs in a fresh interpreter (the test process may have imported pyqtgraph
the plain way already). Against the installed pyqtgraph: if an upgrade changes the shape of its `__init__`
files, the checks that the finder applies fail, rather than the window quietly growing again. The last test
runs the real window (offscreen, the built-in voices, the null sink) through a Speak and reads its debug log.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.e2e.handoff_bench import FIRST_SOUND, READY, WindowProcess
from voicegui.ui.pyqtgraph_import import (
    PyqtgraphFinder,
    SplitPackage,
    without_copy_function,
)

REPO = Path(__file__).resolve().parents[2]


def run_python(code: str) -> dict:
    """Run `code` in a fresh interpreter (offscreen Qt, this checkout importable); the JSON it prints last."""
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


QT_LAYER = """
import json
from voicegui.ui.pyqtgraph_import import pg
import PySide6.QtCore, PySide6.QtGui, PySide6.QtWidgets
untouched = "QCalendarWidget" not in vars(pg.Qt.QtWidgets) and "QPdfWriter" not in vars(pg.Qt.QtGui)
out = {"untouched": untouched}
for name in ("QtCore", "QtGui", "QtWidgets"):
    shim, real = getattr(pg.Qt, name), getattr(PySide6, name)
    own = set(vars(shim))  # what pyqtgraph set there itself, the module's own dunders: not copied before either
    wrong = [n for n in dir(real) if n not in own and getattr(shim, n) is not getattr(real, n)]
    out[name] = {"forwards": "__getattr__" in vars(shim), "wrong": wrong[:5],
                 "listed": set(dir(real)) <= set(dir(shim))}
from pyqtgraph.Qt.QtGui import QPen
out["from_import"] = QPen is PySide6.QtGui.QPen
out["own_kept"] = pg.Qt.QtWidgets.QOpenGLWidget.__module__ == "PySide6.QtOpenGLWidgets"
try:
    pg.Qt.QtCore.NoSuchThing
    out["missing"] = "no error"
except AttributeError as exc:
    out["missing"] = str(exc)
print(json.dumps(out))
"""


def test_the_qt_layer_forwards_every_name_to_the_same_object_and_makes_none_ahead():
    out = run_python(QT_LAYER)
    assert out["untouched"], "classes nothing asked for were made"
    for name in ("QtCore", "QtGui", "QtWidgets"):
        assert out[name]["forwards"], f"pyqtgraph.Qt.{name} was copied, not forwarded: {out[name]}"
        assert out[name]["wrong"] == [], out[name]
        assert out[name]["listed"], "dir() lists fewer names than PySide6's module"
    assert out["from_import"] and out["own_kept"]
    assert "NoSuchThing" in out["missing"]


PACKAGE = """
import json, sys
from voicegui.ui import plots  # what the window imports
import pyqtgraph as pg
out = {"loaded_as_such": type(pg.__loader__).__name__, "imageview_before": "pyqtgraph.imageview" in sys.modules,
       "wrapped": sorted(n for n in ("cleanup", "plot", "image", "dbg", "stack")
                         if hasattr(vars(pg)[n], "__wrapped__"))}
out["point"] = isinstance(pg.Point, type)  # the class, not the module the import system binds first
out["axis"] = pg.AxisItem.__name__  # star-imported from a module the plots import anyway
group_box = pg.GroupBox  # given by name: imported alone
out["group_box"] = group_box.__module__ == "pyqtgraph.widgets.GroupBox"
out["imageview_after_named"] = "pyqtgraph.imageview" in sys.modules
image_view = pg.ImageView  # from a star import: every deferred import runs
out["image_view"] = image_view.__module__
out["names"] = sorted(n for n in dir(pg) if not n.startswith("_"))
ns = {}
exec("from pyqtgraph import *", ns)
out["star"] = sorted(n for n in ns if not n.startswith("_"))
try:
    pg.NoSuchThing
    out["missing"] = "no error"
except AttributeError as exc:
    out["missing"] = str(exc)
print(json.dumps(out))
"""

PLAIN = """
import json
import pyqtgraph as pg
ns = {}
exec("from pyqtgraph import *", ns)
print(json.dumps({"names": sorted(n for n in dir(pg) if not n.startswith("_")),
                  "star": sorted(n for n in ns if not n.startswith("_")), "image_view": pg.ImageView.__module__}))
"""


def test_the_package_defers_what_the_plots_do_not_use_and_then_gives_every_name():
    ours, plain = run_python(PACKAGE), run_python(PLAIN)
    assert ours["loaded_as_such"] == "_PackageLoader"
    assert not ours["imageview_before"], "the image tools were imported with the plots"
    assert ours["point"] and ours["axis"] == "AxisItem"
    assert ours["group_box"] and not ours["imageview_after_named"], "a name given by name ran every deferred import"
    assert ours["wrapped"] == ["dbg", "image", "stack"]  # they use names only deferred imports give
    assert ours["image_view"] == plain["image_view"]
    assert ours["names"] == plain["names"]
    assert ours["star"] == plain["star"]
    assert "NoSuchThing" in ours["missing"]


def test_an_image_window_from_the_deferred_part_works():
    # pyqtgraph.image() reads ImageView, which only a deferred import gives: the call runs them first.
    out = run_python("""
import json
from voicegui.ui.pyqtgraph_import import pg
from PySide6.QtWidgets import QApplication
app = QApplication([])
import numpy as np
view = pg.image(np.zeros((8, 8)))
print(json.dumps({"type": type(view).__name__}))
""")
    assert out["type"] == "ImageView"


def test_a_pyqtgraph_of_another_shape_is_loaded_as_usual(tmp_path):
    package = tmp_path / "pyqtgraph"
    (package / "Qt").mkdir(parents=True)
    (package / "__init__.py").write_text("import numpy\nVALUE = 1\n")
    (package / "Qt" / "__init__.py").write_text("def copy_all(src, dst):\n    pass\n")
    finder = PyqtgraphFinder()
    assert finder.find_spec("pyqtgraph", [str(tmp_path)]) is None
    assert finder.find_spec("pyqtgraph.Qt", [str(package)]) is None
    assert finder.find_spec("pyqtgraph.other", [str(package)]) is None
    assert without_copy_function(ast.parse("def _copy_attrs(a, b):\n    pass\n")) is None  # not (src, dst)
    never = lambda name: False  # noqa: E731
    assert not SplitPackage(ast.parse("from .Qt import QtCore\nfrom .functions import *\n"), "x", never).splits
    # A top-level module, or an import that binds its own first part, runs at import (see SplitPackage).
    split = SplitPackage(ast.parse("from .Point import Point\nfrom .Timer import *\nfrom .scene import scene\n"
                                   "from .widgets.Box import Box\nfrom .images import *\n"), "x",
                         lambda name: name in ("scene", "widgets", "images"))
    assert split.named == {"Box": ("widgets.Box", "Box")}
    assert [module for module, _ in split.deferred] == ["widgets.Box", "images"]


def test_the_installed_pyqtgraph_has_the_shape_the_finder_expects():
    import importlib.util

    spec = importlib.util.find_spec("pyqtgraph")
    assert spec is not None and spec.origin is not None
    origin = Path(spec.origin)
    assert without_copy_function(ast.parse((origin.parent / "Qt" / "__init__.py").read_text())) is not None
    split = SplitPackage(ast.parse(origin.read_text()), str(origin),
                         lambda name: (origin.parent / name / "__init__.py").exists())
    assert split.splits and "GroupBox" in split.named and "Point" not in split.named


@pytest.mark.audio
def test_the_window_draws_a_speak_without_the_deferred_imports():
    with tempfile.TemporaryDirectory(prefix="vg-pg-") as tmp:  # short: a unix socket path is bounded
        win = WindowProcess(Path(tmp), Path(tmp) / "rt", args=("-vv",))
        try:
            win.wait_for(READY, 120)
            win.wait_for("plots built", 60)
            seen = len(win.lines)
            res = win.command("speak", "Hello, plots.")
            assert res.returncode == 0, res.stderr[-2000:]
            win.wait_for(FIRST_SOUND, 60, after=seen)  # played and drawn
        finally:
            win.stop()
        ours = [line for line in win.lines if "pyqtgraph_import" in line]
        assert any("imports deferred" in line for line in ours), ours
        assert any("Qt names forwarded" in line for line in ours), ours
        assert not [line for line in ours if "as usual" in line or "every deferred import" in line], ours
