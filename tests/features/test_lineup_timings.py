"""A line-up asks built-in voices for their read-along timings only after the last voice, and those are as
good as their server: a server that has no timings route leaves them to the report's estimate, one whose timings
are of other audio than what was played is not believed, and Stop while they are being asked ends the line-up at
once. Served by a real aiohttp server on 127.0.0.1 (a line-up does not look past the provider label), played on
the null sink."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import pytest
from aiohttp import web

from voicegui.features.lineup import Lineup, LineupEntry, Target

pytestmark = pytest.mark.audio

RATE = 24000
TEXT = "One. Two."


def speech() -> bytes:
    """0.6 s of pcm: two tones with a pause between them."""
    t = np.arange(int(0.6 * RATE)) / RATE
    tone = 0.3 * np.sin(2 * np.pi * 300 * t) * ((t < 0.2) | (t >= 0.4))
    return (tone * 32767).astype("<i2").tobytes()


def app(captioned: web.RouteDef | None, log: list[str]) -> web.Application:
    async def speak(request: web.Request) -> web.Response:
        log.append("speech")
        return web.Response(body=speech(), content_type="audio/pcm")

    application = web.Application()
    application.router.add_post("/v1/audio/speech", speak)
    if captioned is not None:
        application.router.add_routes([captioned])
    return application


def captioned_answer(audio: bytes, log: list[str],
                     hang: tuple[asyncio.Event, asyncio.Event] | None = None) -> web.RouteDef:
    """The route answering `audio`'s timings; with `hang` = (asked, release): sets asked, answers once released."""
    async def handler(request: web.Request) -> web.Response:
        log.append("captioned")
        if hang is not None:
            hang[0].set()
            await hang[1].wait()
        return web.json_response({"audio": base64.b64encode(audio).decode(), "audio_format": "pcm",
                                  "sample_rate": RATE, "timestamp_unit": "word",
                                  "timestamps": [{"word": "One.", "start_time": 0.0, "end_time": 0.4},
                                                 {"word": "Two.", "start_time": 0.4, "end_time": 0.6}]})
    return web.post("/dev/captioned_speech", handler)


async def run_lineup(url: str, provider: str = "builtin", voices: int = 2) -> tuple[Lineup, asyncio.Task]:
    lineup = Lineup(TEXT, [LineupEntry(f"v{i}") for i in range(voices)], Target(url, "k", "m", provider),
                    warmup=False)
    return lineup, asyncio.ensure_future(lineup.run())


async def test_timings_are_asked_after_the_last_voice(local_app) -> None:
    log: list[str] = []
    url = await local_app(app(captioned_answer(speech(), log), log))
    _, task = await run_lineup(url)
    results = await task
    assert log == ["speech", "speech", "captioned", "captioned"]  # no second synthesis beside a measured one
    for r in results:
        assert r.timings is not None and [(w.text, w.start_s, w.source) for w in r.timings.words] == [
            ("One.", 0.0, "engine"), ("Two.", 0.4, "engine")]


async def test_other_servers_and_other_audio_get_no_timings(local_app) -> None:
    log: list[str] = []
    url = await local_app(app(captioned_answer(speech() * 2, log), log))  # timings of 1.2 s; 0.6 s played
    _, task = await run_lineup(url, voices=1)
    assert [r.timings for r in await task] == [None] and log == ["speech", "captioned"]
    log.clear()
    _, task = await run_lineup(url, provider="custom", voices=1)  # not the built-in server: not asked
    assert [r.timings for r in await task] == [None] and log == ["speech"]
    log.clear()
    url = await local_app(app(None, log))  # no such route (404): the report estimates
    _, task = await run_lineup(url, voices=1)
    assert [r.timings for r in await task] == [None] and log == ["speech"]


async def test_stop_while_timings_are_asked_ends_the_lineup(local_app) -> None:
    log: list[str] = []
    asked, release = asyncio.Event(), asyncio.Event()
    url = await local_app(app(captioned_answer(speech(), log, hang=(asked, release)), log))
    lineup, task = await run_lineup(url)
    await asked.wait()
    lineup.stop()
    try:
        done, _ = await asyncio.wait({task}, timeout=30)  # not wait_for: its own cancel would look like a Stop
    finally:
        release.set()  # the server's handler ends, so the server stops at once
    assert task in done, "the line-up still waits for the timings after Stop"
    results = task.result()
    assert len(results) == 2 and all(r.ok and r.timings is None for r in results)
    assert log == ["speech", "speech", "captioned"]  # the second voice's timings were not asked
