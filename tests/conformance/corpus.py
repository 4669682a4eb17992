"""A corpus of files made by real encoders (lame, flac, opusenc, ffmpeg, sox: the Debian packages that
`make conformance` installs) from a short speech-like signal, generated at test time into
$VOICEGUI_CONFORMANCE_CACHE/corpus-<CORPUS_VERSION> (never committed) and reused while the case list is
unchanged. Each case is one response body; a back-to-back case is several whole files in one body, as some
servers send one file per sentence.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.conformance.servers import CACHE
from voicegui.server.benchclip import speech_like
from voicegui.wavfile import write_wav

CORPUS_VERSION = 3  # bump when a case's recipe changes: the cached files are made again
SECONDS = 1.5
RATE = 24000
TOOLS = ("lame", "flac", "metaflac", "opusenc", "ffmpeg", "sox")

Recipe = Callable[[Path, Path, Path], list[str]]  # (source wav, cover png, output) -> argv


@dataclass(frozen=True)
class Case:
    name: str
    fmt: str  # what voicegui is asked for (--format) and should detect
    recipe: Recipe
    parts: int = 1  # > 1: that many files, from different sources, back to back in one body
    suffix: str = ""
    piped: bool = False  # the encoder writes to stdout (a pipe: no seeking back to fill in sizes)


def _ff(*args: str, pipe: bool = False) -> Recipe:
    return lambda src, cover, out: ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(src), *args,
                                    "pipe:1" if pipe else str(out)]


CASES: tuple[Case, ...] = (
    # lame: CBR, VBR (Xing header), ID3v2 with cover art, ID3v1 tail, CRC-protected frames
    Case("lame-cbr", "mp3", lambda s, c, o: ["lame", "--quiet", "-b", "64", str(s), str(o)]),
    Case("lame-vbr", "mp3", lambda s, c, o: ["lame", "--quiet", "-V", "4", str(s), str(o)]),
    Case("lame-id3v2-cover", "mp3", lambda s, c, o: ["lame", "--quiet", "-b", "64", "--add-id3v2", "--tt",
                                                     "Conformance", "--ti", str(c), str(s), str(o)]),
    Case("lame-id3v1", "mp3", lambda s, c, o: ["lame", "--quiet", "-b", "64", "--id3v1-only", "--tt",
                                               "Conformance", str(s), str(o)]),
    Case("lame-crc", "mp3", lambda s, c, o: ["lame", "--quiet", "-b", "64", "-p", str(s), str(o)]),
    # flac: block sizes, a big PADDING block, a PICTURE block
    Case("flac-b1152", "flac", lambda s, c, o: ["flac", "-s", "-f", "-b", "1152", "-o", str(o), str(s)]),
    Case("flac-b4096", "flac", lambda s, c, o: ["flac", "-s", "-f", "-b", "4096", "-o", str(o), str(s)]),
    Case("flac-b4608", "flac", lambda s, c, o: ["flac", "-s", "-f", "-b", "4608", "-o", str(o), str(s)]),
    Case("flac-padding", "flac", lambda s, c, o: ["flac", "-s", "-f", "--padding=65536", "-o", str(o), str(s)]),
    Case("flac-picture", "flac", lambda s, c, o: ["flac", "-s", "-f", f"--picture={c}", "-o", str(o), str(s)]),
    # opusenc: cover art (a big OpusTags packet over several pages), low and high bitrates
    Case("opusenc-cover", "opus", lambda s, c, o: ["opusenc", "--quiet", "--picture", str(c), str(s), str(o)]),
    Case("opusenc-16k", "opus", lambda s, c, o: ["opusenc", "--quiet", "--bitrate", "16", str(s), str(o)]),
    Case("opusenc-128k", "opus", lambda s, c, o: ["opusenc", "--quiet", "--bitrate", "128", str(s), str(o)]),
    # ffmpeg: ADTS aac, mp3, wav sample formats (>16 bits: WAVE_FORMAT_EXTENSIBLE), LIST INFO before data,
    # stereo
    Case("ffmpeg-aac-adts", "aac", _ff("-c:a", "aac", "-b:a", "64k", "-f", "adts")),
    Case("ffmpeg-mp3", "mp3", _ff("-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3")),
    Case("ffmpeg-wav-s16", "wav", _ff("-c:a", "pcm_s16le", "-f", "wav")),
    Case("ffmpeg-wav-s24-extensible", "wav", _ff("-c:a", "pcm_s24le", "-f", "wav")),
    Case("ffmpeg-wav-s32-extensible", "wav", _ff("-c:a", "pcm_s32le", "-f", "wav")),
    Case("ffmpeg-wav-f32", "wav", _ff("-c:a", "pcm_f32le", "-f", "wav")),
    Case("ffmpeg-wav-list-info", "wav", _ff("-c:a", "pcm_s16le", "-metadata", "title=Conformance",
                                            "-metadata", "artist=voicegui", "-f", "wav")),
    Case("ffmpeg-wav-stereo", "wav", _ff("-c:a", "pcm_s16le", "-ac", "2", "-f", "wav")),
    Case("ffmpeg-wav-odd-chunk", "wav", _ff("-c:a", "pcm_s16le", "-f", "wav"), suffix="odd-chunk"),
    # written to a pipe, as a server that encodes while it streams does: wav sizes left unknown, no Xing frame,
    # a STREAMINFO without the total sample count
    Case("ffmpeg-wav-pipe", "wav", _ff("-c:a", "pcm_s16le", "-f", "wav", pipe=True), piped=True),
    Case("ffmpeg-mp3-pipe", "mp3", _ff("-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3", pipe=True), piped=True),
    Case("ffmpeg-flac-pipe", "flac", _ff("-c:a", "flac", "-f", "flac", pipe=True), piped=True),
    Case("ffmpeg-opus-pipe", "opus", _ff("-c:a", "libopus", "-b:a", "32k", "-f", "ogg", pipe=True), piped=True),
    # sox
    Case("sox-wav", "wav", lambda s, c, o: ["sox", str(s), "-b", "16", str(o)]),
    Case("sox-wav-s24", "wav", lambda s, c, o: ["sox", str(s), "-b", "24", str(o)]),
    Case("sox-flac", "flac", lambda s, c, o: ["sox", str(s), str(o)]),
    # several whole files in one body
    Case("b2b-wav", "wav", lambda s, c, o: ["sox", str(s), "-b", "16", str(o)], parts=2),
    Case("b2b-flac", "flac", lambda s, c, o: ["flac", "-s", "-f", "-o", str(o), str(s)], parts=2),
    Case("b2b-mp3", "mp3", lambda s, c, o: ["lame", "--quiet", "-b", "64", str(s), str(o)], parts=2),
    Case("b2b-ogg", "opus", lambda s, c, o: ["opusenc", "--quiet", str(s), str(o)], parts=2),
)
EXTENSION = {"mp3": ".mp3", "flac": ".flac", "opus": ".opus", "aac": ".aac", "wav": ".wav"}


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def _insert_odd_chunk(path: Path) -> None:
    """Put a 3-byte chunk (plus its pad byte, as RIFF requires) between `fmt ` and the next chunk of a
    canonical ffmpeg wav, and fix the RIFF size: a reader that ignores the pad byte loses the data chunk."""
    data = path.read_bytes()
    at = data.index(b"fmt ")
    end = at + 8 + int.from_bytes(data[at + 4 : at + 8], "little")
    chunk = b"odd " + (3).to_bytes(4, "little") + b"abc" + b"\0"
    body = data[:end] + chunk + data[end:]
    path.write_bytes(body[:4] + (len(body) - 8).to_bytes(4, "little") + body[8:])


def _run(argv: list[str], stdout: Path | None = None) -> None:
    with open(stdout, "wb") if stdout else contextlib.nullcontext() as sink:
        res = subprocess.run(argv, stdout=sink if stdout else subprocess.DEVNULL, stderr=subprocess.PIPE,
                             timeout=120)
    if res.returncode != 0:
        problem = res.stderr.decode(errors="replace").strip()[-2000:]
        raise RuntimeError(f"{' '.join(argv)} failed ({res.returncode}): {problem}")


def build(root: Path | None = None) -> Path:
    """Make every case's files under `root` (default: the cache) unless there already; returns the folder.
    Files: <case>.<n><ext> for each part, and <case>.body (the parts back to back: the response body)."""
    root = root or CACHE / f"corpus-{CORPUS_VERSION}"
    done = root / ".complete"
    if done.is_file():
        return root
    for old in root.parent.glob("corpus-*"):  # earlier versions' files
        if old != root:
            shutil.rmtree(old, ignore_errors=True)
    work = root.with_name(root.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    sources = []
    for seed in (7, 8):
        src = work / f"source-{seed}.wav"
        write_wav(src, speech_like(SECONDS, RATE, seed=seed), RATE)
        sources.append(src)
    cover = work / "cover.png"
    _run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=300x300",
          "-frames:v", "1", str(cover)])
    for case in CASES:
        body = bytearray()
        for n in range(case.parts):
            out = work / f"{case.name}.{n}{EXTENSION[case.fmt]}"
            argv = case.recipe(sources[n], cover, out)
            _run(argv, stdout=out if case.piped else None)
            if case.suffix == "odd-chunk":
                _insert_odd_chunk(out)
            body += out.read_bytes()
        (work / f"{case.name}.body").write_bytes(bytes(body))
    (work / ".complete").touch()
    shutil.rmtree(root, ignore_errors=True)
    work.rename(root)
    return root


def part_files(root: Path, case: Case) -> list[Path]:
    return [root / f"{case.name}.{n}{EXTENSION[case.fmt]}" for n in range(case.parts)]
