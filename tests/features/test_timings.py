"""Timings estimated from the audio (features/timings.py): real speech from the built-in engines, aligned by its
pauses, lands each word within 100 ms of where the engine's own sentence blocks say it starts; the JSON kept in
the history round-trips and refuses damage."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from voicegui.features.timings import Timing, Timings, estimate, sentence_spans, syllables, voiced_segments
from voicegui.server.engines import espeak as espeak_mod, hibari as hibari_mod

SR = 24000
TOLERANCE_S = 0.100


@pytest.fixture(scope="module", params=["espeak", "hibari"])
def engine_voice(request: pytest.FixtureRequest) -> Any:
    mod, voice = {"espeak": (espeak_mod, "espeak:en-us"), "hibari": (hibari_mod, "heart")}[request.param]
    hint = mod.missing()
    if hint:
        pytest.skip(hint)
    engine = espeak_mod.EspeakEngine() if mod is espeak_mod else hibari_mod.HibariEngine(warm=True, seed=0)
    yield engine, voice
    close = getattr(engine, "close", None)
    if close is not None:
        close()


def speak(engine: Any, voice: str, text: str) -> list[np.ndarray]:
    async def run() -> list[np.ndarray]:
        return [np.asarray(b, dtype=np.float32) async for b in engine.synthesize(text, voice, 1.0)]
    return asyncio.run(run())


def block_onsets(blocks: list[np.ndarray]) -> list[float]:
    """Where each sentence's sound starts: the engine yields one block per sentence, so this is the truth."""
    out, offset = [], 0
    for b in blocks:
        loud = np.flatnonzero(np.abs(b) > 0.02)
        out.append((offset + int(loud[0])) / SR)
        offset += len(b)
    return out


def test_one_word_sentences_land_on_their_audio_onsets(engine_voice: Any) -> None:
    engine, voice = engine_voice
    text = "One. Two. Three."
    blocks = speak(engine, voice, text)
    assert len(blocks) == 3
    t = estimate(text, np.concatenate(blocks), SR)
    assert [w.text for w in t.words] == ["One.", "Two.", "Three."]
    for word, truth in zip(t.words, block_onsets(blocks), strict=True):
        assert abs(word.start_s - truth) <= TOLERANCE_S, (word, truth)
    assert all(w.source == "estimated" for w in t.words) and t.estimated


def test_sentences_of_several_words_land_on_their_onsets(engine_voice: Any) -> None:
    engine, voice = engine_voice
    text = "Hello there, this is a test of reading along. Goodbye for now. See you."
    blocks = speak(engine, voice, text)
    t = estimate(text, np.concatenate(blocks), SR)
    assert [s.text for s in t.sentences] == ["Hello there, this is a test of reading along.", "Goodbye for now.",
                                            "See you."]
    for sentence, truth in zip(t.sentences, block_onsets(blocks), strict=True):
        assert abs(sentence.start_s - truth) <= TOLERANCE_S, (sentence, truth)
    starts = [w.start_s for w in t.words]
    assert starts == sorted(starts) and all(w.end_s >= w.start_s for w in t.words)


def test_pauses_are_found_and_short_stops_are_not() -> None:
    tone = (0.3 * np.sin(np.arange(int(0.4 * SR)) * 0.05)).astype(np.float32)
    stop = np.zeros(int(0.03 * SR), dtype=np.float32)  # a plosive's closure: inside a word
    pause = np.zeros(int(0.25 * SR), dtype=np.float32)
    audio = np.concatenate([pause, tone, stop, tone, pause, tone])
    segments = voiced_segments(audio, SR)
    assert len(segments) == 2
    assert segments[0][0] == pytest.approx(0.25, abs=0.011)
    assert segments[1][0] == pytest.approx(0.25 + 0.83 + 0.25, abs=0.011)


def test_silence_and_empty_text() -> None:
    assert estimate("", np.zeros(SR, dtype=np.float32), SR).words == ()
    t = estimate("Just words.", np.zeros(SR, dtype=np.float32), SR)  # no sound at all: spread over the length
    assert [w.text for w in t.words] == ["Just", "words."] and t.words[-1].end_s == pytest.approx(1.0)


def test_sentence_spans_and_syllables() -> None:
    text = "  First one.  Second,   two!\nThird"
    assert [text[a:b] for a, b in sentence_spans(text)] == ["First one.", "Second,   two!", "Third"]
    assert [syllables(w) for w in ("a", "cat", "reading", "make", "1999", "—")] == [1, 1, 2, 1, 4, 0]


def test_json_round_trip_and_damage() -> None:
    w = Timing(0.0, 0.5, 0, 4, "One.", "engine")
    t = Timings("One.", (w,), (w,))
    assert Timings.from_json(t.to_json()) == t
    assert not t.estimated
    bad: list[Any] = [None, {"version": 2}, {"version": 1, "text": 3},
                      {"version": 1, "text": "One.", "words": [[0, 1, 0, 9, "One.", "engine"]], "sentences": []},
                      {"version": 1, "text": "One.", "words": [[1, 0, 0, 4, "One.", "engine"]], "sentences": []},
                      {"version": 1, "text": "One.", "words": [[0, 1, 0, 4, "One.", "guess"]], "sentences": []},
                      {"version": 1, "text": "One.", "words": [[float("nan"), 1, 0, 4, "One.", "engine"]],
                       "sentences": []}]
    for data in bad:
        with pytest.raises(ValueError):
            Timings.from_json(data)


def test_word_at_follows_the_clock() -> None:
    a, b = Timing(0.1, 0.4, 0, 3, "One", "estimated"), Timing(0.6, 0.9, 4, 7, "two", "estimated")
    t = Timings("One two", (a, b), ())
    assert [t.word_at(s) for s in (0.0, 0.2, 0.5, 0.7, 5.0)] == [None, a, a, b, b]
    moved = t.shifted(1.0, 10, "0123456789One two")
    assert moved.words[0] == Timing(1.1, 1.4, 10, 13, "One", "estimated")
