"""The history store against damage and attacks: corrupt index lines, planted ids, two processes writing at
once, a full disk. Real files, real second processes; the only stand-in is the full disk (ENOSPC raised by
the store's atomic_write: a full disk cannot be made reliably on these machines)."""

from __future__ import annotations

import dataclasses
import errno
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from voicegui.features import history as history_mod
from voicegui.features.history import HistoryEntry, HistoryError, HistoryStore, history_hook

GOOD = dict(time=1_700_000_000.0, provider="builtin", base_url="http://127.0.0.1:1/v1", model="builtin",
            voice="heart", format="pcm", text="Hello.", ttfa_ms=12.5, underruns=0, duration_s=0.5, bytes=10,
            id="1700000000000-aaaaaaaa", audio_bytes=0)
TYPES = {f.name: f.type for f in dataclasses.fields(HistoryEntry)}


def line(**changes) -> str:
    return json.dumps({**GOOD, **changes}) + "\n"


def assert_typed(e: HistoryEntry) -> None:
    """Every field has its declared type (bool is not a number here)."""
    for name in ("provider", "base_url", "model", "voice", "format", "text", "id"):
        assert type(getattr(e, name)) is str, name
    for name in ("time", "duration_s"):
        assert type(getattr(e, name)) is float, name
    for name in ("speed", "prebuffer_ms", "max_buffer_s", "ttfa_ms"):
        assert getattr(e, name) is None or type(getattr(e, name)) is float, name
    for name in ("underruns", "bytes", "audio_bytes"):
        assert type(getattr(e, name)) is int and getattr(e, name) >= 0, name
    assert e.chunk_bytes is None or type(e.chunk_bytes) is int
    assert e.detected_format is None or type(e.detected_format) is str
    assert e.error is None or type(e.error) is str
    assert type(e.evicted) is bool and type(e.extra) is dict


# --- item 1: damaged index lines ---------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    line(id="1700000000001-bbbbbbbb", time="yesterday"),
    line(id="1700000000001-bbbbbbbb", ttfa_ms="fast"),
    line(id="1700000000001-bbbbbbbb", extra=5),
    line(id="1700000000001-bbbbbbbb", underruns=-3),
    line(id="1700000000001-bbbbbbbb", voice=["heart"]),
    line(id="1700000000001-bbbbbbbb", evicted="no"),
    line(id="1700000000001-bbbbbbbb", time=float("nan")).replace("NaN", "NaN"),
    line(id=GOOD["id"]),  # the same id twice
    '{"time": 1}\n',  # required fields missing
    "\x00\xff binary \x89PNG garbage\n",
])
def test_a_bad_line_is_left_out_counted_and_kept_aside(tmp_path, bad):
    root = tmp_path / "history"
    root.mkdir()
    raw = (line() + bad).encode("utf-8", "surrogateescape")
    (root / "index.jsonl").write_bytes(raw)
    store = HistoryStore(root)
    got = store.entries()
    assert [e.id for e in got] == [GOOD["id"]]
    for e in got:
        assert_typed(e)
    assert store.notice and "1 damaged line" in store.notice and "\n" not in store.notice
    aside = [p for p in root.iterdir() if p.name.startswith("index.jsonl.corrupt-")]
    assert len(aside) == 1 and aside[0].read_bytes() == raw and aside[0].name in store.notice
    # The new index holds only the usable entry: the next start is quiet.
    again = HistoryStore(root)
    assert again.notice is None and [e.id for e in again.entries()] == [GOOD["id"]]


def test_binary_garbage_index_is_set_aside_and_the_store_works(tmp_path):
    root = tmp_path / "history"
    root.mkdir()
    garbage = bytes(range(256)) * 40 + b"\n\xff\xfe\n"
    (root / "index.jsonl").write_bytes(garbage)
    store = HistoryStore(root)
    assert store.entries() == [] and store.notice and "damaged lines" in store.notice
    assert [p.read_bytes() for p in root.iterdir() if ".corrupt-" in p.name] == [garbage]
    eid = store.add(HistoryEntry(**{k: v for k, v in GOOD.items() if k != "id"}), b"abc")
    assert store.original(eid) == b"abc"


def test_unambiguous_types_are_repaired(tmp_path):
    root = tmp_path / "history"
    root.mkdir()
    (root / "index.jsonl").write_text(line(time=1_700_000_000, duration_s=2, ttfa_ms=100, bytes=10.0,
                                           evicted=0, chunk_bytes=4096.0))
    store = HistoryStore(root)
    (e,) = store.entries()
    assert_typed(e)
    assert store.notice is None
    assert (e.time, e.duration_s, e.ttfa_ms, e.bytes, e.evicted, e.chunk_bytes) == (
        1_700_000_000.0, 2.0, 100.0, 10, False, 4096)


def test_an_append_after_a_line_without_newline_stays_its_own_line(tmp_path):
    root = tmp_path / "history"
    root.mkdir()
    (root / "index.jsonl").write_text(line().rstrip("\n"))  # a hand edit dropped the last newline
    store = HistoryStore(root)
    eid = store.add(HistoryEntry(**{k: v for k, v in GOOD.items() if k != "id"}))
    fresh = HistoryStore(root)
    assert [e.id for e in fresh.entries()] == [GOOD["id"], eid] and fresh.notice is None


# --- item 3: planted ids -----------------------------------------------------------------------------------

def test_planted_ids_cannot_reach_files_outside_the_cache(tmp_path):
    cache = tmp_path / "cache"
    root = cache / "history"
    root.mkdir(parents=True)
    # "../../victim" with format pcm names cache/victim.pcm; an absolute id names any file at all.
    relative_victim = cache / "victim.pcm"
    absolute_victim = tmp_path / "elsewhere" / "secret.pcm"
    absolute_victim.parent.mkdir()
    for victim in (relative_victim, absolute_victim):
        victim.write_bytes(b"not yours")
    planted = [line(id="../../victim", audio_bytes=9),
               line(id=str(absolute_victim.with_suffix("")), audio_bytes=9),
               line(id="x" * 65, audio_bytes=9), line(id="ABC", audio_bytes=9), line(id="", audio_bytes=9)]
    (root / "index.jsonl").write_text(line() + "".join(planted))
    store = HistoryStore(root)
    assert [e.id for e in store.entries()] == [GOOD["id"]]
    assert store.notice and "5 damaged lines" in store.notice
    for bad_id in ("../../victim", str(absolute_victim.with_suffix("")), "a/b", "", "x" * 65):
        for call in (store.get, store.original, store.delete,
                     lambda i: store.save_original(i, tmp_path / "out.pcm"),
                     lambda i: store.save_played_wav(i, tmp_path / "out.wav")):
            with pytest.raises(HistoryError, match="not a history id"):
                call(bad_id)
    store.clear()
    store.delete_orphans()
    assert relative_victim.read_bytes() == b"not yours" and absolute_victim.read_bytes() == b"not yours"
    assert not (tmp_path / "out.pcm").exists() and not (tmp_path / "out.wav").exists()


def test_a_symlink_in_the_audio_directory_is_not_followed(tmp_path):
    root = tmp_path / "history"
    store = HistoryStore(root)
    eid = store.add(HistoryEntry(**{k: v for k, v in GOOD.items() if k != "id"}), b"mine")
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"secret")
    audio = root / "audio" / f"{eid}.pcm"
    audio.unlink()
    audio.symlink_to(secret)
    with pytest.raises(HistoryError, match="outside the cache"):
        store.original(eid)
    store.delete(eid)
    assert secret.read_bytes() == b"secret" and not audio.is_symlink()


# --- item 2: two processes ---------------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from voicegui.features.history import HistoryEntry, HistoryStore

    root, name, n, go = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    store = HistoryStore(root, max_bytes=10**9)
    while not go.exists():
        time.sleep(0.001)
    for i in range(n):
        e = HistoryEntry(time=time.time(), provider="builtin", base_url="", model="m", voice=f"{name}-{i}",
                         format="pcm")
        store.add(e, f"{name}-{i}".encode() * 50)
    if len(sys.argv) > 5:  # also delete what the index held before the run, while the other one adds
        for entry_id in sys.argv[5].split(","):
            store.delete(entry_id)
    print("done", flush=True)
""")


def start_writer(root: Path, name: str, n: int, go: Path, delete: list[str] | None = None) -> subprocess.Popen:
    args = [sys.executable, "-c", WRITER, str(root), name, str(n), str(go)]
    if delete:
        args.append(",".join(delete))
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def check_consistent(root: Path) -> list[HistoryEntry]:
    store = HistoryStore(root, max_bytes=10**9)
    assert store.notice is None
    entries = store.entries()
    referenced = {f"{e.id}.pcm" for e in entries if e.audio_bytes}
    on_disk = {p.name for p in (root / "audio").iterdir()}
    assert referenced == on_disk, "every audio file referenced, every reference present"
    for e in entries:
        assert store.original(e.id) == e.voice.encode() * 50
    return entries


@pytest.mark.parametrize("n", [40])
def test_two_processes_adding_at_once_lose_nothing(tmp_path, n):
    root, go = tmp_path / "history", tmp_path / "go"
    procs = [start_writer(root, name, n, go) for name in ("A", "B")]
    go.touch()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and out.strip() == "done", err
    voices = sorted(e.voice for e in check_consistent(root))
    assert voices == sorted(f"{name}-{i}" for name in ("A", "B") for i in range(n))


def test_one_process_deletes_while_the_other_adds(tmp_path):
    root, go = tmp_path / "history", tmp_path / "go"
    store = HistoryStore(root, max_bytes=10**9)
    old = [store.add(HistoryEntry(time=1.0, provider="p", base_url="", model="m", voice=f"old-{i}",
                                  format="pcm"), f"old-{i}".encode() * 50) for i in range(30)]
    adder = start_writer(root, "A", 40, go)
    deleter = start_writer(root, "B", 0, go, delete=old)
    go.touch()
    for p in (adder, deleter):
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and out.strip() == "done", err
    voices = sorted(e.voice for e in check_consistent(root))
    assert voices == sorted(f"A-{i}" for i in range(40))
    # The first window's store sees the other processes' work too.
    assert sorted(e.voice for e in store.entries()) == voices


# --- item 4: a full disk -----------------------------------------------------------------------------------

@pytest.mark.audio
async def test_a_full_disk_is_reported_and_the_speak_is_unaffected(tmp_path, monkeypatch):
    from voicegui.stream.fetch import SpeechRequest
    from voicegui.stream.player import Player
    from voicegui.stream.replay_source import replay_source
    from voicegui.stream.session import SpeakOptions

    store = HistoryStore(tmp_path / "history")

    def full_disk(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(history_mod, "atomic_write", full_disk)
    errors: list[str] = []
    recorded: list[object] = []
    player = Player(history_hook=history_hook(store, recorded.append, on_error=errors.append))
    body = (0.2 * np.sin(np.arange(4800) / 10) * 32767).astype("<i2").tobytes()
    request = SpeechRequest(base_url="http://127.0.0.1:9/v1", api_key="none", model="m", voice="v",
                            text="Hello.", response_format="pcm")
    playback = await player.play(SpeakOptions(request=request, source=replay_source(body), keep_original=True))
    await player.close()
    assert playback is not None and playback.metrics is not None and playback.metrics.completed
    assert playback.metrics.error is None
    assert errors == ["The history could not be saved: No space left on device."]
    assert playback.history_ids == [None] and recorded == [playback]
    assert store.entries() == []
    assert not [p for p in (tmp_path / "history").rglob("*") if p.is_file() and p.suffix in (".pcm", ".tmp")]


def test_a_failed_append_leaves_no_half_line(tmp_path, monkeypatch):
    """The index append itself hits the full disk: the file is cut back, the store stays usable."""
    store = HistoryStore(tmp_path / "history")
    first = store.add(HistoryEntry(time=1.0, provider="p", base_url="", model="m", voice="v", format="pcm"), b"a")
    before = store.index_path.read_bytes()
    real_write = history_mod.os.write

    def half_then_full(fd, data):
        real_write(fd, bytes(data[:10]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(history_mod.os, "write", half_then_full)
    with pytest.raises(OSError):
        store.add(HistoryEntry(time=2.0, provider="p", base_url="", model="m", voice="w", format="pcm"), b"b")
    monkeypatch.undo()
    assert store.index_path.read_bytes() == before
    assert [e.id for e in store.entries()] == [first]
    assert len(list((tmp_path / "history" / "audio").iterdir())) == 1  # the failed entry's audio is gone
