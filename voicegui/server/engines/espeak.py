"""EspeakEngine: every installed eSpeak NG voice (100+ languages, robotic but tiny and fast), offline.

Speaks by running the Debian `espeak-ng` binary once per sentence (`espeak-ng --stdout -b 1 -v FILE -s WPM`,
text on stdin) rather than loading libespeak-ng (PyPI espeakng-loader) with ctypes into the server, because:
- libespeak-ng keeps global state (one voice, one callback) per process: not thread-safe, so in-process use
  would serialise all requests behind one lock and one crash would take the server down; processes are
  independent and each sentence's process lives ~5-20 ms;
- espeak-ng is GPL-3: as a separate program it stays a separate work from voicegui (Apache-2.0), where
  loading the library into our process would be linking;
- Debian already ships it (`apt-get install espeak-ng`), with its data; nothing to add to the wheel.
Text goes on stdin (never argv: text starting with "-" is not an option) as UTF-8 (`-b 1`), without `-m`, so
SSML/markup in the text is read as text.

The WAV it writes (22050 Hz s16 mono, sizes 0x7fffffff because it streams) is parsed by chunk, resampled to
24 kHz with libswresample (one context per sentence, flushed: no samples held between sentences), and
trimmed of long silences. Sentences are synthesised one ahead of the one being yielded (`synthesize_ahead`).

`speed` maps to words per minute (1.0 = 175 wpm), clamped to espeak-ng's 80-700 wpm: speeds below ~0.46 play
at 80 wpm.

Word timings (`synthesize_words`, for the built-in server's /dev/captioned_speech): the pieces go through
libespeak-ng in a helper process, each in a fresh child of its own (espeak_events.py: its audio is the
program's sample for sample, and its word events say where each word starts); resampled and trimmed as above,
the starts move with the trim. Only timings go that way: a Speak's audio stays with the program. When the
library cannot be had (not installed, fails to load, no Python to run the helper in a bundle) that is logged
once and it returns None from then on; a text it fails on (a timeout, a crash on some piece) is logged and
returns None for that request. The route then estimates the words from the audio as before, labelled estimated.

Voices: `espeak-ng --voices`, all of them, English first (en-us, then other en-*). Ids are
"espeak:" + language ("espeak:en-us"); a language listed twice (yue) gets its voice file's name for the
second one ("espeak:yue-latn-jyutping"). The binary is called with the voice *file* so every id is exact.

Threads: construction runs `espeak-ng --voices` on the caller's thread. `synthesize()` and `synthesize_words()`
run on the server's asyncio loop; each sentence's program (or a request's word events helper) is started and
waited for in a worker thread (`asyncio.to_thread`), which owns that process until it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import struct
import subprocess
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import numpy as np

from voicegui.server.engines import espeak_events
from voicegui.server.engines.audio import (
    SAMPLE_RATE,
    resample,
    speakable,
    synthesize_ahead,
    trim_silence,
)
from voicegui.server.engines.base import EngineError, VoiceInfo
from voicegui.server.engines.espeak_events import LIBRARY
from voicegui.text import split_sentences

log = logging.getLogger(__name__)

MODEL_ID = "espeak-ng"
VOICE_PREFIX = "espeak:"
BASE_WPM = 175
MIN_WPM, MAX_WPM = 80, 700
MAX_CHARS = 300
TIMEOUT_S = 30.0


def missing() -> str | None:
    """None if the espeak-ng binary is on PATH, else a hint to install it."""
    if shutil.which("espeak-ng") is None:
        return "espeak-ng not found: apt-get install espeak-ng"
    return None


def create(warm: bool = True) -> EspeakEngine:
    return EspeakEngine()


@dataclass(frozen=True)
class _Voice:
    info: VoiceInfo
    file: str  # what `-v` gets: the voice file under espeak-ng-data/voices ("gmw/en-US")


def parse_voice_list(listing: str) -> list[_Voice]:
    """Voices from `espeak-ng --voices` output, English first (en-us, other en-*), then in listed order."""
    voices: list[_Voice] = []
    seen: set[str] = set()
    for line in listing.splitlines()[1:]:
        cols = line.split()
        # Pty Language Age/Gender VoiceName File [Other Languages...]
        if len(cols) < 5:
            continue
        language, name, file = cols[1], cols[3].replace("_", " "), cols[4]
        vid = VOICE_PREFIX + language.lower()
        if vid in seen:
            vid = VOICE_PREFIX + file.rsplit("/", 1)[-1].lower()
        if vid in seen:
            continue
        seen.add(vid)
        voices.append(_Voice(VoiceInfo(id=vid, name=f"{name} (espeak-ng)", language=language,
                                       engine="espeak-ng"), file))

    def rank(v: _Voice) -> int:
        lang = v.info.language.lower()
        return 0 if lang == "en-us" else 1 if lang == "en" or lang.startswith("en-") else 2

    return sorted(voices, key=rank)  # stable: listed order within each rank


def parse_wav(data: bytes) -> tuple[np.ndarray, int]:
    """(int16 samples, rate) from espeak-ng's streamed WAV (ignores the bogus RIFF/data sizes)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise EngineError("espeak-ng did not write a WAV file")
    pos, rate, channels = 12, 0, 1
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if cid == b"fmt ":
            fmt, channels, rate = struct.unpack_from("<HHI", data, body)
            bits = struct.unpack_from("<H", data, body + 14)[0]
            if fmt != 1 or bits != 16:
                raise EngineError(f"espeak-ng wrote WAV format {fmt}/{bits} bit, expected PCM 16 bit")
        elif cid == b"data":
            pcm = data[body:]
            pcm = pcm[:len(pcm) - len(pcm) % (2 * channels)]
            samples = np.frombuffer(pcm, dtype="<i2")
            if channels > 1:
                samples = samples.reshape(-1, channels)[:, 0]
            if not rate:
                raise EngineError("espeak-ng WAV has no fmt chunk before its data")
            return samples, rate
        pos = body + size + (size & 1)
    raise EngineError("espeak-ng WAV has no data")


@dataclass(frozen=True)
class WordTimedAudio:
    """Audio (float32 at SAMPLE_RATE) and its words: (start_s, end_s, the word as written), in order."""

    samples: np.ndarray
    words: tuple[tuple[float, float, str], ...]


def speed_to_wpm(speed: float) -> int:
    return int(min(MAX_WPM, max(MIN_WPM, round(BASE_WPM * speed))))


class EspeakEngine:
    """All installed espeak-ng voices via the espeak-ng binary. See the module docstring."""

    name = "espeak-ng"
    sample_rate = SAMPLE_RATE

    def __init__(self, binary: str | None = None, library: str = LIBRARY) -> None:
        found = binary or shutil.which("espeak-ng")
        if found is None:
            raise RuntimeError("espeak-ng not found: apt-get install espeak-ng")
        self.binary = found
        listing = subprocess.run([self.binary, "--voices"], capture_output=True, text=True, check=True,
                                 timeout=TIMEOUT_S).stdout
        self._voices = parse_voice_list(listing)
        if not self._voices:
            raise RuntimeError("espeak-ng lists no voices (is espeak-ng-data installed?)")
        self._files = {v.info.id: v.file for v in self._voices}
        self._library = library
        self._events_failed = False  # the library cannot be had here: not tried again

    def models(self) -> list[str]:
        return [MODEL_ID]

    def voices(self) -> list[VoiceInfo]:
        return [v.info for v in self._voices]

    def _synth_piece(self, text: str, voice_file: str, wpm: int) -> np.ndarray:
        """One sentence -> trimmed float32 at 24 kHz. Runs in a worker thread (blocks on the process)."""
        try:
            proc = subprocess.run([self.binary, "--stdout", "-b", "1", "-v", voice_file, "-s", str(wpm)],
                                  input=text.encode("utf-8"), capture_output=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise EngineError(f"espeak-ng took over {TIMEOUT_S:.0f} s for one sentence") from exc
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip()
            raise EngineError(f"espeak-ng failed ({proc.returncode}): {err}")
        samples, rate = parse_wav(proc.stdout)
        return trim_silence(resample(samples, rate, SAMPLE_RATE), SAMPLE_RATE)

    async def synthesize(self, text: str, voice: str, speed: float) -> AsyncGenerator[np.ndarray, None]:
        """Yield one float32 block per sentence (trimmed), prefetching the next sentence."""
        voice_file = self._voice_file(voice)
        wpm = speed_to_wpm(speed)
        gen = synthesize_ahead(split_sentences(speakable(text), MAX_CHARS),
                               lambda s: asyncio.to_thread(self._synth_piece, s, voice_file, wpm))
        async with contextlib.aclosing(gen):  # a Stop closes us: the sentence in flight is cancelled at once
            async for audio in gen:
                if audio.size:
                    yield audio

    async def synthesize_words(self, text: str, voice: str, speed: float) -> WordTimedAudio | None:
        """`synthesize()`'s audio as one block, with each word's start in it, from libespeak-ng's word events;
        None when they cannot be had (said once in the log: the caller estimates instead)."""
        voice_file = self._voice_file(voice)
        if self._events_failed:
            return None
        wpm = speed_to_wpm(speed)
        pieces = split_sentences(speakable(text), MAX_CHARS)
        try:
            made = await asyncio.to_thread(espeak_events.synthesize, pieces, voice_file, wpm, self._library)
        except espeak_events.EspeakEventsError as exc:
            self._events_failed = exc.lasting
            log.warning("espeak-ng word timings unavailable%s, words will be estimated: %s",
                        "" if exc.lasting else " for this text", exc)
            return None
        blocks: list[np.ndarray] = []
        words: list[tuple[float, float, str]] = []
        offset = 0
        for piece in made:
            full = resample(np.frombuffer(piece.samples, dtype=np.int16), piece.rate, SAMPLE_RATE)
            audio = trim_silence(full, SAMPLE_RATE)
            if not audio.size:
                continue
            # trim_silence returns a view of `full`: where it starts is how much lead-in was cut.
            cut_s = (audio.ctypes.data - full.ctypes.data) // full.itemsize / SAMPLE_RATE
            base_s, end_s = offset / SAMPLE_RATE, (offset + len(audio)) / SAMPLE_RATE
            starts = [min(max(base_s + w.start_s - cut_s, base_s), end_s) for w in piece.words]
            words.extend((start, starts[k + 1] if k + 1 < len(starts) else end_s, w.text)
                         for k, (start, w) in enumerate(zip(starts, piece.words, strict=True)))
            blocks.append(audio)
            offset += len(audio)
        return WordTimedAudio(np.concatenate(blocks) if blocks else np.zeros(0, np.float32), tuple(words))

    def _voice_file(self, voice: str) -> str:
        try:
            return self._files[voice]
        except KeyError:
            raise EngineError(f"espeak-ng has no voice {voice!r}") from None
