"""The line-up's remembered selection file: round trip per provider, bounded, and damage costs nothing more
than the damaged part."""

from __future__ import annotations

import json
import stat

from voicegui.features.lineup_selection import (
    MAX_PROVIDERS,
    MAX_VOICES,
    Selection,
    load_selection,
    save_selection,
    selection_path,
)


def test_round_trip_per_provider(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICEGUI_CONFIG_DIR", str(tmp_path))
    assert load_selection("builtin") == Selection()
    save_selection("builtin", Selection(["heart", "espeak:en-gb"], {"espeak:en-gb": "mp3"}, "en-"))
    save_selection("openai", Selection(["nova"]))
    assert selection_path() == tmp_path / "lineup-selection.json"
    assert load_selection("builtin") == Selection(["heart", "espeak:en-gb"], {"espeak:en-gb": "mp3"}, "en-")
    assert load_selection("openai").voices == ["nova"]
    assert stat.S_IMODE(selection_path().stat().st_mode) == 0o600


def test_bounded(tmp_path):
    path = tmp_path / "s.json"
    many = [f"v{i}" for i in range(MAX_VOICES + 50)]
    save_selection("p", Selection(many, {}, "x" * 5000), path)
    got = load_selection("p", path)
    assert got.voices == many[:MAX_VOICES] and len(got.filter) <= 200
    for i in range(MAX_PROVIDERS + 5):
        save_selection(f"provider{i}", Selection([f"v{i}"]), path)
    providers = json.loads(path.read_text())["providers"]
    assert len(providers) == MAX_PROVIDERS and "provider0" not in providers
    assert list(providers)[-1] == f"provider{MAX_PROVIDERS + 4}"


def test_damaged_file_is_set_aside_and_the_next_save_works(tmp_path, caplog):
    path = tmp_path / "s.json"
    path.write_text('{"providers": {"p": {"voices": ["a"')  # cut off mid-write by something else
    assert load_selection("p", path) == Selection()
    assert "moved to" in caplog.text and (tmp_path / "s.json.damaged").exists()
    save_selection("p", Selection(["b"]), path)
    assert load_selection("p", path).voices == ["b"]


def test_bad_entries_are_skipped_one_by_one(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"providers": {
        "p": {"voices": ["heart", 7, None, "", "heart", "nova"], "formats": {"heart": "mp3", "nova": "wma", "x": "pcm"},
              "filter": 3},
        "q": "not an object"}}))
    assert load_selection("p", path) == Selection(["heart", "nova"], {"heart": "mp3"}, "")
    assert load_selection("q", path) == Selection()
    path.write_text("[1, 2]")
    assert load_selection("p", path) == Selection()
