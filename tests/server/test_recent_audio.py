"""The sentences a stream synthesised, kept for the timings route (server/engines/recent_audio.py): the bounds of
what is kept, and, on the built-in server with the real hibari voice on 127.0.0.1, a Speak's timings that no
longer synthesise its sentences again and describe the very audio streamed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import aiohttp
import numpy as np
import pytest

from tests.server.test_captioned import TOKEN, srv_model, streamed_pcm
from voicegui.features.captioned import route_url
from voicegui.server.engines import hibari as hibari_mod
from voicegui.server.engines.recent_audio import RecentAudio, reusing, reusing_recent_audio
from voicegui.server.thread import ServerThread

SR = 24000
TEXT = "One sentence first. Then a second one. And a third to end."


def block(seconds: float, value: float = 0.1) -> np.ndarray:
    return np.full(int(seconds * SR), value, dtype=np.float32)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_kept_block_is_taken_once() -> None:
    recent = RecentAudio()
    audio = block(0.5)
    recent.keep(("Hi.", 1.0), audio)
    assert recent.take(("Hi.", 1.5)) is None  # another speed is another sentence
    assert recent.take(("Hi.", 1.0)) is audio
    assert recent.take(("Hi.", 1.0)) is None
    assert len(recent) == 0 and recent.nbytes == 0


def test_the_oldest_go_first_beyond_the_bytes_bound_and_a_block_over_it_is_not_kept() -> None:
    one = block(1.0).nbytes
    recent = RecentAudio(max_bytes=3 * one)
    for n in range(5):
        recent.keep(n, block(1.0))
    assert len(recent) == 3 and recent.nbytes == 3 * one
    assert recent.take(0) is None and recent.take(1) is None and recent.take(4) is not None
    recent.keep("huge", block(4.0))
    assert recent.take("huge") is None and recent.nbytes == 2 * one
    recent.keep(2, block(2.0))  # kept again under the same key: counted once, as the newest
    assert recent.nbytes == 3 * one
    recent.keep(5, block(1.0))
    assert recent.take(3) is None and recent.take(2) is not None


def test_what_is_too_old_is_dropped() -> None:
    clock = Clock()
    recent = RecentAudio(max_age_s=60.0, clock=clock)
    recent.keep("old", block(0.1))
    clock.now += 30
    recent.keep("new", block(0.1))
    clock.now += 31
    assert recent.take("old") is None
    assert recent.take("new") is not None
    recent.keep("idle", block(0.1))
    clock.now += 61
    recent.keep("next", block(0.1))  # any use drops what aged meanwhile
    assert len(recent) == 1 and recent.nbytes == block(0.1).nbytes


def test_a_long_requests_first_sentence_is_still_there_when_its_stream_has_come_in() -> None:
    """The window asks for the timings once the stream is in, which for a 4096-character request (~4.5 min of
    audio through a 10 s buffer) is ~4.3 min after its first sentence was synthesised."""
    clock = Clock()
    recent = RecentAudio(clock=clock)
    recent.keep("first", block(5.0))
    for i in range(50):  # the rest of the request, a sentence every ~5 s as the client reads
        clock.now += 5.2
        recent.keep(i, block(5.0))
    assert recent.take("first") is not None


def test_the_flag_follows_the_block_into_the_tasks_it_starts_and_no_further() -> None:
    async def run() -> tuple[bool, bool, bool]:
        async def ask() -> bool:
            return reusing()

        with reusing_recent_audio():
            inside = await asyncio.ensure_future(ask())
        after = await asyncio.ensure_future(ask())
        return inside, after, reusing()

    assert asyncio.run(run()) == (True, False, False)


@pytest.fixture(scope="module")
def hibari_server() -> Iterator[tuple[ServerThread, Any]]:
    hint = hibari_mod.missing()
    if hint:
        pytest.skip(hint)
    engine = hibari_mod.HibariEngine(warm=True)  # unseeded, as the app runs it: each synthesis draws anew
    with ServerThread(engine, token=TOKEN) as srv:
        yield srv, engine
    engine.close()


def counting(monkeypatch: pytest.MonkeyPatch, engine: Any) -> list[str]:
    """The sentences the engine's worker synthesises from now on (its own method, recorded)."""
    done: list[str] = []
    real = engine._synth_piece

    def recorded(text: str, speed: float) -> np.ndarray:
        done.append(text)
        return real(text, speed)

    monkeypatch.setattr(engine, "_synth_piece", recorded)
    return done


async def captioned(srv: ServerThread, text: str, voice: str = "heart") -> dict:
    async with aiohttp.ClientSession() as client, client.post(
            route_url(srv.base_url), headers={"Authorization": f"Bearer {TOKEN}"},
            json={"model": srv_model(srv), "input": text, "voice": voice, "response_format": "pcm"}) as resp:
        assert resp.status == 200
        return await resp.json()


def pcm_of(answer: dict) -> np.ndarray:
    import base64

    return np.frombuffer(base64.b64decode(answer["audio"]), dtype="<i2").astype(np.float32) / 32768


def test_the_timings_after_a_stream_take_its_sentences_as_streamed(hibari_server, monkeypatch) -> None:
    srv, engine = hibari_server
    done = counting(monkeypatch, engine)

    async def run() -> tuple[np.ndarray, dict, int, dict]:
        streamed = await streamed_pcm(srv, "heart", TEXT)
        after_stream = len(done)
        answer = await captioned(srv, TEXT)
        between = len(done)
        again = await captioned(srv, TEXT)  # taken once: a second ask synthesises
        assert len(done) == between + after_stream
        return streamed, answer, after_stream, again

    streamed, answer, sentences, again = asyncio.run(run())
    assert sentences == 3 and len(done) == 6, done
    assert answer["timestamp_unit"] == "sentence" and len(answer["timestamps"]) == 3
    # the timings describe the very audio played (unseeded: the second synthesis is other audio)
    assert np.array_equal(pcm_of(answer), streamed)
    assert answer["timestamps"][-1]["end_time"] == pytest.approx(len(streamed) / SR, abs=1e-3)
    assert not np.array_equal(pcm_of(again), streamed)


def test_streams_never_take_what_another_stream_kept(hibari_server, monkeypatch) -> None:
    srv, engine = hibari_server
    done = counting(monkeypatch, engine)

    async def run() -> None:
        await streamed_pcm(srv, "heart", TEXT)
        await streamed_pcm(srv, "heart", TEXT)

    asyncio.run(run())
    assert len(done) == 6, done  # two Speaks of the same text: the engine ran twice (benchmarks measure it)
    engine._recent.clear()


def test_timings_of_another_text_or_speed_are_synthesised(hibari_server, monkeypatch) -> None:
    srv, engine = hibari_server
    done = counting(monkeypatch, engine)

    async def run() -> None:
        await streamed_pcm(srv, "heart", "A short one.")
        await captioned(srv, "A different one.")

    asyncio.run(run())
    assert done == ["A short one.", "A different one."]
    engine._recent.clear()
