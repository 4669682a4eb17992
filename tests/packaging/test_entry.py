"""The bundle's entry script (packaging/pyinstaller/voicegui_entry.py) runs libespeak-ng's word-events helper
when given the argument espeak_events.helper_command passes (the bundle has no Python to run it as a script);
the script spells the argument out to import nothing before it, so the two must stay the same."""

from __future__ import annotations

from pathlib import Path

from voicegui.server.engines import espeak_events

ENTRY = Path(__file__).resolve().parents[2] / "packaging" / "pyinstaller" / "voicegui_entry.py"


def test_the_entry_script_runs_the_helper_on_the_argument_the_engine_passes(monkeypatch):
    assert f'sys.argv[1:] == ["{espeak_events.HELPER_ARG}"]' in ENTRY.read_text(encoding="utf-8")
    monkeypatch.setattr(espeak_events.sys, "frozen", True, raising=False)
    assert espeak_events.helper_command() == [espeak_events.sys.executable, espeak_events.HELPER_ARG]
