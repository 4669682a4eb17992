"""The bundle's stand-in for PySide6.QtOpenGL (packaging/pyinstaller/rthook_qtopengl.py), which the spec leaves out.

Each check runs in a fresh interpreter that executes the hook first, as the bundle's bootloader does: there
the stand-in replaces the real binding that this environment has installed, so pyqtgraph is imported and
draws a plot in a real offscreen Qt window with only the stand-in, and a use of the binding ends in a sentence.
The smoke test (tests/e2e/test_bundle_smoke.py) shows the same on the built bundle.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HOOK = Path(__file__).resolve().parents[2] / "packaging" / "pyinstaller" / "rthook_qtopengl.py"

PLOT_WITH_THE_STANDIN = """
import json, runpy, sys
runpy.run_path(sys.argv[1])
from PySide6 import QtWidgets
app = QtWidgets.QApplication([])
import pyqtgraph as pg
import PySide6.QtOpenGL as gl
from PySide6 import QtOpenGLWidgets
plot = pg.PlotWidget()
plot.plot([0.0, 1.0, 0.5, 0.8])
plot.resize(320, 200)
image = plot.grab().toImage()
out = {"module": type(gl).__name__, "widgets": QtOpenGLWidgets.QOpenGLWidget.__module__,
       "drawn": not image.isNull() and image.width() == 320, "wrapped": hasattr(gl, "__wrapped__")}
try:
    gl.QOpenGLBuffer
except ImportError as exc:
    out["error"] = str(exc)
print(json.dumps(out))
"""


def test_pyqtgraph_imports_and_draws_with_the_standin_and_any_use_of_it_says_why_it_fails() -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    res = subprocess.run([sys.executable, "-c", PLOT_WITH_THE_STANDIN, str(HOOK)], env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["module"] == "QtOpenGLStandIn", out
    assert out["widgets"] == "PySide6.QtOpenGLWidgets", out  # the real binding: pyqtgraph subclasses it
    assert out["drawn"] is True and out["wrapped"] is False, out
    error = out.get("error", "")
    assert error.startswith("PySide6.QtOpenGL.QOpenGLBuffer is not available"), out
    assert "rthook_qtopengl.py" in error and "\n" not in error, error


def test_the_standin_serves_only_its_own_name() -> None:
    check = ("import runpy, sys; runpy.run_path(sys.argv[1]); import importlib.util as u; "
             "print(u.find_spec('PySide6.QtCore').origin); print(u.find_spec('PySide6.QtOpenGL').origin)")
    res = subprocess.run([sys.executable, "-c", check, str(HOOK)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    qtcore, qtopengl = res.stdout.splitlines()
    assert qtcore.endswith(".so") and qtopengl == "voicegui bundle stand-in", res.stdout
