"""espeak-ng's word events through libespeak-ng (server/engines/espeak_events.py) and the word-level timings the
built-in server's /dev/captioned_speech gives for espeak-ng voices: the library's audio is the program's sample
for sample (so the events time the audio a Speak plays), words are the text's whitespace-separated words, and
without the library the route says so in the log and estimates, labelled estimated."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest

from voicegui.features.captioned import fetch_timings
from voicegui.server.engines import espeak as espeak_mod
from voicegui.server.engines.espeak_events import words_from_events
from voicegui.server.thread import ServerThread

TOKEN = "events-token"
LONG = ("This sentence goes on for a good while, with commas, numbers like 1,234 and 3.5, a date on 12 May 2025, "
        "and a few more words, so that it is close to the three hundred characters that the engine sends to "
        "espeak-ng in one piece before it would be cut in two.")


async def program_audio(engine: espeak_mod.EspeakEngine, text: str, voice: str, speed: float) -> np.ndarray:
    blocks = [block async for block in engine.synthesize(text, voice, speed)]
    return np.concatenate(blocks)


@pytest.mark.parametrize(("text", "voice", "speed"), [
    ("One, two, three. Four, five.", "espeak:en-us", 1.0),
    ("Schnell gesprochen: zwei Sätze. Noch einer!", "espeak:de", 1.7),
    (LONG, "espeak:en-us", 0.8),
    ("Phonemes [[h@l'oU]] and <b>markup</b> are read as the program reads them.", "espeak:en-us", 1.0),
])
def test_library_audio_is_the_programs(espeak_engine: espeak_mod.EspeakEngine, text: str, voice: str,
                                       speed: float) -> None:
    async def run() -> tuple[np.ndarray, espeak_mod.WordTimedAudio | None]:
        return await program_audio(espeak_engine, text, voice, speed), \
            await espeak_engine.synthesize_words(text, voice, speed)

    program, timed = asyncio.run(run())
    assert timed is not None
    np.testing.assert_array_equal(timed.samples, program)
    assert " ".join(w for _, _, w in timed.words) == " ".join(text.split())
    starts = [s for s, _, _ in timed.words]
    assert starts == sorted(starts) and all(0 <= s <= len(program) / 24000 for s in starts)


def test_events_become_the_texts_words() -> None:
    text = "  Hello   there 🙂 friend. 1,234 apples for a while"
    # As libespeak-ng 1.51 reports them: 1-based code points; the emoji's spoken name as two words on the space
    # after it; "1,234" as two words; "for a" as one word, and the last word said with it.
    events = [(3, 5, 0.0), (11, 5, 0.3), (17, 1, 0.48), (18, 1, 0.9), (18, 1, 1.3), (19, 6, 1.59),
              (27, 1, 2.2), (29, 3, 2.5), (33, 6, 3.1), (0, 0, 3.5), (40, 3, 3.6)]
    words = words_from_events(text, events)
    assert [(w.text, w.start_s) for w in words] == [("Hello", 0.0), ("there", 0.3), ("🙂", 0.48),
                                                   ("friend.", 1.59), ("1,234", 2.2), ("apples", 3.1),
                                                   ("for a while", 3.6)]
    assert all(text[w.char_start:w.char_end] == w.text for w in words)


def test_captioned_words_are_the_engines(espeak_engine: espeak_mod.EspeakEngine) -> None:
    text = "Hello there, this is a test.  And a second sentence follows!"
    with ServerThread(espeak_engine, token=TOKEN) as srv:
        timings = asyncio.run(fetch_timings(srv.base_url, TOKEN, "espeak-ng", "espeak:en-us", text, 1.0))
    assert [w.text for w in timings.words] == text.split()
    assert {w.source for w in (*timings.words, *timings.sentences)} == {"engine"} and not timings.estimated
    assert [s.text for s in timings.sentences] == ["Hello there, this is a test.", "And a second sentence follows!"]
    assert timings.audio_s is not None and timings.words[-1].end_s == pytest.approx(timings.audio_s, abs=1e-3)


@pytest.mark.parametrize(("library", "why"), [
    ("libespeak-ng-not-here.so.9", "libespeak-ng-not-here.so.9 could not be loaded"),
    ("libm.so.6", "libm.so.6 is not libespeak-ng (it has no espeak_Initialize)")])
def test_without_the_library_words_are_estimated_and_the_log_says_why(caplog: pytest.LogCaptureFixture,
                                                                      library: str, why: str) -> None:
    if espeak_mod.missing():
        pytest.skip(espeak_mod.missing() or "")
    engine = espeak_mod.EspeakEngine(library=library)
    text = "Hello there, this is a test."
    caplog.set_level(logging.INFO)
    with ServerThread(engine, token=TOKEN) as srv:
        for _ in range(2):
            timings = asyncio.run(fetch_timings(srv.base_url, TOKEN, "espeak-ng", "espeak:en-us", text, 1.0))
            assert timings.estimated and [w.text for w in timings.words] == text.split()
    said = [r.getMessage() for r in caplog.records if "word timings unavailable" in r.getMessage()]
    assert len(said) == 1 and why in said[0], said  # once: the library is not tried again
    assert "apt-get install espeak-ng" in said[0]


def test_a_text_that_fails_costs_only_its_own_word_timings(espeak_engine: espeak_mod.EspeakEngine,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """A helper that does not finish in time (here: no time at all) gives estimated words for that request, said
    in the log; the next request has the engine's words again."""
    from voicegui.server.engines import espeak_events

    text = "Hello there, this is a test."
    caplog.set_level(logging.INFO)
    with ServerThread(espeak_engine, token=TOKEN) as srv:
        monkeypatch.setattr(espeak_events, "TIMEOUT_S", 1e-4)
        slow = asyncio.run(fetch_timings(srv.base_url, TOKEN, "espeak-ng", "espeak:en-us", text, 1.0))
        monkeypatch.undo()
        again = asyncio.run(fetch_timings(srv.base_url, TOKEN, "espeak-ng", "espeak:en-us", text, 1.0))
    assert slow.estimated and not again.estimated
    said = [r.getMessage() for r in caplog.records if "word timings unavailable" in r.getMessage()]
    assert said == ["espeak-ng word timings unavailable for this text, words will be estimated: libespeak-ng did "
                    "not finish one sentence within 0.0001 s"]
