"""History store (index + bounded audio cache) and the replay source that plays cached bytes back."""

from __future__ import annotations

import asyncio
import json
import wave

import numpy as np
import pytest

from voicegui.features.history import (
    HistoryEntry,
    HistoryError,
    HistoryStore,
    default_root,
    safe_base_url,
)
from voicegui.stream.fetch import FetchMarks, SpeechRequest
from voicegui.stream.metrics import SessionMetrics, TtfaMarks
from voicegui.stream.replay_source import replay_source
from voicegui.wavfile import wav_bytes

SECRET = "sk-very-secret-key"


def tone(seconds: float = 0.3, rate: int = 24000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def pcm_bytes(samples: np.ndarray) -> bytes:
    return np.round(samples * 32768).astype("<i2").tobytes()


def entry(voice: str = "heart", fmt: str = "pcm", **kw) -> HistoryEntry:
    base = dict(time=1_700_000_000.0, provider="builtin", base_url="http://127.0.0.1:1234/v1", model="builtin",
                voice=voice, format=fmt, text="Hello there.", ttfa_ms=123.4, underruns=1, duration_s=0.3,
                bytes=14400)
    base.update(kw)
    return HistoryEntry(**base)


def request(**kw) -> SpeechRequest:
    base = dict(base_url="https://user:pw@api.example.com/v1?key=abc", api_key=SECRET, model="tts-1",
                voice="alloy", text="Hello.", response_format="mp3")
    base.update(kw)
    return SpeechRequest(**base)


def test_round_trip_survives_a_restart(tmp_path):
    store = HistoryStore(tmp_path, max_bytes=10_000_000)
    audio = pcm_bytes(tone())
    eid = store.add(entry(), audio)
    second = store.add(entry(voice="espeak:en-us", error="boom"), b"")
    again = HistoryStore(tmp_path)
    got = again.entries()
    assert [e.id for e in got] == [eid, second]  # oldest first
    assert got[0].voice == "heart" and got[0].ttfa_ms == 123.4 and got[0].underruns == 1
    assert got[0].audio_bytes == len(audio) and not got[0].evicted
    assert got[1].error == "boom" and got[1].audio_bytes == 0
    assert again.original(eid) == audio
    with pytest.raises(HistoryError):
        again.original(second)  # nothing was cached for it
    assert again.total_bytes() == len(audio)


def test_entry_from_a_speak_never_carries_the_key(tmp_path):
    metrics = SessionMetrics(marks=TtfaMarks(started=1.0, first_sound=1.25), requested_format="mp3",
                             detected_format="mp3", bytes_received=999, audio_played_s=1.5, underrun_episodes=2)
    e = HistoryEntry.from_speak(request(), metrics, provider="openai", prebuffer_ms=None, max_buffer_s=10.0)
    assert e.ttfa_ms == 250.0 and e.bytes == 999 and e.duration_s == 1.5 and e.underruns == 2
    assert e.base_url == "https://api.example.com/v1"
    store = HistoryStore(tmp_path)
    # Even an entry built by hand with credentials in its URL is cleaned on the way in.
    store.add(e, b"\xff\xfb" * 10)
    # Not hex digits: an entry's id is (a random "abc" in one failed this once).
    store.add(entry(base_url="http://u:secretpw@host:8880/v1?api_key=qzx"), b"x")
    on_disk = store.index_path.read_text()
    for secret in (SECRET, "pw", "qzx", "secretpw"):
        assert secret not in on_disk
    assert "api_key" not in on_disk
    assert safe_base_url("http://[::1]:8880/v1") == "http://[::1]:8880/v1"


def test_cache_bound_evicts_the_oldest_audio(tmp_path):
    store = HistoryStore(tmp_path, max_bytes=10_000)
    ids = [store.add(entry(voice=f"v{i}"), bytes([i]) * 3000) for i in range(5)]
    assert store.total_bytes() <= 10_000
    got = {e.id: e for e in store.entries()}
    assert len(got) == 5  # the measurements stay
    assert [got[i].evicted for i in ids] == [True, True, False, False, False]
    with pytest.raises(HistoryError, match="evicted"):
        store.original(ids[0])
    assert store.original(ids[4]) == bytes([4]) * 3000
    audio_files = sorted(p.name for p in (tmp_path / "audio").iterdir())
    assert len(audio_files) == 3 and sum((tmp_path / "audio" / n).stat().st_size for n in audio_files) <= 10_000
    # Lowering the bound (a setting) evicts at once; the flags survive a restart.
    store.set_max_bytes(3000)
    assert store.total_bytes() <= 3000
    assert [e.evicted for e in HistoryStore(tmp_path).entries()] == [True, True, True, True, False]


def test_an_entry_larger_than_the_bound_keeps_no_audio(tmp_path):
    store = HistoryStore(tmp_path, max_bytes=100)
    eid = store.add(entry(), b"y" * 500)
    assert store.total_bytes() == 0 and store.get(eid).evicted


def test_save_original_and_played_wav(tmp_path):
    store = HistoryStore(tmp_path / "h")
    samples = tone(0.25)
    audio = pcm_bytes(samples)
    eid = store.add(entry(), audio)
    store.save_original(eid, tmp_path / "orig.pcm")
    assert (tmp_path / "orig.pcm").read_bytes() == audio
    store.save_played_wav(eid, tmp_path / "played.wav")
    with wave.open(str(tmp_path / "played.wav")) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 24000)
        got = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    np.testing.assert_array_equal(got, np.frombuffer(audio, dtype="<i2"))
    # A wav body decodes the same way.
    wid = store.add(entry(fmt="wav"), wav_bytes(samples, 24000))
    store.save_played_wav(wid, tmp_path / "played2.wav")
    with wave.open(str(tmp_path / "played2.wav")) as w:
        assert w.getnframes() == len(samples)


def test_delete_and_orphans(tmp_path):
    store = HistoryStore(tmp_path)
    keep = store.add(entry(), b"a" * 10)
    gone = store.add(entry(), b"b" * 10)
    store.delete(gone)
    assert [e.id for e in store.entries()] == [keep]
    assert len(list((tmp_path / "audio").iterdir())) == 1
    with pytest.raises(HistoryError):
        store.delete(gone)
    (tmp_path / "audio" / "stray.pcm").write_bytes(b"zz")  # as if a crash hit between audio and index
    assert store.delete_orphans() == 1
    assert store.original(keep) == b"a" * 10


def test_a_corrupt_index_line_costs_only_that_line(tmp_path):
    store = HistoryStore(tmp_path)
    eid = store.add(entry(), b"a")
    with store.index_path.open("a") as f:
        f.write("{not json\n")
        f.write(json.dumps(["a list"]) + "\n")
    assert [e.id for e in HistoryStore(tmp_path).entries()] == [eid]


def test_no_temporary_files_are_left_behind(tmp_path):
    store = HistoryStore(tmp_path)
    for _ in range(3):
        store.add(entry(), b"abc")
    leftovers = [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_cache_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv("VOICEGUI_CACHE_DIR", str(tmp_path))
    assert default_root() == tmp_path / "history"
    assert HistoryStore().root == tmp_path / "history"


# --- replay source ---------------------------------------------------------------------------------------

async def test_replay_source_feeds_the_bytes_and_sets_the_marks():
    data = bytes(range(256)) * 20  # 5120 bytes
    source = replay_source(data, chunk_bytes=1000)
    got: list[bytes] = []

    async def collect(chunk: bytes) -> None:
        got.append(chunk)

    marks = FetchMarks()
    n = await source(request(chunk_bytes=None), marks, collect)
    assert n == len(data) and b"".join(got) == data
    assert [len(c) for c in got] == [1000] * 5 + [120]
    assert marks.request_sent is not None and marks.headers is not None and marks.first_byte is not None
    assert marks.request_sent <= marks.headers <= marks.first_byte
    # The request's own chunk size wins (the user's --chunk-bytes knob).
    got.clear()
    await source(request(chunk_bytes=4096), FetchMarks(), collect)
    assert [len(c) for c in got] == [4096, 1024]


async def test_replay_source_can_be_cancelled():
    started = asyncio.Event()

    async def slow(chunk: bytes) -> None:
        started.set()
        await asyncio.sleep(10)

    task = asyncio.create_task(replay_source(b"x" * 10_000)(request(), FetchMarks(), slow))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.audio
async def test_replay_plays_through_the_real_session(monkeypatch):
    """The session's own path (decode -> ring -> device) with the cached bytes as its source: what is played
    equals what was cached, sample for sample. Until SpeakOptions.source exists, the source stands in for
    fetch_speech by name (the session calls that name)."""
    from voicegui.stream import session as session_mod
    from voicegui.stream.session import SpeakOptions, SpeakSession

    samples = tone(0.3)
    data = pcm_bytes(samples)
    source = replay_source(data)
    fields = {f for f in SpeakOptions.__dataclass_fields__}
    if "source" in fields:
        options = SpeakOptions(request=request(response_format="pcm"), keep_played=True, source=source)
    else:
        monkeypatch.setattr(session_mod, "fetch_speech", source)
        options = SpeakOptions(request=request(response_format="pcm"), keep_played=True)
    sess = SpeakSession(options)
    metrics = await sess.run()
    assert metrics.completed, metrics.error
    assert metrics.bytes_received == len(data) and metrics.ttfa_ms is not None
    np.testing.assert_array_equal(np.round(sess.played_audio * 32768).astype("<i2"),
                                  np.frombuffer(data, dtype="<i2"))
