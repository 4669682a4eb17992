"""Timings kept in the history beside the audio (features/history.py): estimated from the cached audio on first
use and kept, a server's or engine's kept as given, gone with the audio, damage dropped; captions of any entry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import srt

from voicegui.features.history import TIMINGS_SUFFIX, HistoryEntry, HistoryError, HistoryStore
from voicegui.features.timings import Timing, Timings
from voicegui.wavfile import wav_bytes

SR = 24000
TEXT = "One. Two. Three."


def words_audio(n: int) -> bytes:
    """n tones of 0.3 s, each after 0.2 s of silence: a WAV whose word onsets are known."""
    tone = (0.3 * np.sin(np.arange(int(0.3 * SR)) * 0.05)).astype(np.float32)
    gap = np.zeros(int(0.2 * SR), dtype=np.float32)
    return wav_bytes(np.concatenate([np.concatenate([gap, tone]) for _ in range(n)]), SR)


def add(store: HistoryStore, text: str = TEXT) -> str:
    entry = HistoryEntry(time=1.0, provider="builtin", base_url="http://127.0.0.1:1/v1", model="m", voice="v",
                         format="wav", text=text, detected_format="wav")
    return store.add(entry, words_audio(len(text.split())))


def test_estimated_from_the_audio_and_kept(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    eid = add(store)
    t = store.timings(eid)
    assert [w.text for w in t.words] == ["One.", "Two.", "Three."] and t.estimated
    assert [w.start_s for w in t.words] == pytest.approx([0.2, 0.7, 1.2], abs=0.011)
    kept = tmp_path / "audio" / f"{eid}{TIMINGS_SUFFIX}"
    assert kept.is_file()
    assert HistoryStore(tmp_path).timings(eid) == t  # another window reads the same


def test_given_timings_win_over_an_estimate(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    eid = add(store)
    w = [Timing(0.25, 0.5, 0, 4, "One.", "server"), Timing(0.75, 1.0, 5, 9, "Two.", "server"),
         Timing(1.25, 1.5, 10, 16, "Three.", "server")]
    given = Timings(TEXT, tuple(w), tuple(w))
    store.save_timings(eid, given)
    assert store.timings(eid) == given
    subs = list(srt.parse(store.save_captions(eid, tmp_path / "out.srt").read_text(encoding="utf-8")))
    assert [s.content for s in subs] == ["One.", "Two.", "Three."]  # not estimated: no note cue
    with pytest.raises(HistoryError, match="another text"):
        store.save_timings(eid, Timings("Other.", (), ()))


def test_timings_go_with_the_audio(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path, max_bytes=10_000_000)
    first, second = add(store), add(store)
    store.timings(first), store.timings(second)
    store.delete(first)
    assert not (tmp_path / "audio" / f"{first}{TIMINGS_SUFFIX}").exists()
    store.set_max_bytes(0)  # evicts the audio of the rest
    assert not (tmp_path / "audio" / f"{second}{TIMINGS_SUFFIX}").exists()
    with pytest.raises(HistoryError, match="evicted"):
        store.timings(second)
    assert store.delete_orphans() == 0


def test_damaged_timings_are_made_again(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    eid = add(store)
    path = tmp_path / "audio" / f"{eid}{TIMINGS_SUFFIX}"
    path.write_text('{"version": 1, "text": "One. Two. Three.", "words": [[5, 1, 0, 4, "x", "server"]]}')
    t = store.timings(eid)
    assert t.estimated and len(t.words) == 3
    assert Timings.from_json(json.loads(path.read_text())) == t


def test_orphan_timings_are_removed(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    eid = add(store)
    store.timings(eid)
    (tmp_path / "audio" / f"9{TIMINGS_SUFFIX}").write_text("{}")
    assert store.delete_orphans() == 1
    assert (tmp_path / "audio" / f"{eid}{TIMINGS_SUFFIX}").exists()
