"""PyInstaller runtime hook for PySide6 in place of PyInstaller's own (pyi_rth_pyside6.py): the same set-up, but
Qt is not imported until the application imports it.

PyInstaller's hook imports PySide6.QtCore in every process the bundle starts, to register an embedded qt.conf
that points Qt's prefix into the bundle. `voicegui speak`, `voicegui devices` and the other commands never use
Qt, yet each paid for loading QtCore and shiboken (~0.1 s of every launch, measured with `--help`: 0.23 s
bundled against 0.08 s from the virtual environment) and ran every later import through shiboken's import hook.
This hook sets the same environment (QT_PLUGIN_PATH, QML2_IMPORT_PATH) and checks that PySide6 is the only Qt
binding, as PyInstaller's does, and registers the qt.conf right after PySide6.QtCore is first imported (a
finder first on sys.meta_path wraps that one module's loader), before any QCoreApplication can exist. PySide6's
PyPI wheels register a qt.conf of their own when QtCore loads; PyInstaller's helper then leaves it as it is.

packaging/pyinstaller/voicegui.spec puts this directory in `hookspath`; PyInstaller takes the run-time hooks
of the first hook directory that names a module (rthooks.dat), so its own hook for PySide6 is not included.
Linux only, as the bundle is: PyInstaller's hook also sets PATH (Windows) and DYLD_LIBRARY_PATH (macOS).

Threads: the hook runs on the main thread at start-up, before any other thread exists; the qt.conf is
registered on whichever thread first imports PySide6.QtCore, under that module's import lock.
"""


def _pyi_rthook() -> None:
    import os
    import sys
    from importlib.machinery import ModuleSpec
    from types import ModuleType

    from _pyi_rth_utils import qt as qt_rth_utils

    qt_rth_utils.ensure_single_qt_bindings_package("PySide6")
    qt_path = os.path.join(sys._MEIPASS, "PySide6", "Qt")
    os.environ["QT_PLUGIN_PATH"] = os.path.join(qt_path, "plugins")
    os.environ["QML2_IMPORT_PATH"] = os.path.join(qt_path, "qml")

    class QtConfAfterLoad:
        """Loads PySide6.QtCore with the loader found for it, then registers the bundle's qt.conf."""

        def __init__(self, loader: object) -> None:
            self.loader = loader

        def create_module(self, spec: ModuleSpec) -> ModuleType | None:
            return self.loader.create_module(spec)

        def exec_module(self, module: ModuleType) -> None:
            self.loader.exec_module(module)
            qt_rth_utils.create_embedded_qt_conf("PySide6", qt_path)

    class QtCoreFinder:
        """For PySide6.QtCore only: the spec the finders after this one give, with its loader wrapped."""

        def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
            if fullname != "PySide6.QtCore":
                return None
            rest = sys.meta_path[sys.meta_path.index(self) + 1:]
            for finder in rest:
                find = getattr(finder, "find_spec", None)
                spec = find(fullname, path, target) if find is not None else None
                if spec is not None:
                    if spec.loader is not None:
                        spec.loader = QtConfAfterLoad(spec.loader)
                    sys.meta_path.remove(self)  # once is enough
                    return spec
            return None

    sys.meta_path.insert(0, QtCoreFinder())


_pyi_rthook()
del _pyi_rthook
