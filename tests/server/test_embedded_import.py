"""Importing voicegui.server.embedded is cheap: the window imports it on its GUI thread (for BuiltinUnavailable)
right after it is shown, and the server's own library, aiohttp (~0.2 s), is imported by the worker thread that
starts the server (BuiltinServer's constructor), where it does not hold up the GUI thread. PyAV is imported by the
first response in a compressed format, on the server's thread."""

from __future__ import annotations

import pytest

from tests.test_memory import run_python
from voicegui.server.engines import hibari


def test_importing_the_builtin_server_module_loads_no_server_library():
    loaded = run_python("""
        import json, sys
        from voicegui.server.embedded import BuiltinServer, BuiltinUnavailable
        print(json.dumps({"loaded": sorted(m for m in ("aiohttp", "av", "voicegui.server.app") if m in sys.modules)}))
    """)["loaded"]
    assert loaded == [], f"importing voicegui.server.embedded loads {', '.join(loaded)}"


def test_the_server_loads_aiohttp_when_it_starts_and_pyav_at_the_first_compressed_format():
    """pcm (the default format) needs no encoder: a server that has only sent pcm and wav in the default voice
    (hibari speaks at 24 kHz: nothing to resample) has not mapped FFmpeg's libraries (~14 MB resident, issue 17);
    the first mp3 loads PyAV."""
    if hibari.missing():
        pytest.skip(hibari.missing())
    out = run_python("""
        import json, sys, urllib.request
        from voicegui.server.embedded import BuiltinServer
        from voicegui.server.engines.hibari import HibariEngine

        def speak(server, fmt):
            request = urllib.request.Request(server.base_url + "/audio/speech", method="POST",
                headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
                data=json.dumps({"model": server.models()[0], "voice": server.voices()[0].id, "input": "Hello there.",
                                 "response_format": fmt}).encode())
            with urllib.request.urlopen(request, timeout=60) as response:
                return len(response.read())

        loaded = {}
        with BuiltinServer(engines=[HibariEngine(warm=False)]) as server:
            loaded["started"] = sorted(m for m in ("aiohttp", "av") if m in sys.modules)
            sizes = [speak(server, "pcm"), speak(server, "wav")]
            loaded["pcm"] = sorted(m for m in ("aiohttp", "av") if m in sys.modules)
            sizes.append(speak(server, "mp3"))
            loaded["mp3"] = sorted(m for m in ("aiohttp", "av") if m in sys.modules)
        print(json.dumps({"loaded": loaded, "sizes": sizes}))
    """)
    assert out["loaded"] == {"started": ["aiohttp"], "pcm": ["aiohttp"], "mp3": ["aiohttp", "av"]}
    assert all(size > 1000 for size in out["sizes"]), out["sizes"]
