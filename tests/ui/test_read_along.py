"""Read-along in the window: the word being heard is highlighted in step with what the device played.

A real offscreen window speaks through a built-in server with the real espeak-ng voice onto the PulseAudio null
sink. The truth is measured on the samples played: the response body the history kept (pcm, exactly the samples
handed to the device), where each word of "One. Two. Three." starts after a pause. Each change of the
window's word mark is recorded with the played clock it was decided on; each word's mark must begin within
100 ms of its sound, also when the stream arrives at half real time and the device underruns, and on a replay.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator

import numpy as np
import pytest

from tests.ui.conftest import (
    close_window,
    first_marks,
    open_window,
    record_word_marks,
    replay_entry,
    speak_sampling,
    until,
)

pytestmark = [pytest.mark.audio, pytest.mark.played_clock,  # each word's mark within 100 ms of its sound
              pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")]

TEXT = "One. Two. Three."
SR = 24000


@pytest.fixture(scope="module")
def espeak_server() -> Iterator:
    from voicegui.server.embedded import BuiltinServer
    from voicegui.server.engines.espeak import EspeakEngine

    with BuiltinServer(engines=[EspeakEngine()]) as srv:
        yield srv


def sound_onsets(samples: np.ndarray, quiet_s: float = 0.08) -> list[float]:
    loud = np.flatnonzero(np.abs(samples) > 0.02)
    return [loud[0] / SR] + [b / SR for a, b in zip(loud, loud[1:], strict=False) if b - a > quiet_s * SR]


def highlight_onsets(samples) -> dict[str, float]:
    """The played clock at which each word's highlight was first seen."""
    return first_marks(TEXT, samples)


async def played_truth(window) -> list[float]:
    await until(lambda: len(window.history.entries()) >= 1, 5, "the history entry")
    entry = window.history.entries()[-1]
    assert entry.format == "pcm" and entry.text == TEXT
    body = window.history.original(entry.id)
    onsets = sound_onsets(np.frombuffer(body, dtype="<i2").astype(np.float32) / 32768)
    assert len(onsets) == 3, onsets
    return onsets


async def test_words_light_up_as_they_are_heard(qtbot, espeak_server, artifacts_dir):
    window = await open_window(espeak_server, text=TEXT)
    assert window.provider_panel.voice_id().startswith("espeak:")
    shot = artifacts_dir / "read-along.png"
    shot.unlink(missing_ok=True)
    timed_on_two = []

    def screenshot_on_two(sample) -> None:
        span = sample[1]
        if span is not None and TEXT[span[0]:span[1]] == "Two." and not shot.exists():
            window.grab().save(str(shot))
            timed_on_two.append((window.text_panel.progress.timed, window.text_panel.progress.toolTip()))

    samples, playback = await speak_sampling(qtbot, window, screenshot_on_two)
    assert playback.metrics is not None and playback.metrics.completed
    assert shot.exists()
    truth = await played_truth(window)
    seen = highlight_onsets(samples)
    assert list(seen) == ["One.", "Two.", "Three."], seen
    for word, onset in zip(seen, truth, strict=True):
        assert abs(seen[word] - onset) <= 0.100, (seen, truth)
    timed, tip = timed_on_two[0]
    assert timed and "espeak-ng's own word starts" in tip  # the engine's word timings, and it says so
    await until(lambda: window.text_panel.highlighted_word is None and window.text_edit.extraSelections() == [],
                2, "the marks to go at the end")
    assert not window.text_panel.progress.timed and "estimated" in window.text_panel.progress.toolTip()


async def test_an_underrun_keeps_the_highlight_in_step(qtbot, espeak_server):
    window = await open_window(espeak_server, text=TEXT)
    window.network.throughput_x.setValue(0.5)  # audio arrives at half real time: it must stutter
    window.tuning.set_prebuffer(100)
    try:
        samples, playback = await speak_sampling(qtbot, window)
    finally:
        window.network.throughput_x.setValue(0)
    m = playback.metrics
    assert m is not None and m.completed and m.underrun_episodes >= 1, m
    truth = await played_truth(window)
    seen = highlight_onsets(samples)
    assert list(seen) == ["One.", "Two.", "Three."], seen
    for word, onset in zip(seen, truth, strict=True):
        assert abs(seen[word] - onset) <= 0.100, (seen, truth)


async def test_a_replay_from_history_highlights_again(qtbot, espeak_server):
    window = await open_window(espeak_server, text=TEXT)
    _, playback = await speak_sampling(qtbot, window)
    assert playback.metrics is not None and playback.metrics.completed
    truth = await played_truth(window)
    entry_id = window.history.entries()[-1].id
    changes = record_word_marks(window)
    replay = await replay_entry(window, entry_id)
    timed = []
    while not replay.done.is_set():
        timed.append(window.text_panel.progress.timed)
        await asyncio.sleep(0.01)
    seen = highlight_onsets(changes)
    assert list(seen) == ["One.", "Two.", "Three."], seen
    for word, onset in zip(seen, truth, strict=True):
        assert abs(seen[word] - onset) <= 0.100, (seen, truth)
    assert any(timed)  # the entry's timings, not shares of characters
    assert window.history.timings(entry_id).words[1].text == "Two."  # kept beside the audio


@pytest.mark.parametrize("refreshed", [True, False], ids=["after-a-refresh", "before-the-next-refresh"])
async def test_a_window_closed_as_the_speak_ends_still_keeps_its_timings(qtbot, espeak_server, refreshed):
    # The timings are kept once the history has recorded the Speak (a poll, then a write in a worker thread): a
    # close right at the end of the Speak waited for the history's write, but not for that one; and when the
    # progress line had not refreshed since the end (every 50 ms), keeping them had not even begun.
    window = await open_window(espeak_server, text="Hello there, reader. This is the second sentence.")
    progress = window.text_panel.progress

    def hold_refresh(sample) -> None:
        if not refreshed and progress.timed:  # its timings are in: no refresh sees the Speak end
            progress.timer.stop()

    _, playback = await speak_sampling(qtbot, window, on_sample=hold_refresh)
    assert refreshed or not progress.timer.isActive()
    assert playback.metrics is not None and playback.metrics.completed
    await close_window(window)
    entries = window.history.entries()
    assert len(entries) == 1
    assert (window.history.root / "audio" / f"{entries[-1].id}.timings.json").exists()
    assert [s.text for s in window.history.timings(entries[-1].id).sentences] == ["Hello there, reader.",
                                                                                  "This is the second sentence."]


async def test_the_timings_shown_are_kept_with_the_history_entry(qtbot, espeak_server):
    text = "Hello there, reader. This is the second sentence."
    window = await open_window(espeak_server, text=text)
    _, playback = await speak_sampling(qtbot, window)
    assert playback.metrics is not None and playback.metrics.completed
    await until(lambda: len(window.history.entries()) == 1, 5, "the history entry")
    entry_id = window.history.entries()[-1].id
    path = window.history.root / "audio" / f"{entry_id}.timings.json"
    await until(path.exists, 5, "the timings beside the audio")
    kept = window.history.timings(entry_id)
    # the engine's sentence bounds, as shown while it played (not re-estimated from the audio)
    assert [(s.text, s.source) for s in kept.sentences] == [("Hello there, reader.", "engine"),
                                                            ("This is the second sentence.", "engine")]
