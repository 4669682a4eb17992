"""Read-along over the Realtime API: fetch_realtime against the local Realtime websocket server
(tests/stream/realtime_server.py) records where each transcript delta arrived in the audio, and
features/transcript_timings turns that into word timings of the typed text, labelled by how they are known.

The server's audio is 20 ms per character and goes out in 100 ms deltas; the transcript's words are shared one
group per audio delta, sent after it (default) or ahead of it (`transcript_lead`), so every expected position
below is arithmetic on those numbers."""

from __future__ import annotations

import pytest

from tests.stream.fetching import speech_request
from tests.stream.realtime_server import FakeRealtimeServer
from voicegui.features.transcript_timings import SOURCE, transcript_timings
from voicegui.stream.fetch import FetchMarks
from voicegui.stream.realtime import TranscriptTimeline, fetch_realtime

pytestmark = pytest.mark.timeout(30)

TEXT = "One two three four. Five six."  # 19 characters = 0.38 s, then 9 = 0.18 s of audio


@pytest.fixture
async def server():
    async with FakeRealtimeServer() as srv:
        yield srv
    assert srv.problems == [], srv.problems


async def read(srv: FakeRealtimeServer, text: str = TEXT) -> TranscriptTimeline:
    timeline = TranscriptTimeline()
    req = speech_request(srv.ws_url, text=text, model="gpt-realtime-2.1-mini", voice="marin", timeout_s=5.0)

    async def ignore(_chunk: bytes) -> None:
        return None

    await fetch_realtime(req, FetchMarks(), ignore, None, timeline)
    return timeline


def starts(timings) -> list[tuple[str, float, str]]:
    return [(w.text, round(w.start_s, 3), w.source) for w in timings.words]


async def test_the_positions_where_the_deltas_arrived_become_word_onsets(server):
    timeline = await read(server)
    assert [(r.said, round(r.start_s, 3), round(r.end_s, 3)) for r in timeline.responses] == [
        ("One two three four.", 0.0, 0.38), ("Five six.", 0.38, 0.56)]
    # Each word's delta came right after its 100 ms of audio (the last one clamped to the sentence's end).
    assert timeline.responses[0].marks == [(0, 0.1), (4, 0.2), (8, 0.3), (14, 0.38)]
    timings = transcript_timings(TEXT, timeline)
    assert timings is not None and timings.text == TEXT
    assert starts(timings) == [("One", 0.1, SOURCE), ("two", 0.2, SOURCE), ("three", 0.3, SOURCE),
                               ("four.", 0.38, SOURCE), ("Five", 0.48, SOURCE), ("six.", 0.56, SOURCE)]
    assert [(s.text, round(s.start_s, 3), round(s.end_s, 3), s.source) for s in timings.sentences] == [
        ("One two three four.", 0.0, 0.38, SOURCE), ("Five six.", 0.38, 0.56, SOURCE)]
    assert timings.from_transcript and not timings.estimated


async def test_text_sent_ahead_of_its_audio_is_timed_where_it_arrived(server):
    server.transcript_lead = 1  # each word's text one audio delta early: the real service's habit
    timings = transcript_timings(TEXT, await read(server))
    assert timings is not None
    # The second sentence's two words both came before any of its audio: that says nothing about where "six."
    # falls, so its words share its exact span by syllables, labelled estimated.
    assert starts(timings) == [("One", 0.0, SOURCE), ("two", 0.0, SOURCE), ("three", 0.1, SOURCE),
                               ("four.", 0.2, SOURCE), ("Five", 0.38, "estimated"), ("six.", 0.47, "estimated")]
    assert [s.source for s in timings.sentences] == [SOURCE, "estimated"]


async def test_a_transcript_sent_all_at_once_ahead_of_the_audio_is_labelled_estimated(server):
    server.transcript_lead = 10  # the whole transcript before the first audio: it says nothing about words
    timings = transcript_timings(TEXT, await read(server))
    assert timings is not None
    assert {w.source for w in timings.words} == {"estimated"} and timings.estimated
    assert not timings.from_transcript
    # The sentences' bounds are still the responses' audio, and the words share them by syllables.
    assert [(round(s.start_s, 3), round(s.end_s, 3)) for s in timings.sentences] == [(0.0, 0.38), (0.38, 0.56)]
    assert starts(timings)[0] == ("One", 0.0, "estimated") and starts(timings)[4] == ("Five", 0.38, "estimated")
    assert all(a.start_s < b.start_s for a, b in zip(timings.words, timings.words[1:], strict=False))


async def test_words_read_differently_keep_the_estimate(server):
    server.transcript_for = lambda text: text.replace("three", "tree")
    timings = transcript_timings(TEXT, await read(server))
    assert timings is not None
    got = starts(timings)
    assert got[:2] == [("One", 0.1, SOURCE), ("two", 0.2, SOURCE)] and got[3:] == [
        ("four.", 0.38, SOURCE), ("Five", 0.48, SOURCE), ("six.", 0.56, SOURCE)]
    word, start, source = got[2]
    assert (word, source) == ("three", "estimated") and 0.2 < start < 0.38  # between its matched neighbours
    assert timings.estimated and timings.from_transcript


@pytest.mark.parametrize("how", ["absent", "contradicting", "empty"])
async def test_a_missing_or_broken_transcript_gives_the_estimate_labelled_not_an_error(server, how):
    if how == "absent":
        server.transcript_events = False
    elif how == "contradicting":
        server.done_transcript_for = lambda text: "Something else entirely."
    else:
        server.transcript_for = lambda text: ""
    timings = transcript_timings(TEXT, await read(server))
    assert timings is not None
    assert [w.text for w in timings.words] == TEXT.split()
    assert {w.source for w in timings.words} == {"estimated"}
    assert [(round(s.start_s, 3), round(s.end_s, 3)) for s in timings.sentences] == [(0.0, 0.38), (0.38, 0.56)]


async def test_the_recorded_transcript_is_bounded(server):
    timeline = TranscriptTimeline(max_chars=25)  # room for the first sentence's transcript, not the second's
    req = speech_request(server.ws_url, text=TEXT, model="gpt-realtime-2.1-mini", voice="marin", timeout_s=5.0)

    async def ignore(_chunk: bytes) -> None:
        return None

    await fetch_realtime(req, FetchMarks(), ignore, None, timeline)
    assert timeline.cut and timeline.chars <= 25
    assert timeline.responses[0].transcript == "One two three four."
    assert timeline.responses[1].transcript == "Five " and timeline.responses[1].marks == [(0, 0.48)]
    timings = transcript_timings(TEXT, timeline)
    assert timings is not None
    assert starts(timings)[-1] == ("six.", 0.52, "estimated")  # Five and six. share 0.48..0.56 by syllables


async def test_a_long_text_keeps_one_timeline_per_piece_on_its_own_clock(server):
    """Through the whole session (real device on the null sink): each piece of a long text is its own
    fetch_realtime, so its positions start at 0, and the played clock places it at the piece's start."""
    from dataclasses import replace

    from voicegui.stream.session import SpeakOptions, SpeakSession

    first = speech_request(server.ws_url, text=TEXT, model="gpt-realtime-2.1-mini", voice="marin", timeout_s=5.0)
    second = replace(first, text="Seven eight.")
    session = SpeakSession(SpeakOptions(request=first, continuation=(second,)))
    metrics = await session.run()
    assert metrics.completed, metrics.error
    assert len(session.transcript_timelines) == 2
    one, two = (transcript_timings(r.text, t) for r, t in zip((first, second), session.transcript_timelines,
                                                               strict=True))
    assert one is not None and two is not None
    assert [round(w.start_s, 3) for w in one.words] == [0.1, 0.2, 0.3, 0.38, 0.48, 0.56]
    # 0.24 s in three deltas: no word in the first, "Seven " after the second, "eight." after the third
    assert [(w.text, round(w.start_s, 3)) for w in two.words] == [("Seven", 0.2), ("eight.", 0.24)]
    assert session.snapshot().piece_starts_s == pytest.approx((0.0, 0.56))
