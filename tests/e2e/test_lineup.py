"""Line-ups with the built-in offline voices, played on the PulseAudio null sink (tests/conftest.py): the order
asked, the bytes kept equal to what the server sent, history records, presets, and `voicegui lineup`."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import shutil
import subprocess
import sys
import wave
from html.parser import HTMLParser
from pathlib import Path

import pytest

from voicegui.features.history import HistoryStore
from voicegui.features.lineup import (
    PRESETS,
    WARMUP_TEXT,
    Lineup,
    LineupEntry,
    Target,
    load_presets,
    parse_entries,
    save_presets,
)
from voicegui.stream.fetch import FetchMarks, SpeechRequest, fetch_speech

REPO = Path(__file__).resolve().parents[2]
VOICES = ("heart", "espeak:en-us", "espeak:en-gb")
TEXT = "Hello there."

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


@pytest.fixture(scope="module")
def builtin():
    from voicegui.server.embedded import BuiltinServer

    with BuiltinServer(lazy=True) as srv:
        yield srv


async def fetch_all(srv, voice: str, fmt: str) -> bytes:
    buf = bytearray()

    async def collect(chunk: bytes) -> None:
        buf.extend(chunk)

    req = SpeechRequest(base_url=srv.base_url, api_key=srv.token, model=srv.default_model, voice=voice,
                        text=TEXT, response_format=fmt)
    await fetch_speech(req, FetchMarks(), collect)
    return bytes(buf)


@needs_espeak
@pytest.mark.audio
async def test_lineup_of_three_builtin_voices(builtin, tmp_path):
    events: list[tuple[str, int]] = []
    history = HistoryStore(tmp_path / "history")
    target = Target(builtin.base_url, builtin.token, builtin.default_model, "builtin")
    entries = [LineupEntry("heart"), LineupEntry("espeak:en-us", format="mp3"), LineupEntry("espeak:en-gb")]
    lineup = Lineup(TEXT, entries, target, on_start=lambda i: events.append(("start", i)),
                    on_done=lambda i, r: events.append(("done", i)), history=history)
    first_record = len(builtin.records)
    results = await lineup.run()

    assert events == [("start", 0), ("done", 0), ("start", 1), ("done", 1), ("start", 2), ("done", 2)]
    assert [r.voice for r in results] == list(VOICES)
    for r in results:
        assert r.ok, r.error
        assert r.ttfa_ms is not None and r.duration_s > 0.2 and r.bytes > 0
        assert len(r.played) > 0.2 * r.sample_rate
        assert len(r.original) == r.bytes
    assert results[1].format == "mp3" and results[1].detected_format == "mp3"
    # Each voice was warmed by a short untimed request right before its measured one (heart's first request
    # loads its model: that must not be the TTFA a report shows); the warm-up's own first byte is kept as cold.
    records = builtin.records[first_record:]
    assert [(rec.voice, rec.input_chars) for rec in records] == [
        (v, n) for v in VOICES for n in (len(WARMUP_TEXT), len(TEXT))]
    assert all(r.cold_ttfa_ms is not None and r.cold_ttfa_ms > 0 for r in results)
    # What was kept is what the server wrote: the byte count of each measured request's record...
    records = records[1::2]
    assert [rec.voice for rec in records] == list(VOICES)
    assert [rec.bytes_sent for rec in records] == [len(r.original) for r in results]
    # ...and, for the deterministic espeak voices, the very bytes a plain fetch of the same request gets.
    assert results[1].original == await fetch_all(builtin, "espeak:en-us", "mp3")
    assert results[2].original == await fetch_all(builtin, "espeak:en-gb", "pcm")
    # Every voice is in the history with its exact bytes.
    hist = history.entries()
    assert [e.voice for e in hist] == list(VOICES)
    assert [e.id for e in hist] == [r.history_id for r in results]
    for e, r in zip(hist, results, strict=True):
        assert history.original(e.id) == r.original and e.ttfa_ms == r.ttfa_ms
        assert builtin.token not in history.index_path.read_text()


@pytest.mark.audio
async def test_stop_ends_the_lineup(builtin):
    target = Target(builtin.base_url, builtin.token, builtin.default_model, "builtin")
    started: list[int] = []
    lineup = Lineup(PRESETS["paragraph"], [LineupEntry("heart"), LineupEntry("heart")], target,
                    on_start=started.append)
    task = asyncio.create_task(lineup.run())
    while lineup.current is None or lineup.current.snapshot().frames_played == 0:
        await asyncio.sleep(0.01)
    lineup.stop()
    results = await task
    assert started == [0] and len(results) == 1
    assert results[0].metrics is not None and results[0].metrics.stopped


@pytest.mark.audio
async def test_lineup_without_warmup_measures_the_cold_request(builtin):
    """warmup=False (the CLI's --no-warmup): one request per voice, as before, and no cold figure."""
    target = Target(builtin.base_url, builtin.token, builtin.default_model, "builtin")
    first_record = len(builtin.records)
    results = await Lineup(TEXT, [LineupEntry("heart")], target, warmup=False).run()
    assert [rec.input_chars for rec in builtin.records[first_record:]] == [len(TEXT)]
    assert results[0].ok and results[0].cold_ttfa_ms is None


@pytest.fixture(scope="module")
def loud_and_quiet(tmp_path_factory):
    """A server with two voices: the same speech-like recording, one 22 dB quieter than the other."""
    import numpy as np

    from voicegui.server.benchclip import speech_like
    from voicegui.server.embedded import BuiltinServer
    from voicegui.server.engines.replay import ReplayEngine
    from voicegui.wavfile import write_wav

    d = tmp_path_factory.mktemp("loudness")
    clip = speech_like(2.0, 24000)
    clip = 0.9 * clip / np.max(np.abs(clip))
    engines = [ReplayEngine(write_wav(d / "loud.wav", clip, 24000), voices=["loud"]),
               ReplayEngine(write_wav(d / "quiet.wav", 0.08 * clip, 24000), voices=["quiet"])]
    with BuiltinServer(engines=engines) as srv:
        yield srv


@pytest.mark.audio
async def test_loudness_matched_lineup_turns_the_loud_voice_down_to_the_target(loud_and_quiet, tmp_path):
    from voicegui.features.loudness import TARGET_LUFS, measure
    from voicegui.features.report import render_html

    srv = loud_and_quiet
    target = Target(srv.base_url, srv.token, "tts-1", "builtin")
    entries = [LineupEntry("loud"), LineupEntry("quiet", format="mp3")]
    plain = await Lineup(TEXT, entries, target).run()
    matched = await Lineup(TEXT, entries, target, match_loudness=True).run()
    sent = [measure(r.played, r.sample_rate).lufs for r in plain]
    assert sent[0] > TARGET_LUFS > sent[1], "the fixture: one voice above the target, one below"
    loud, quiet = matched
    assert loud.gain_db == pytest.approx(TARGET_LUFS - sent[0], abs=0.5)
    assert measure(loud.played, loud.sample_rate).lufs == pytest.approx(TARGET_LUFS, abs=0.5)
    # the quiet one is never raised (live audio's peaks are unknown before it plays: raising could clip)
    assert quiet.gain_db == 0.0
    assert measure(quiet.played, quiet.sample_rate).lufs == pytest.approx(sent[1], abs=0.5)
    assert max(float(abs(r.played).max()) for r in matched) <= 1.0
    # the report shows each voice's loudness as sent, and the gain it was played with
    page = render_html(matched)
    assert "Gain (dB)" in page and f'data-v="{loud.gain_db}"' in page
    assert "Gain (dB)" not in render_html(plain)


@pytest.fixture
def slow_first_byte(loud_and_quiet):
    """The loud/quiet server answering only after a long first-byte delay (an engine loading its model)."""
    from voicegui.server.shaping import Shaping

    loud_and_quiet.shaping = Shaping(first_byte_delay_s=30.0)
    yield loud_and_quiet
    loud_and_quiet.shaping = Shaping()


async def until_warmup_sent(srv, first_record: int) -> None:
    while len(srv.records) == first_record:
        await asyncio.sleep(0.01)


@pytest.mark.audio
async def test_stop_during_a_slow_warmup_ends_the_lineup_at_once(slow_first_byte):
    """A cold engine can take seconds before its first byte; Stop must not wait for the warm-up to answer.
    (The 10 s guard only keeps a broken build from hanging: the warm-up alone would take 30 s.)"""
    srv = slow_first_byte
    target = Target(srv.base_url, srv.token, "tts-1", "builtin")
    lineup = Lineup(TEXT, [LineupEntry("loud"), LineupEntry("quiet")], target)
    first_record = len(srv.records)
    task = asyncio.create_task(lineup.run())
    await asyncio.wait_for(until_warmup_sent(srv, first_record), 10)
    lineup.stop()
    results = await asyncio.wait_for(task, 10)
    assert results == [] and lineup.stopped and lineup.current is None
    assert [r.input_chars for r in srv.records[first_record:]] == [len(WARMUP_TEXT)], "no voice was measured"


@pytest.mark.audio
async def test_something_else_played_during_the_warmup_ends_the_lineup(loud_and_quiet):
    """The window's Speak (or Stop) while the line-up's first voice warms up: the line-up must not then start
    that voice and silence what the user asked for."""
    from voicegui.server.shaping import Shaping
    from voicegui.stream.player import Player

    srv = loud_and_quiet
    srv.shaping = Shaping(first_byte_delay_s=1.0)
    try:
        player = Player()
        target = Target(srv.base_url, srv.token, "tts-1", "builtin")
        lineup = Lineup(TEXT, [LineupEntry("loud")], target, player=player)
        first_record = len(srv.records)
        task = asyncio.create_task(lineup.run())
        await asyncio.wait_for(until_warmup_sent(srv, first_record), 10)
        await player.stop()  # what the window's Stop (and any other start) does to the shared player
        results = await asyncio.wait_for(task, 15)
    finally:
        srv.shaping = Shaping()
    assert results == [] and lineup.stopped
    assert [r.input_chars for r in srv.records[first_record:]] == [len(WARMUP_TEXT)]
    await player.close()


def test_parse_entries_and_presets(tmp_path, monkeypatch):
    got = parse_entries("heart, espeak:en-us/mp3,af_bella(2)+af_sky(1),x/notafmt", "pcm")
    assert [(e.voice, e.format) for e in got] == [("heart", "pcm"), ("espeak:en-us", "mp3"),
                                                   ("af_bella(2)+af_sky(1)", "pcm"), ("x/notafmt", "pcm")]
    monkeypatch.setenv("VOICEGUI_CONFIG_DIR", str(tmp_path))
    assert load_presets() == PRESETS and {"pangram", "numbers", "paragraph", "question"} <= set(PRESETS)
    mine = dict(PRESETS, mine="Eins, zwei, drei.")
    assert save_presets(mine) == tmp_path / "presets.json"
    assert load_presets() == mine
    (tmp_path / "presets.json").write_text("{broken")
    assert load_presets() == PRESETS  # unreadable: the defaults, the file left for the user to repair


def lineup_cmd(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    entry = ["-m", "voicegui", "lineup"]
    env = dict(os.environ, OPENAI_API_KEY="sk-should-not-be-used")
    return subprocess.run([sys.executable, *entry, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


class AudioSources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.rows = 0

    def handle_starttag(self, tag, attrs):
        if tag == "audio":
            self.sources.append(dict(attrs)["src"])
        if tag == "tr":
            self.rows += 1


@needs_espeak
@pytest.mark.audio
def test_cli_lineup_writes_the_report(tmp_path, monkeypatch):
    from voicegui.features.votes import Vote, add_vote

    monkeypatch.setenv("VOICEGUI_CONFIG_DIR", str(tmp_path / "config"))
    add_vote(Vote("espeak:en-gb", "espeak:en-us", "1"))  # as the A/B tab's blind test keeps them
    report, table = tmp_path / "out.html", tmp_path / "out.csv"
    res = lineup_cmd("--voices", "espeak:en-us,espeak:en-gb", "--text", TEXT, "--report", str(report),
                     "--csv", str(table))
    assert res.returncode == 0, res.stderr
    assert "espeak:en-us" in res.stdout and "espeak:en-gb" in res.stdout and "Traceback" not in res.stderr
    assert "cold ms" in res.stdout.splitlines()[0] and "warm-up" in res.stdout
    page = AudioSources()
    html_text = report.read_text(encoding="utf-8")
    page.feed(html_text)
    # header + a row per voice, then per voice its timings (header + one sentence), then the votes table: header
    # + a row per voice
    assert page.rows == 1 + 2 + 2 * (1 + 1) + 1 + 2
    assert len(page.sources) == 2
    assert "espeak:en-gb preferred over espeak:en-us" in html_text and "Most consistent" in html_text
    for src in page.sources:
        with wave.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as w:
            assert w.getnframes() > 0.2 * w.getframerate()
    assert len(table.read_text().splitlines()) == 3


def test_cli_lineup_unknown_voice_fails_clearly(tmp_path):
    report = tmp_path / "out.html"
    res = lineup_cmd("--voices", "heart,hreat", "--text", TEXT, "--report", str(report))
    assert res.returncode == 1
    assert "unknown voice 'hreat'" in res.stderr and "did you mean heart" in res.stderr
    assert "Traceback" not in res.stderr
    assert not report.exists()  # nothing was spoken


def test_cli_lineup_checks_a_remote_servers_voice_list(server):
    """--base-url: the voices are checked against the server's GET /audio/voices before anything is spoken."""
    from tests.e2e.conftest import TOKEN

    res = lineup_cmd("--voices", "alloy,nosuchvoice", "--text", TEXT, "--base-url", server.base_url,
                     "--api-key", TOKEN, "--model", "tts-1")
    assert res.returncode == 1
    assert "unknown voice 'nosuchvoice'" in res.stderr and "Traceback" not in res.stderr


def test_cli_lineup_exits_1_when_a_voice_fails(tmp_path):
    """A server that is not there: no voice list to check, every voice fails with the fetch's own sentence,
    the report still lists them."""
    report = tmp_path / "out.html"
    res = lineup_cmd("--voices", "alloy,nova", "--text", TEXT, "--base-url", "http://127.0.0.1:9/v1",
                     "--api-key", "k", "--report", str(report))
    assert res.returncode == 1
    assert "alloy: Could not connect" in res.stderr and "Traceback" not in res.stderr
    assert "FAILED" in res.stdout and report.exists()


@needs_espeak
@pytest.mark.audio
async def test_builtin_voices_come_with_their_timings(builtin, tmp_path):
    """After the last voice, each built-in voice's timings are asked for as the window asks them for a Speak:
    espeak-ng's are its own word timings (none estimated), and the report shows them as such."""
    from voicegui.features.report import export_html

    text = "One, two, three. Four, five."
    target = Target(builtin.base_url, builtin.token, builtin.default_model, "builtin")
    results = await Lineup(text, [LineupEntry("espeak:en-us")], target).run()
    timings = results[0].timings
    assert results[0].ok and timings is not None
    assert [(w.text, w.source) for w in timings.words] == [(w, "engine") for w in text.split()]
    assert timings.audio_s == pytest.approx(results[0].duration_s, abs=0.05)
    page = export_html(results, tmp_path / "r.html", text=text).read_text(encoding="utf-8")
    assert "What each voice said, and when" in page and "<strong>espeak:en-us</strong>: timed by the voice" in page
    assert '<td class="meta">estimated</td>' not in page
