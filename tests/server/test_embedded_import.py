"""Importing voicegui.server.embedded is cheap: the window imports it on its GUI thread (for BuiltinUnavailable)
right after it is shown, and the server's own libraries, aiohttp and PyAV (~0.25 s), are imported by the
worker thread that starts the server (BuiltinServer's constructor), where they do not hold up the GUI thread."""

from __future__ import annotations

from tests.test_memory import run_python


def test_importing_the_builtin_server_module_loads_no_server_library():
    loaded = run_python("""
        import json, sys
        from voicegui.server.embedded import BuiltinServer, BuiltinUnavailable
        print(json.dumps({"loaded": sorted(m for m in ("aiohttp", "av", "voicegui.server.app") if m in sys.modules)}))
    """)["loaded"]
    assert loaded == [], f"importing voicegui.server.embedded loads {', '.join(loaded)}"


def test_the_server_loads_them_when_it_starts():
    out = run_python("""
        import json, sys
        from voicegui.server.embedded import BuiltinServer
        with BuiltinServer(lazy=True) as server:
            print(json.dumps({"loaded": sorted(m for m in ("aiohttp", "av") if m in sys.modules),
                              "voices": [v.id for v in server.voices()]}))
    """)
    assert out["loaded"] == ["aiohttp", "av"] and out["voices"]
