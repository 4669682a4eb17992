"""voicegui.stream.sdk_import against the installed openai SDK: the lazily loaded `types` packages give every
name a plain import gives, the same objects, and the SDK's import loads far fewer type modules."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from voicegui.stream import sdk_import

# Every name of every openai.types package, as a plain import (no voicegui) makes them, and the modules loaded.
PLAIN = """
import json, pkgutil, importlib, sys
import openai, openai.types
def public(module):
    return sorted(n for n in vars(module) if not n.startswith("__") and n != "annotations")  # (__future__)
names = {"openai.types": public(openai.types)}
for info in pkgutil.walk_packages(openai.types.__path__, "openai.types."):
    if info.ispkg:  # read before its own subpackages are walked (each would become an attribute of it)
        names[info.name] = public(importlib.import_module(info.name))
print(json.dumps(names))
"""

LAZY = """
import json, sys, importlib
import voicegui.stream
import openai
client = openai.AsyncOpenAI(api_key="x", base_url="http://127.0.0.1:9/v1")
client.audio.speech.with_streaming_response  # what a Speak builds
before = sorted(m for m in sys.modules if m.startswith("openai.types"))
plain = json.loads(sys.stdin.read())
missing, lazy = [], []
for package, names in plain.items():
    module = importlib.import_module(package)
    lazy.append(package) if "__getattr__" in vars(module) else None
    missing += [f"{package}.{n}" for n in names if not hasattr(module, n)]
print(json.dumps({"before": before, "missing": missing, "lazy": lazy, "packages": sorted(plain)}))
"""


def _run(code: str, stdin: str = "") -> str:
    done = subprocess.run([sys.executable, "-c", code], input=stdin, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def lazy_report() -> dict:
    plain = _run(PLAIN)
    return json.loads(_run(LAZY, plain)) | {"plain": json.loads(plain)}


def test_every_name_of_every_types_package_is_there(lazy_report):
    assert len(lazy_report["packages"]) > 20  # the walk found the SDK's packages
    assert lazy_report["missing"] == []


def test_no_types_package_is_loaded_the_slow_way(lazy_report):
    """A newer SDK that puts code in a types __init__ would still work (loaded as usual), but slower: fail here."""
    assert lazy_report["lazy"] == lazy_report["packages"]


def test_a_speak_loads_a_fraction_of_the_type_modules(lazy_report):
    all_modules = sum(len(names) for names in lazy_report["plain"].values())
    assert len(lazy_report["before"]) * 3 < all_modules, lazy_report["before"]


def test_names_resolve_to_the_same_objects_as_their_modules():
    sdk_import.install()
    import openai.types
    import openai.types.audio.speech_model as speech_model
    from openai.types import audio

    assert audio.SpeechModel is speech_model.SpeechModel
    assert "SpeechModel" in dir(audio)
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = openai.types.no_such_name


def test_exported_names_refuses_code_it_would_not_run():
    assert sdk_import.exported_names(ast.parse("from .a import B as B\nfrom . import c\n")) == {"B": ("a", "B"),
                                                                                    "c": (None, "c")}
    assert sdk_import.exported_names(ast.parse("from .a import B\nX = 1\n")) is None
    assert sdk_import.exported_names(ast.parse("from .a import *\n")) is None
    assert sdk_import.exported_names(ast.parse("import os\n")) is None


def test_the_finder_takes_only_packages_it_can_load_lazily(tmp_path, monkeypatch):
    """What it does not load lazily it leaves to the finders after it (returns None): never a spec of its own,
    which in a one-folder app would turn a data directory named like the package into a namespace package."""
    root = tmp_path / "sdkish"
    (root / "types" / "plain").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "types" / "__init__.py").write_text("from .thing import Thing as Thing\n")
    (root / "types" / "thing.py").write_text("class Thing:\n    pass\n")
    (root / "types" / "coded").mkdir()
    (root / "types" / "coded" / "__init__.py").write_text("from .x import Y as Y\nZ = 1\n")
    (root / "types" / "coded" / "x.py").write_text("Y = 2\n")
    finder = sdk_import.LazyTypesFinder("sdkish.types")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    for name in ("sdkish", "sdkish.types", "sdkish.types.thing", "sdkish.types.plain", "sdkish.types.coded",
                 "sdkish.types.coded.x"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import sdkish.types  # type: ignore[import-not-found]

    assert "__getattr__" in vars(sdkish.types) and "sdkish.types.thing" not in sys.modules  # loaded lazily
    assert sdkish.types.Thing.__module__ == "sdkish.types.thing"
    sub = [str(root / "types")]
    assert finder.find_spec("sdkish.types.plain", sub) is None  # a directory without __init__.py
    assert finder.find_spec("sdkish.types.coded", sub) is None  # code in its __init__
    assert finder.find_spec("sdkish.types.thing", sub) is None  # a module, not a package
    import sdkish.types.coded  # type: ignore[import-not-found]
    import sdkish.types.plain  # type: ignore[import-not-found]

    assert sdkish.types.coded.Z == 1 and sdkish.types.plain.__file__ is None  # as Python loads them


SKIPPED_TRANSPORT = """
import json, sys
import voicegui.stream
import openai
client = openai.AsyncOpenAI(api_key="x", base_url="http://127.0.0.1:9/v1")
client.audio.speech.with_streaming_response
try:
    openai.DefaultAioHttpClient()
    refused = ""
except RuntimeError as exc:
    refused = str(exc)
print(json.dumps({"aiohttp": sorted(m for m in sys.modules if m.split(".")[0] == "aiohttp"),
                  "vendored": "openai._vendor.httpx_aiohttp" in sys.modules, "refused": refused}))
"""


def test_the_sdk_does_not_import_its_aiohttp_transport():
    # The SDK builds on httpx2 for us; its vendored aiohttp transport (and aiohttp's TLS contexts) is not imported.
    report = json.loads(_run(SKIPPED_TRANSPORT))
    assert report["aiohttp"] == [] and report["vendored"] is False
    assert "aiohttp" in report["refused"]  # the SDK's own message for a missing optional dependency


def test_the_skip_finder_refuses_only_what_it_skips():
    finder = sdk_import.SkippedModuleFinder(("pkg_skipped",))
    with pytest.raises(ImportError, match="pkg_skipped.sub is not used"):
        finder.find_spec("pkg_skipped.sub", None)
    assert finder.find_spec("pkg_skipped_other", None) is None
    assert finder.find_spec("json", None) is None


LIB = """
import json, sys
import voicegui.stream
import openai
at_import = sorted(m for m in sys.modules if m.startswith("openai.lib._parsing"))
from openai.lib import pydantic_function_tool, type_to_response_format_param
from openai.lib._parsing import type_to_response_format_param as direct
from openai.lib._tools import pydantic_function_tool as direct_tool
print(json.dumps({"at_import": at_import, "lazy": "__getattr__" in vars(sys.modules["openai.lib"]),
                  "same": type_to_response_format_param is direct and pydantic_function_tool is direct_tool}))
"""


def test_openai_lib_loads_its_structured_output_helpers_when_asked():
    # `import openai` imports openai.lib (for its client's auth helper); the helpers its __init__ names wait.
    assert json.loads(_run(LIB)) == {"at_import": [], "lazy": True, "same": True}
