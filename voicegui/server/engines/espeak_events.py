"""Word events from libespeak-ng through ctypes: when each word of a piece starts in espeak-ng's audio.

The espeak engine speaks through the espeak-ng program (espeak.py says why), and the program cannot say when a
word starts. The library it runs, libespeak-ng.so.1 (Debian's libespeak-ng1, installed with espeak-ng), can:
in synchronous mode its synth callback gets the audio in blocks together with `espeak_EVENT`s, and each
espeakEVENT_WORD carries the word's position in the text (`text_position`, 1-based code points, and `length`)
and where it starts in the audio (`audio_position`, ms). The struct is speak_lib.h's (API revision 12, the
same in espeak-ng 1.51 and later): type, unique_identifier, text_position, length, audio_position, sample,
user_data, and an 8-byte union.

Why a separate process, and a fresh one per piece: libespeak-ng's first synthesis in a process is the program's
sample for sample (same voice file, rate and flags: `espeak-ng --stdout -b 1 -v FILE -s WPM`), but every later
one in the same process comes out a few ms different (state carried over in the wave generator; measured on
1.51: 36228, then 35750, 35735, 35741 samples for the same sentence, and espeak_Terminate + espeak_Initialize
hangs). So this file, run as a script (`python -I -S espeak_events.py`, standard library only), is a helper that
gets a request's pieces as JSON on stdin and forks one child per piece before the library is ever initialised
there: each piece starts from the first-synthesis state, so its audio is exactly what a Speak plays and its
events time that audio. One interpreter start per request (~50 ms of CPU), then ~15 ms per piece, about what
the program costs. A separate process also keeps the library's global, not thread-safe state and any crash on
hostile text (a piece's child dies: that request's words are estimated) out of the server, and keeps espeak-ng
(GPL-3) in a process of its own, as the program is.

The helper writes per piece one JSON line ({"rate", "events": [[text_position, length, seconds]...], "bytes"},
or {"error", "lasting"}) and then that many bytes of s16le samples; `synthesize()` runs it and reads that. Each
word event is attached to the whitespace-separated word of the text it falls in (`words_from_events`; the first
event wins: espeak-ng splits "1,234" or an emoji's name into several words of one token), the same units as
features/timings.word_spans uses; words with no event of their own (espeak-ng says "for a", "that the" as one
word) join the word before them, whose span then covers both.

Threads: `synthesize()` blocks on the helper process; the engine calls it in a worker thread
(`asyncio.to_thread`), which owns that process until it exits. `main()` runs alone in the helper, single-threaded
(so forking it is safe), and each piece's `_run` alone in its forked child.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

LIBRARY = "libespeak-ng.so.1"
HELPER_ARG = "--espeak-events-helper"  # the bundle's way to run main() (helper_command)
TIMEOUT_S = 30.0
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000  # missing data is an error code, not exit()
ESPEAK_RATE = 1
EVENT_LIST_TERMINATED, EVENT_WORD = 0, 1
POS_CHARACTER = 1
# What the program passes for `-b 1` (espeak-ng.c: espeakCHARS_AUTO | espeakPHONEMES | espeakENDPAUSE, then
# espeakCHARS_UTF8): the same flags give the same audio.
CHARS_UTF8, PHONEMES, ENDPAUSE = 0x1, 0x100, 0x1000
SYNTH_FLAGS = CHARS_UTF8 | PHONEMES | ENDPAUSE
_TOKEN = re.compile(r"\S+")


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class EspeakEventsError(Exception):
    """The word events could not be had; str() is one sentence. `lasting`: they cannot be had on this machine
    (no library, no interpreter), as opposed to this text failing (a timeout)."""

    def __init__(self, message: str, lasting: bool = True) -> None:
        super().__init__(message)
        self.lasting = lasting


@dataclass(frozen=True)
class WordStart:
    """A word of the text (its whitespace-separated token) and where its sound starts in the audio."""

    start_s: float
    char_start: int  # code points into the text synthesised
    char_end: int
    text: str


@dataclass(frozen=True)
class Synthesis:
    samples: bytes  # s16le mono at `rate`, as the program writes it
    rate: int
    words: tuple[WordStart, ...]


def words_from_events(text: str, events: list[tuple[int, int, float]]) -> tuple[WordStart, ...]:
    """(text_position 1-based, length, audio seconds) word events -> one WordStart per token they fall in."""
    tokens = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
    out: list[WordStart] = []
    k = 0
    for position, length, seconds in events:
        first = position - 1
        if length <= 0 or first < 0:
            continue
        # Tokens and events are both in text order: walk forward to the token holding the event's first
        # character (an event on whitespace, as espeak-ng places an emoji's spoken name, belongs to no token).
        while k < len(tokens) and tokens[k][1] <= first:
            k += 1
        if k == len(tokens):
            break
        a, b = tokens[k]
        if first < a or (out and out[-1].char_start == a):
            continue
        if out and k > 0 and tokens[k - 1][0] > out[-1].char_start:
            # Tokens with no event of their own were said with the word before: "for a", "that the" are one
            # word to espeak-ng. That word spans them.
            prev = out[-1]
            out[-1] = WordStart(prev.start_s, prev.char_start, tokens[k - 1][1], text[prev.char_start:tokens[k - 1][1]])
        out.append(WordStart(seconds, a, b, text[a:b]))
    if out and tokens[-1][0] > out[-1].char_start:
        prev = out[-1]
        out[-1] = WordStart(prev.start_s, prev.char_start, tokens[-1][1], text[prev.char_start:tokens[-1][1]])
    return tuple(out)


def helper_command() -> list[str]:
    """How the helper is started: this file as a script of a bare interpreter, or, in the PyInstaller bundle
    (sys.executable is voicegui itself, with no Python to run a script), the bundle with HELPER_ARG, which its
    entry script (packaging/pyinstaller/voicegui_entry.py) turns into a call of `main()` before anything else
    is imported."""
    if getattr(sys, "frozen", False):
        return [sys.executable, HELPER_ARG]
    return [sys.executable, "-I", "-S", __file__]


def synthesize(pieces: Sequence[str], voice_file: str, wpm: int, library: str = LIBRARY) -> list[Synthesis]:
    """Each piece as `espeak-ng --stdout -b 1 -v voice_file -s wpm` says it, with its word starts, made by the
    helper (module docstring). Blocks; EspeakEventsError when it cannot give them all."""
    if not pieces:
        return []
    job = json.dumps({"voice_file": voice_file, "wpm": wpm, "library": library, "pieces": list(pieces)})
    timeout_s = TIMEOUT_S * len(pieces)
    try:
        # Its own process group: on a timeout the helper and the piece's child it waits for go together.
        proc = subprocess.Popen(helper_command(), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        raise EspeakEventsError(f"the libespeak-ng helper could not be started ({exc})") from exc
    try:
        data, errors = proc.communicate(job.encode("utf-8"), timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        many = f"{len(pieces)} sentences" if len(pieces) > 1 else "one sentence"
        raise EspeakEventsError(f"libespeak-ng did not finish {many} within {timeout_s:g} s", lasting=False) from exc
    if proc.returncode != 0:
        err = errors.decode("utf-8", "replace").strip().splitlines()
        raise EspeakEventsError(err[-1] if err else f"the libespeak-ng helper failed ({proc.returncode})",
                                lasting=False)
    out, pos = [], 0
    for piece in pieces:
        newline = data.find(b"\n", pos)
        try:
            info = json.loads(data[pos:newline]) if newline >= 0 else {}
            if "error" in info:
                # Only what the helper says cannot work here lasts; a crash or a failure on this text is this text's.
                raise EspeakEventsError(str(info["error"]), lasting=bool(info.get("lasting")))
            rate, size = int(info["rate"]), int(info["bytes"])
            events = [(int(p), int(n), float(t)) for p, n, t in info["events"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise EspeakEventsError(f"the libespeak-ng helper's answer is cut or garbled ({exc})",
                                    lasting=False) from exc
        samples = data[newline + 1:newline + 1 + size]
        pos = newline + 1 + size
        out.append(Synthesis(samples[:len(samples) // 2 * 2], rate, words_from_events(piece, events)))
    return out


def _bind(path: str) -> Any:
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        raise EspeakEventsError(f"{path} could not be loaded ({exc}); install libespeak-ng1 "
                                "(apt-get install espeak-ng)") from exc
    missing = [name for name in ("espeak_Initialize", "espeak_SetSynthCallback", "espeak_SetVoiceByName",
                                 "espeak_SetParameter", "espeak_Synth") if not hasattr(lib, name)]
    if missing:
        raise EspeakEventsError(f"{path} is not libespeak-ng (it has no {missing[0]}); install libespeak-ng1 "
                                "(apt-get install espeak-ng)")
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    lib.espeak_Synth.restype = ctypes.c_int
    return lib


def _run(voice_file: str, wpm: int, library: str, text: bytes) -> tuple[int, list[list[float]], list[bytes]]:
    """In the child: one synthesis through the library -> (rate, word events, audio blocks)."""
    lib = _bind(library)
    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, INITIALIZE_DONT_EXIT)
    if rate <= 0:
        raise EspeakEventsError(f"{library} did not initialise (is espeak-ng-data installed?)")
    blocks: list[bytes] = []
    events: list[list[float]] = []

    def on_synth(wav: Any, count: int, event: Any) -> int:
        if wav and count > 0:
            blocks.append(ctypes.string_at(wav, count * 2))
        i = 0
        while event[i].type != EVENT_LIST_TERMINATED:
            if event[i].type == EVENT_WORD:
                events.append([event[i].text_position, event[i].length, event[i].audio_position / 1000])
            i += 1
        return 0

    callback = _CALLBACK(on_synth)
    lib.espeak_SetSynthCallback(callback)
    if lib.espeak_SetVoiceByName(voice_file.encode("utf-8")) != 0:
        raise EspeakEventsError(f"libespeak-ng has no voice file {voice_file!r}")
    lib.espeak_SetParameter(ESPEAK_RATE, wpm, 0)
    data = text + b"\0"
    status = lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, SYNTH_FLAGS, None, None)
    if status != 0:
        raise EspeakEventsError(f"libespeak-ng refused the text (error {status})", lasting=False)
    return rate, events, blocks


def _piece(voice_file: str, wpm: int, library: str, text: str) -> bytes:
    """In a forked child of the helper: one piece -> its header line and samples (or an error header)."""
    try:
        rate, events, blocks = _run(voice_file, wpm, library, text.encode("utf-8"))
    except EspeakEventsError as exc:
        return json.dumps({"error": str(exc), "lasting": exc.lasting}).encode("ascii") + b"\n"
    audio = b"".join(blocks)
    return json.dumps({"rate": rate, "events": events, "bytes": len(audio)}).encode("ascii") + b"\n" + audio


def _forked(job: dict[str, Any], text: str) -> bytes:
    """One piece in a child forked before the library is initialised, so each piece starts from the library's
    first-synthesis state, as the program does (module docstring); a crash there is that piece's error."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: nothing but this piece, then gone without Python's exit handlers
        os.close(read)
        status = 1  # an uncaught error (its traceback on stderr) is this piece's failure
        try:
            answer = _piece(job["voice_file"], int(job["wpm"]), job["library"], text)
            with os.fdopen(write, "wb") as pipe:
                pipe.write(answer)
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read()
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0 or b"\n" not in answer:
        why = f"signal {-code}" if code < 0 else f"exit {code}"
        return json.dumps({"error": f"libespeak-ng failed on this text ({why})", "lasting": False}).encode() + b"\n"
    return answer


def main() -> int:
    """The helper: a job {voice_file, wpm, library, pieces} as JSON on stdin -> per piece a header line
    ({rate, events: [[text_position, length, seconds]...], bytes} or {error, lasting}) and its s16le samples on
    stdout; it stops after the first error."""
    job = json.loads(sys.stdin.buffer.read())
    out = sys.stdout.buffer
    for text in job["pieces"]:
        answer = _forked(job, text)
        out.write(answer)
        if answer.startswith(b'{"error"'):
            break
    out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
