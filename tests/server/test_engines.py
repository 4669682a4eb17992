"""The offline engines (hibari, espeak-ng), their shared helpers, and the BuiltinEngine router.

Engines that are not installed here are skipped, not failed; the helpers and the router are tested with
synthetic audio and stub engines so they run everywhere. Streaming order is checked with recorded
`time.monotonic()` marks, not with timing thresholds.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pytest

from voicegui.server.engines import espeak as espeak_mod, hibari as hibari_mod, piper as piper_mod
from voicegui.server.engines.audio import SILENCE_THRESHOLD, resample, speakable, synthesize_ahead, trim_silence
from voicegui.server.engines.base import Engine, EngineError, VoiceInfo
from voicegui.server.engines.builtin import BuiltinEngine, available_engines

SR = 24000
HELLO = "Hello there, this is a test."
THREE = "The first sentence is short. The second one is a little longer than that. The third ends it."


@pytest.fixture(scope="module")
def hibari_engine() -> Iterator[hibari_mod.HibariEngine]:
    hint = hibari_mod.missing()
    if hint:
        pytest.skip(hint)
    engine = hibari_mod.HibariEngine(warm=True, seed=0)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def piper_engine() -> Iterator[piper_mod.PiperEngine]:
    hint = piper_mod.missing()
    if hint:
        pytest.skip(hint)
    engine = piper_mod.PiperEngine(warm=True)
    yield engine
    engine.close()


@pytest.fixture(params=["hibari", "espeak", "piper"])
def engine_and_voice(request: pytest.FixtureRequest) -> tuple[Any, str]:
    fixture, voice = {"hibari": ("hibari_engine", "heart"), "espeak": ("espeak_engine", "espeak:en-us"),
                      "piper": ("piper_engine", "piper:joe")}[request.param]
    return request.getfixturevalue(fixture), voice


async def collect(gen: AsyncIterator[np.ndarray]) -> list[np.ndarray]:
    return [block async for block in gen]


def edges_ms(audio: np.ndarray) -> tuple[float, float]:
    """(leading, trailing) silence in ms, by the trimming threshold."""
    loud = np.flatnonzero(np.abs(audio) > SILENCE_THRESHOLD)
    assert loud.size, "all silent"
    return loud[0] / SR * 1000, (len(audio) - 1 - loud[-1]) / SR * 1000


# --- each installed engine ------------------------------------------------------------------------------

async def test_engine_speaks_a_sentence(engine_and_voice: tuple[Any, str]) -> None:
    engine, voice = engine_and_voice
    assert engine.sample_rate == SR
    assert isinstance(engine, Engine)
    blocks = await collect(engine.synthesize(HELLO, voice, 1.0))
    assert blocks
    audio = np.concatenate(blocks)
    assert audio.dtype == np.float32
    assert 0.3 <= len(audio) / SR <= 5.0
    assert float(np.sqrt(np.mean(audio ** 2))) > 0.01, "non-silent"
    assert float(np.abs(audio).max()) <= 1.0


async def test_engine_streams_before_last_sentence_is_done(engine_and_voice: tuple[Any, str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    engine, voice = engine_and_voice
    starts: list[float] = []
    ends: list[float] = []
    real = engine._synth_piece

    def recorded(*args: Any) -> np.ndarray:
        starts.append(time.monotonic())
        try:
            return real(*args)
        finally:
            ends.append(time.monotonic())

    monkeypatch.setattr(engine, "_synth_piece", recorded)
    yielded: list[float] = []
    started_while_holding_first = False
    async for _ in engine.synthesize(THREE, voice, 1.0):
        yielded.append(time.monotonic())
        if len(yielded) == 1:
            # Hold the first block without asking for more: the second sentence must start anyway
            # (one ahead). The deadline only bounds a failure; a pass takes a few ms.
            deadline = time.monotonic() + 10
            while len(starts) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.001)
            started_while_holding_first = len(starts) >= 2
    assert len(starts) == len(ends) == 3
    assert len(yielded) == 3
    # First audio left before the last sentence's synthesis finished...
    assert yielded[0] < ends[2]
    # ...and the second sentence was synthesised while the consumer held the first.
    assert started_while_holding_first
    # The third is not started before the consumer took the second (no unbounded run-ahead).
    assert starts[2] >= yielded[0]


async def test_engine_trims_silence_to_natural_gaps(engine_and_voice: tuple[Any, str]) -> None:
    engine, voice = engine_and_voice
    blocks = await collect(engine.synthesize(THREE, voice, 1.0))
    lead, tail = edges_ms(blocks[0])
    assert lead <= 20  # silence before the first sound is latency: the gaps go after each sentence
    for before, after in itertools.pairwise(blocks):
        gap = edges_ms(before)[1] + edges_ms(after)[0]
        assert gap <= 150
    assert edges_ms(blocks[-1])[1] <= 150


async def test_engine_speed_changes_duration(engine_and_voice: tuple[Any, str]) -> None:
    engine, voice = engine_and_voice
    normal = np.concatenate(await collect(engine.synthesize(HELLO, voice, 1.0)))
    fast = np.concatenate(await collect(engine.synthesize(HELLO, voice, 2.0)))
    slow = np.concatenate(await collect(engine.synthesize(HELLO, voice, 0.5)))
    assert len(fast) < 0.8 * len(normal) < len(normal) < 0.8 * len(slow)


async def test_engine_close_early_then_speak_again(engine_and_voice: tuple[Any, str]) -> None:
    engine, voice = engine_and_voice
    gen = engine.synthesize(THREE, voice, 1.0)
    first = await gen.__anext__()
    assert first.size
    await gen.aclose()
    assert await collect(engine.synthesize("Again.", voice, 1.0))


async def test_engine_empty_text_yields_nothing(engine_and_voice: tuple[Any, str]) -> None:
    engine, voice = engine_and_voice
    assert await collect(engine.synthesize("  \n ", voice, 1.0)) == []


async def test_engine_survives_control_characters_and_odd_text(engine_and_voice: tuple[Any, str]) -> None:
    engine, voice = engine_and_voice
    audio = await collect(engine.synthesize("Hello\x00 there\x1b. -v --help 👋🏽 [[x]] <b>ok</b>.", voice, 1.0))
    assert sum(len(b) for b in audio) > SR // 10


async def test_engine_rejects_unknown_voice(engine_and_voice: tuple[Any, str]) -> None:
    engine, _ = engine_and_voice
    with pytest.raises(EngineError):
        await collect(engine.synthesize(HELLO, "no-such-voice", 1.0))


# --- voice listings ------------------------------------------------------------------------------------

def test_hibari_offers_only_the_bundled_voice(hibari_engine: hibari_mod.HibariEngine) -> None:
    assert [v.id for v in hibari_engine.voices()] == ["heart"]
    assert hibari_engine.voices()[0] == VoiceInfo("heart", "Heart (hibari)", "en-US", "hibari")
    assert hibari_engine.models() == ["hibari"]


def test_piper_offers_joe(piper_engine: piper_mod.PiperEngine) -> None:
    assert piper_engine.voices() == [VoiceInfo("piper:joe", "Joe (piper)", "en-US", "piper")]
    assert piper_engine.models() == ["piper"]


def test_espeak_lists_many_voices_english_first(espeak_engine: espeak_mod.EspeakEngine) -> None:
    voices = espeak_engine.voices()
    ids = [v.id for v in voices]
    assert len(ids) > 50
    assert len(set(ids)) == len(ids)
    assert ids[0] == "espeak:en-us"
    english = [v.language.lower().startswith("en") for v in voices]
    n_en = sum(english)
    assert n_en >= 2 and all(english[:n_en]) and not any(english[n_en:])
    assert all(i.startswith("espeak:") for i in ids)
    assert espeak_engine.models() == ["espeak-ng"]


async def test_espeak_speaks_other_scripts(espeak_engine: espeak_mod.EspeakEngine) -> None:
    ids = {v.id for v in espeak_engine.voices()}
    for voice, text in [("espeak:ru", "Привет, мир."), ("espeak:cmn", "你好。世界。")]:
        if voice in ids:
            audio = np.concatenate(await collect(espeak_engine.synthesize(text, voice, 1.0)))
            assert len(audio) > SR // 10


def test_parse_voice_list_duplicates_and_order() -> None:
    listing = (
        "Pty Language       Age/Gender VoiceName          File                 Other Languages\n"
        " 5  af              --/M      Afrikaans          gmw/af\n"
        " 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)\n"
        " 5  yue             --/M      Chinese_(Cantonese) sit/yue              (zh-yue 5)(zh 8)\n"
        " 5  yue             --/M      Chinese_(Cantonese,_latin_as_Jyutping) sit/yue-Latn-jyutping (zh 8)\n"
        " 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)\n"
    )
    voices = espeak_mod.parse_voice_list(listing)
    assert [v.info.id for v in voices] == [
        "espeak:en-us", "espeak:en-gb", "espeak:af", "espeak:yue", "espeak:yue-latn-jyutping"]
    assert voices[0].file == "gmw/en-US"
    assert voices[0].info.name == "English (America) (espeak-ng)"


def test_espeak_speed_to_wpm() -> None:
    assert espeak_mod.speed_to_wpm(1.0) == 175
    assert espeak_mod.speed_to_wpm(2.0) == 350
    assert espeak_mod.speed_to_wpm(0.25) == espeak_mod.MIN_WPM
    assert espeak_mod.speed_to_wpm(4.0) == espeak_mod.MAX_WPM


def test_parse_wav_ignores_streamed_sizes_and_rejects_junk() -> None:
    pcm = np.arange(-5, 5, dtype="<i2").tobytes()
    header = (b"RIFF" + b"\xff\xff\xff\x7f" + b"WAVE" + b"fmt " + (16).to_bytes(4, "little")
              + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (22050).to_bytes(4, "little")
              + (44100).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
              + b"data" + b"\xff\xff\xff\x7f")
    samples, rate = espeak_mod.parse_wav(header + pcm + b"\x01")  # odd trailing byte dropped
    assert rate == 22050
    assert samples.tolist() == list(range(-5, 5))
    with pytest.raises(EngineError):
        espeak_mod.parse_wav(b"not a wav at all")


# --- shared helpers ------------------------------------------------------------------------------------

def _tone(seconds: float, freq: float = 440.0, rate: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_speakable_drops_control_characters_only() -> None:
    assert speakable("a\x00b\x1bc\n\td é 👋🏽") == "a b c\n\td é 👋🏽"
    text = "plain text, nothing odd."
    assert speakable(text) is text


def test_trim_silence_cuts_long_edges_and_keeps_short_ones() -> None:
    silence = np.zeros(SR, np.float32)
    audio = np.concatenate([silence, _tone(0.5), silence])
    trimmed = trim_silence(audio, SR, keep_lead_s=0.05, keep_tail_s=0.1)
    lead, tail = edges_ms(trimmed)
    assert lead == pytest.approx(50, abs=1)
    assert tail == pytest.approx(100, abs=1)
    short = np.concatenate([np.zeros(SR // 100, np.float32), _tone(0.5), np.zeros(SR // 50, np.float32)])
    assert len(trim_silence(short, SR, 0.05, 0.1)) == len(short)
    assert trim_silence(np.zeros(SR, np.float32), SR).size == 0
    assert trim_silence(np.full(SR, 1e-4, np.float32), SR).size == 0  # below -50 dBFS is silence


def test_resample_22050_to_24000_keeps_length_and_pitch() -> None:
    src = _tone(1.0, freq=1000.0, rate=22050)
    out = resample(src, 22050, SR)
    assert out.dtype == np.float32
    assert abs(len(out) - SR) <= 2
    spectrum = np.abs(np.fft.rfft(out[1000:-1000] * np.hanning(len(out) - 2000)))
    peak_hz = np.argmax(spectrum) * SR / (len(out) - 2000)
    assert peak_hz == pytest.approx(1000.0, abs=2.0)
    as_int = resample((src * 32767).astype(np.int16), 22050, SR)
    assert np.max(np.abs(as_int - out)) < 1e-3
    assert resample(np.zeros(0, np.int16), 22050, SR).size == 0


async def test_synthesize_ahead_runs_one_ahead_and_cancels_on_close() -> None:
    log: list[str] = []
    release: dict[str, asyncio.Event] = {}

    async def synth(piece: str) -> str:
        log.append(f"start {piece}")
        release.setdefault(piece, asyncio.Event())
        await release[piece].wait()
        log.append(f"end {piece}")
        return piece

    for p in "abc":
        release[p] = asyncio.Event()
    release["a"].set()
    gen = synthesize_ahead(["a", "b", "c"], synth)
    assert await gen.__anext__() == "a"
    await asyncio.sleep(0)
    assert log == ["start a", "end a", "start b"]  # b started before a was handed out
    await gen.aclose()
    await asyncio.sleep(0)
    assert "end b" not in log and "start c" not in log  # b cancelled, c never started
    assert await collect_plain(synthesize_ahead([], synth)) == []


async def collect_plain(gen: AsyncIterator[Any]) -> list[Any]:
    return [x async for x in gen]


# --- BuiltinEngine -------------------------------------------------------------------------------------

class StubEngine:
    def __init__(self, name: str, voice_ids: list[str], value: float, sample_rate: int = SR) -> None:
        self.name = name
        self.sample_rate = sample_rate
        self._ids = voice_ids
        self.value = value
        self.closed = 0

    def models(self) -> list[str]:
        return [f"{self.name}-model"]

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo(v, v.title(), "en", self.name) for v in self._ids]

    async def synthesize(self, text: str, voice: str, speed: float) -> AsyncIterator[np.ndarray]:
        try:
            for _ in range(3):
                yield np.full(10, self.value, np.float32)
        finally:
            self.closed += 1


async def test_builtin_routes_by_voice_and_lists_everything() -> None:
    a = StubEngine("a", ["v1", "shared"], 0.1)
    b = StubEngine("b", ["v2", "shared"], 0.2)
    engine = BuiltinEngine([a, b])
    assert engine.sample_rate == SR and engine.name == "builtin"
    assert isinstance(engine, Engine)
    assert engine.models() == ["builtin", "a-model", "b-model"]
    assert [v.id for v in engine.voices()] == ["v1", "shared", "v2"]  # duplicate id: first engine wins
    assert float((await collect(engine.synthesize("x", "v2", 1.0)))[0][0]) == pytest.approx(0.2)
    assert float((await collect(engine.synthesize("x", "shared", 1.0)))[0][0]) == pytest.approx(0.1)
    with pytest.raises(EngineError, match="unknown voice"):
        await collect(engine.synthesize("x", "nope", 1.0))
    # Closing the composite early closes the sub-engine's generator.
    gen = engine.synthesize("x", "v1", 1.0)
    await gen.__anext__()
    await gen.aclose()
    assert a.closed == 3 - 1  # v1, shared ran to the end; this one was closed early: 3 in all


async def test_builtin_rejects_other_sample_rates() -> None:
    with pytest.raises(ValueError):
        BuiltinEngine([StubEngine("a", ["v"], 0.1, sample_rate=22050)])


async def test_builtin_with_real_engines() -> None:
    engines, hints = available_engines(warm=False)
    names = [e.name for e in engines]
    assert all(isinstance(h, str) and h for h in hints)
    assert len(engines) + len(hints) == 3
    if not engines:
        pytest.skip("no offline engine installed: " + "; ".join(hints))
    builtin = BuiltinEngine(engines)
    try:
        ids = [v.id for v in builtin.voices()]
        assert builtin.models()[0] == "builtin"
        if "hibari" in names:
            assert ids[0] == "heart"
            assert builtin.engine_for("heart").name == "hibari"
        if "espeak-ng" in names:
            assert builtin.engine_for("espeak:en-us").name == "espeak-ng"
        audio = np.concatenate(await collect(builtin.synthesize("Hi.", ids[0], 1.0)))
        assert audio.size > SR // 10
    finally:
        builtin.close()


def test_lazy_engines_list_voices_without_loading_and_load_on_first_use():
    from voicegui.server.engines import builtin as builtin_mod

    engines, _hints = builtin_mod.available_engines(warm=False, lazy=True)
    lazy = [e for e in engines if isinstance(e, builtin_mod.LazyEngine)]
    assert lazy, "hibari should be offered lazily"
    hibari_engine = next(e for e in lazy if e.name == "hibari")
    assert [v.id for v in hibari_engine.voices()] == ["heart"] and not hibari_engine.loaded

    async def speak() -> int:
        total = 0
        async for block in hibari_engine.synthesize("Hello there.", "heart", 1.0):
            total += len(block)
        return total

    try:
        assert asyncio.run(speak()) > 24000 * 0.3
        assert hibari_engine.loaded
        assert all(not e.loaded for e in lazy if e is not hibari_engine)  # the others stay unloaded
    finally:
        for e in engines:
            getattr(e, "close", lambda: None)()
