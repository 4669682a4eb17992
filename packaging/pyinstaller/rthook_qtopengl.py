"""PyInstaller runtime hook: answer `import PySide6.QtOpenGL` with a stand-in, since the bundle leaves the binding out.

PySide6's QtOpenGL binding is 8.9 MB. pyqtgraph imports it when it is itself imported (Qt/OpenGLHelpers.py,
graphicsItems/PlotCurveItem.py and PColorMeshItem.py call importlib.import_module on it at module level) but
uses it only to draw through OpenGL (its useOpenGL option, or a PColorMeshItem on an OpenGL view), which
voicegui never turns on. voicegui.spec excludes the binding; this hook, which runs before any application code,
puts a finder first on sys.meta_path that serves the stand-in for that one name. The import then succeeds, and
any use of one of its classes raises ImportError with a sentence naming what is missing and why, never a wrong
answer: names with a leading underscore (protocol and introspection lookups such as hasattr(module,
"__wrapped__")) raise AttributeError as on any module. QtOpenGLWidgets (130 kB) is the real one: it loads
without the QtOpenGL binding, and pyqtgraph subclasses its QOpenGLWidget at import.

Threads: runs once on the main thread at start-up, before any other thread exists; the stand-in is made on
whichever thread first imports PySide6.QtOpenGL, under the import lock.
"""

import sys
import types
from importlib.machinery import ModuleSpec

STANDIN_MODULE = "PySide6.QtOpenGL"
LEFT_OUT = ("{name} is not available: this voicegui bundle leaves out PySide6's QtOpenGL binding, because "
            "voicegui never draws through OpenGL (see packaging/pyinstaller/rthook_qtopengl.py); run voicegui "
            "from a Python environment with PySide6 installed to use it")


class QtOpenGLStandIn(types.ModuleType):
    """PySide6.QtOpenGL in the bundle: importable, and loud about any use."""

    def __getattr__(self, name: str) -> object:
        if name.startswith("_"):
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        raise ImportError(LEFT_OUT.format(name=f"{self.__name__}.{name}"), name=self.__name__)


class QtOpenGLStandInFinder:
    """A meta path finder and loader for STANDIN_MODULE only (every other name goes on down sys.meta_path)."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        if fullname != STANDIN_MODULE:
            return None
        return ModuleSpec(fullname, self, origin="voicegui bundle stand-in")

    def create_module(self, spec: ModuleSpec) -> types.ModuleType:
        return QtOpenGLStandIn(spec.name, "Stand-in for PySide6.QtOpenGL, which this voicegui bundle leaves out.")

    def exec_module(self, module: types.ModuleType) -> None:
        return None


sys.meta_path.insert(0, QtOpenGLStandInFinder())
