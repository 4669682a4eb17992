"""Read-along over the Realtime API: a Speak to the local Realtime websocket server (tests/stream/
realtime_server.py) highlights each word of the typed text where its transcript delta arrived in the audio,
on the null sink, says so in the tooltip, keeps those timings with the History entry, and a replay highlights
the same way.

Each sentence's audio is 0.9 s (nine 100 ms deltas) with a tone where each word is; the server sends each
word's text two deltas ahead of its tone, as the real service sends text ahead of audio, so the words' text
arrives at 0.0, 0.3 and 0.6 s into their sentence: where the tones start."""

from __future__ import annotations

import pytest

from tests.stream.realtime_server import FakeRealtimeServer
from tests.ui.conftest import (
    burst_pcm,
    first_marks,
    record_word_marks,
    replay_entry,
    speak_noting_the_tooltip,
    speak_sampling,
    until,
)
from tests.ui.test_main_window import use_custom
from voicegui.features.timings import FROM_TRANSCRIPT
from voicegui.features.transcript_timings import SOURCE

pytestmark = [pytest.mark.audio, pytest.mark.played_clock]  # each word's mark within 100 ms of its tone

TEXT = "Unbelievably quick fox. Four five six."  # shares of characters and syllables would put "quick" ~0.7 s
SENTENCE_S = 0.9
WORD_BURSTS = ((0.0, 0.25), (0.3, 0.55), (0.6, 0.85))  # each word's tone within its sentence
ONSETS = {"Unbelievably": 0.0, "quick": 0.3, "fox.": 0.6, "Four": 0.9, "five": 1.2, "six.": 1.5}


@pytest.fixture
async def realtime(window):
    """The window speaking to the local Realtime server (text ahead of audio by two deltas)."""
    async with FakeRealtimeServer() as rt:
        rt.audio_for = lambda _text: burst_pcm(WORD_BURSTS, SENTENCE_S)
        rt.transcript_lead = 2
        use_custom(window, rt.ws_url, rt.api_key or "")
        window.provider_panel.model.setCurrentText("gpt-realtime-2.1-mini")
        window.provider_panel.voice.setCurrentText("marin")
        window.text_edit.setPlainText(TEXT)
        yield rt
    assert rt.problems == [], rt.problems


def assert_in_step(seen: dict[str, float]) -> None:
    assert list(seen) == list(ONSETS), seen
    for word, onset in ONSETS.items():
        assert abs(seen[word] - onset) <= 0.100, (word, seen[word], onset)


async def test_words_light_up_where_their_transcript_arrived(qtbot, window, realtime):
    changes, playback, (timed, tip) = await speak_noting_the_tooltip(qtbot, window)
    assert playback.metrics is not None and playback.metrics.completed, playback.metrics
    assert realtime.connections, "the Speak went over the Realtime websocket"
    assert_in_step(first_marks(TEXT, changes))
    assert timed and FROM_TRANSCRIPT in tip

    # Kept with the History entry, labelled, and a replay follows them.
    await until(lambda: len(window.history.entries()) == 1, 5, "the history entry")
    entry_id = window.history.entries()[-1].id
    await until((window.history.root / "audio" / f"{entry_id}.timings.json").exists, 5, "the kept timings")
    kept = window.history.timings(entry_id)
    assert [(w.text, round(w.start_s, 3), w.source) for w in kept.words] == [
        (word, onset, SOURCE) for word, onset in ONSETS.items()]
    again = record_word_marks(window)
    replay = await replay_entry(window, entry_id)
    await replay.done.wait()
    assert_in_step(first_marks(TEXT, again))


async def test_a_reworded_word_is_estimated_and_the_rest_still_timed(qtbot, window, realtime):
    realtime.transcript_for = lambda text: text.replace("five", "fife")
    changes, playback = await speak_sampling(qtbot, window)
    assert playback.metrics is not None and playback.metrics.completed, playback.metrics
    seen = first_marks(TEXT, changes)
    assert list(seen) == list(ONSETS), seen
    for word in ("Unbelievably", "quick", "fox.", "Four", "six."):
        assert abs(seen[word] - ONSETS[word]) <= 0.100, (word, seen[word])
    await until(lambda: len(window.history.entries()) == 1, 5, "the history entry")
    entry_id = window.history.entries()[-1].id
    await until((window.history.root / "audio" / f"{entry_id}.timings.json").exists, 5, "the kept timings")
    kept = window.history.timings(entry_id)
    assert [w.source for w in kept.words] == [SOURCE] * 4 + ["estimated", SOURCE]
    assert kept.estimated and kept.from_transcript
