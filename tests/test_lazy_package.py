"""voicegui/lazy_package.py: what the import finders share (the finders themselves are tested beside their
packages: tests/stream/test_sdk_import.py, tests/ui/test_pyqtgraph_import.py, tests/test_aiohttp_import.py)."""

from __future__ import annotations

import ast
import sys

import pytest

from voicegui.lazy_package import global_names, package_source, resolver


def test_global_names_are_what_a_function_reads_from_its_module():
    tree = ast.parse("""
def f(a, *rest, key=None, **more):
    global counter
    import os.path
    from x import y as z
    b = a + len(rest)
    counter = b
    try:
        ViewBox.quit()
    except NameError as exc:
        print(exc, z, os)
    return [c for c in more if c] + [lambda q: q + outer]
""")
    function = tree.body[0]
    assert isinstance(function, ast.FunctionDef)
    assert global_names(function) == {"counter", "len", "ViewBox", "NameError", "print", "outer"}


def test_package_source_is_a_package_with_its_init_parsed_and_nothing_else(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("from .a import B\n")
    (tmp_path / "mod.py").write_text("X = 1\n")
    (tmp_path / "data").mkdir()  # a directory without __init__.py: a namespace package to Python
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "__init__.py").write_text("def (:\n")
    found = package_source("pkg", [str(tmp_path)])
    assert found is not None
    spec, origin, tree = found
    assert origin == spec.origin == str(tmp_path / "pkg" / "__init__.py")
    assert isinstance(tree.body[0], ast.ImportFrom) and tree.body[0].module == "a"
    for not_a_package_with_source in ("mod", "data", "broken", "absent"):
        assert package_source(not_a_package_with_source, [str(tmp_path)]) is None


def test_resolver_imports_a_name_once_and_asks_the_fallback_for_the_rest(tmp_path, monkeypatch):
    (tmp_path / "lazypkg_t").mkdir()
    (tmp_path / "lazypkg_t" / "__init__.py").write_text("")
    (tmp_path / "lazypkg_t" / "a.py").write_text("class B:\n    pass\n")
    (tmp_path / "lazypkg_t" / "c.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    import lazypkg_t  # type: ignore[import-not-found]

    asked: list[str] = []

    def fallback(name: str) -> object:
        asked.append(name)
        if name == "Worker":
            return None
        raise AttributeError(name)

    try:
        lazypkg_t.__getattr__ = resolver("lazypkg_t", {"B": ("a", "B"), "c": (None, "c")}, fallback)
        assert "lazypkg_t.a" not in sys.modules
        assert lazypkg_t.B is sys.modules["lazypkg_t.a"].B
        assert vars(lazypkg_t)["B"] is lazypkg_t.B  # kept: the next lookup does not ask again
        assert lazypkg_t.c is sys.modules["lazypkg_t.c"]
        assert lazypkg_t.Worker is None and asked == ["Worker"]
        with pytest.raises(AttributeError):
            lazypkg_t.Missing  # noqa: B018
        without = resolver("lazypkg_t", {})
        with pytest.raises(AttributeError, match="lazypkg_t.*Missing"):
            without("Missing")
    finally:
        for name in [m for m in sys.modules if m == "lazypkg_t" or m.startswith("lazypkg_t.")]:
            del sys.modules[name]
