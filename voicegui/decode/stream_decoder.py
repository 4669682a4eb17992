"""Incremental audio decoders for what /v1/audio/speech servers send: pcm, wav, mp3, aac (ADTS), flac, opus (Ogg).

`create_decoder(fmt)` returns a StreamDecoder; `feed(bytes)` returns float32 mono samples as soon as a whole
sample / frame / packet is in, `flush()` drains at end of stream. The container is identified here from the first
bytes (the server may send something other than what was asked; we play it and say so), and a body that is text
(a JSON or HTML error) or garbage becomes a DecodeError quoting it. ID3v2 tags are skipped here before any backend
sees them (without storing them: they may hold cover art). Then one backend per format does the decoding, each
chosen for at most one frame of delay (measured with tests/decode/audio_samples.py):
- pcm, wav: decode.pcm (parsed by hand, exact).
- mp3, aac: decode.mpeg (PyAV raw parser + decoder; mpeg_frames reads the frame headers).
- flac: decode.flac (flac_frames cuts whole frames, PyAV decodes; exact).
- opus: decode.opus (ogg cuts packets, PyAV decodes; pre-skip and end trimmed there).
decode.codec holds the PyAV helpers they share, decode.samples the conversion to float32 mono, decode.errors
DecodeError (re-exported here). The same bytes always become the same packets for the same decoder, so any split
of the input gives the same samples.

Imports: each backend, and PyAV with it, is imported by the first decoder that meets its format: a pcm or wav
body never loads FFmpeg (~14 MB mapped, ~60-80 ms to import).
Threads: everything runs on the thread that calls feed()/flush() (the asyncio loop thread in voicegui); no threads
of its own, no locks. Memory: bounded by one frame/packet plus small headers; the stream is never kept whole.
A hostile or broken body must not be read forever either: once `max_bytes_without_audio` bytes
(limits.MAX_BYTES_WITHOUT_AUDIO, 1 MiB) went in with no sample coming out, before the first audio or between
two frames, feed() raises a DecodeError naming what swallowed them (a wav 'junk' chunk that never ends, an
endless ID3 tag, Ogg header pages only, ...). That also bounds what any backend can buffer between frames.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TYPE_CHECKING, Protocol

import numpy as np

from voicegui.decode.boundaries import CONTAINER_NAMES as NAMES, file_start
from voicegui.decode.errors import DecodeError
from voicegui.decode.mpeg_framer import find_run
from voicegui.decode.mpeg_frames import frame_len, mpeg_codec, sync_kind
from voicegui.decode.pcm import PCM_RATE, PcmBackend, WavBackend
from voicegui.decode.samples import EMPTY
from voicegui.formats import FORMATS
from voicegui.limits import MAX_BYTES_WITHOUT_AUDIO

if TYPE_CHECKING:
    from voicegui.decode.codec import Resampler

__all__ = ["FORMATS", "PCM_RATE", "DecodeError", "StreamDecoder", "create_decoder"]

log = logging.getLogger(__name__)


_TEXT_PROBE = 64  # bytes looked at to decide that a body starting with '{' or '<' is text
_JUNK_LIMIT = 8192  # bytes of junk before the first mp3/ADTS frame that we look through


# The backend module each requested format will most likely need (the body decides: a server may send another).
_BACKEND_MODULES = {"mp3": "voicegui.decode.mpeg", "aac": "voicegui.decode.mpeg", "flac": "voicegui.decode.flac",
                    "opus": "voicegui.decode.opus"}


def backend_to_import(requested_format: str) -> str | None:
    """The backend module `requested_format` will need, and PyAV with it (~60-80 ms to import), if it is not
    imported yet; None when there is nothing to import (pcm and wav need no backend module). Import it from a
    worker thread while the request is out, so the first chunk finds it loaded."""
    module = _BACKEND_MODULES.get(requested_format.lower().strip())
    return None if module is None or module in sys.modules else module


def create_decoder(requested_format: str, output_rate: int | None = None,
                   max_bytes_without_audio: int = MAX_BYTES_WITHOUT_AUDIO) -> StreamDecoder:
    """A fresh incremental decoder for one response body of `requested_format`."""
    fmt = requested_format.lower().strip()
    if fmt not in FORMATS:
        raise ValueError(f"unknown audio format {requested_format!r}; expected one of {', '.join(FORMATS)}")
    if output_rate is not None and output_rate <= 0:
        raise ValueError(f"output_rate must be positive, got {output_rate}")
    return StreamDecoder(fmt, output_rate, max_bytes_without_audio)


# ---------------------------------------------------------------------------------------------------------------
# sniffing (the frame headers of mp3 and aac are read in mpeg_frames)


def _text_error(head: bytes) -> DecodeError:
    text = head.decode("ascii", "replace")
    snippet = re.sub(r"\s+", " ", text).strip()
    if len(snippet) > 80:
        snippet = snippet[:77] + "..."
    kind = ("a JSON body" if snippet.startswith(("{", "[")) else
            "an HTML/XML page" if snippet.startswith("<") else "text")
    return DecodeError(f"the server sent {kind} instead of audio: {snippet}")


def _size(n: int) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):g} MB"
    return f"{n / 1024:g} KB" if n >= 1024 else f"{n} bytes"


def _looks_like_text(head: bytes | bytearray) -> bool:
    stripped = bytes(head).lstrip(b" \t\r\n\xef\xbb\xbf")
    if not stripped or stripped[:1] not in (b"{", b"<"):
        return False
    return all(32 <= b < 127 or b in (9, 10, 13) for b in head[:_TEXT_PROBE])


# ---------------------------------------------------------------------------------------------------------------
# backends: feed(bytes) -> list of float32 mono arrays at `rate` (decode.pcm, decode.mpeg, decode.flac, decode.opus)


class _Backend(Protocol):
    rate: int | None
    truncated: bool
    rest: bytes | None  # set by feed(): the bytes from where a new file starts (its own segment)

    def feed(self, data: bytes) -> list[np.ndarray]: ...

    def flush(self) -> list[np.ndarray]: ...

    def waiting_on(self) -> str: ...

    @property
    def start_trimmed_s(self) -> float: ...  # stream time dropped before the first sample so far


# ---------------------------------------------------------------------------------------------------------------
# the public decoder


class StreamDecoder:
    """Incremental decoder for one response body. Not thread-safe: feed/flush from one thread."""

    def __init__(self, requested_format: str, output_rate: int | None = None,
                 max_bytes_without_audio: int = MAX_BYTES_WITHOUT_AUDIO) -> None:
        self.requested_format = requested_format
        self.detected_format: str | None = None
        self.format_mismatch: str | None = None
        self.sample_rate: int | None = None
        self.truncated = False
        self._output_rate = output_rate
        self._backend: _Backend | None = None
        self._head = bytearray()  # bytes held until the container is identified (a few dozen at most)
        self._id3_left = 0  # bytes of an ID3v2 tag still to skip
        self._fed = 0
        self._max_without_audio = max_bytes_without_audio
        self._without_audio = 0  # bytes fed since the last feed that gave samples
        self._samples = 0
        self._resampler: Resampler | None = None
        self._resampler_in = 0  # the native rate the resampler takes
        self.segments = 0  # files in the body so far (several when a server sends one file per sentence)
        self._cut_segment = False  # an earlier segment ended inside a frame/sample before the next file began
        self._failed: DecodeError | None = None
        self._done = False
        self._raw_rate = PCM_RATE  # what a raw pcm body is taken to be (set_raw_pcm_format)
        self._raw_channels = 1
        self._sync_at = 0  # where the first mp3/ADTS frame header is in the held bytes (after junk)

    # -- public ----------------------------------------------------------------------------------------------

    def set_raw_pcm_format(self, rate: int | None = None, channels: int | None = None) -> None:
        """What a raw pcm body is, when the response (or the user) says (default: PCM_RATE, mono). Call
        before the first feed(); containers (wav, flac, ...) carry their own and ignore this."""
        if self._fed:
            raise RuntimeError("set_raw_pcm_format() after feed()")
        if rate is not None:
            if rate <= 0:
                raise ValueError(f"rate must be positive, got {rate}")
            self._raw_rate = rate
        if channels is not None:
            if channels <= 0:
                raise ValueError(f"channels must be positive, got {channels}")
            self._raw_channels = channels

    def feed(self, data: bytes) -> np.ndarray:
        """Decode what `data` completes; float32 mono in [-1, 1] at `sample_rate`, possibly empty."""
        if self._done:
            raise RuntimeError("feed() after flush()")
        if self._failed is not None:
            raise self._failed
        if not data:
            return EMPTY
        try:
            self._fed += len(data)
            chunks = self._feed(bytes(data))
            if any(len(c) for c in chunks):
                self._without_audio = 0
            else:
                self._without_audio += len(data)
                if self._without_audio > self._max_without_audio:
                    raise self._no_audio_error()
            return self._join(chunks)
        except DecodeError as exc:
            self._failed = exc
            raise

    @property
    def codec_delay_s(self) -> float:
        """Stream time dropped before the first sample so far: an mp3's encoder and decoder delay (what its LAME
        tag states plus 529 samples), an Ogg Opus pre-skip; 0 for formats that drop nothing. The server sent it
        as stream time, so the prebuffer policy counts it as delivered (PrebufferPolicy.on_codec_delay)."""
        return 0.0 if self._backend is None else self._backend.start_trimmed_s

    def flush(self) -> np.ndarray:
        """End of stream: the remaining audio. Raises DecodeError if the stream held no audio at all."""
        if self._done:
            return EMPTY
        self._done = True
        if self._failed is not None:
            raise self._failed
        if self._fed == 0:
            raise DecodeError("the server sent no audio")
        chunks: list[np.ndarray] = []
        if self._backend is None:
            chunks += self._pump(self._decide(final=True))
        if self._backend is not None:
            chunks += self._at_rate(self._backend.flush(), self._backend.rate)
            self.truncated = self._backend.truncated or self._cut_segment
        if self._resampler is not None:
            chunks += self._resampler.drain()
        out = self._join(chunks)
        if self._samples == 0:
            where = "inside its header" if self._backend is None or self.truncated else "without any audio"
            raise DecodeError(f"the server sent no audio (the {self._label()} stream ended {where})")
        return out

    # -- internals -------------------------------------------------------------------------------------------

    def _no_audio_error(self) -> DecodeError:
        """Too many bytes with no audio: name what swallowed them, so the user can tell the server's fault."""
        if self._backend is not None:
            what = self._backend.waiting_on()
        elif self._id3_left:
            what = "an ID3 tag that never ends"
        else:
            what = "bytes that start no known audio format"
        size = _size(self._max_without_audio)
        return DecodeError(f"the server sent more than {size} without any audio in it ({what}); "
                           "voicegui stopped reading it")

    def _label(self) -> str:
        return self.detected_format or self.requested_format

    def _feed(self, data: bytes) -> list[np.ndarray]:
        """Output-rate chunks for `data`."""
        if self._backend is not None:
            return self._pump(self._backend.feed(data))
        if self._id3_left:
            n = min(self._id3_left, len(data))
            self._id3_left -= n
            data = data[n:]
        self._head += data
        return self._pump(self._decide(final=False))

    def _pump(self, chunks: list[np.ndarray]) -> list[np.ndarray]:
        """Convert the current backend's `chunks`; while it found the start of another file, finish it and start
        the next segment on the bytes from there (a loop: one feed may hold many short files)."""
        backend = self._backend
        out = self._at_rate(chunks, backend.rate if backend is not None else None)
        while backend is not None and backend.rest is not None:
            rest = backend.rest
            out += self._at_rate(backend.flush(), backend.rate)
            if backend.truncated:
                self._cut_segment = True
                log.warning("file %d of the body ended inside a frame before the next file began", self.segments)
            self._backend = None
            self._head = bytearray(rest)
            self.segments += 1
            new = self._decide(final=False)
            backend = self._backend
            out += self._at_rate(new, backend.rate if backend is not None else None)
        return out

    def _decide(self, final: bool) -> list[np.ndarray]:
        """Identify the container from the held bytes; start the backend once it is known."""
        head = self._head
        while True:
            if self._id3_left:
                n = min(self._id3_left, len(head))
                del head[:n]
                self._id3_left -= n
                if self._id3_left:
                    return []
            if len(head) >= 3 and head[:3] == b"ID3":
                if len(head) < 10:
                    if final:
                        break
                    return []
                size = 0
                for b in head[6:10]:
                    size = (size << 7) | (b & 0x7F)  # synchsafe
                self._id3_left = 10 + size + (10 if head[5] & 0x10 else 0)
                self.detected_format = "mp3"  # until the frames say otherwise (ID3 before ADTS is rare)
                continue
            break
        kind = self._identify(bytes(head), final)
        if kind is None:
            return []
        self._start(kind, bytes(head[self._sync_at : self._sync_at + 2]))
        rest = bytes(head)
        head.clear()
        assert self._backend is not None
        return self._backend.feed(rest) if rest else []

    def _identify(self, head: bytes, final: bool) -> str | None:
        """Container name, or None to wait for more bytes. Raises DecodeError for text or garbage."""
        requested = self.requested_format
        if not head:
            return None if not final else requested if requested == "pcm" else None
        if _looks_like_text(head):
            if len(head) >= 2 * _TEXT_PROBE or final:
                raise _text_error(head)
            return None
        # decide only on prefixes that no later byte can change, so every split of the input decides alike
        if head[:1] == b"\x00" or head[:4] == b"\x1a\x45\xdf\xa3"[: len(head)]:
            container = file_start(head, frames=False)  # an MP4 'ftyp' box or a WebM (EBML) header
            if container in ("mp4", "webm"):
                return container
            if container is None and not final:
                return None
        for magic, kind in ((b"OggS", "opus"), (b"fLaC", "flac"), (b"RIFF", "wav"), (b"RF64", "wav"), (b"ID3", "")):
            n = min(len(head), len(magic))
            if head[:n] == magic[:n]:
                if n < len(magic) and not final:
                    return None  # could still be this magic
                if n == len(magic) and kind:
                    return kind
        if head[:1] == b"\xff" and len(head) < 2 and not final:
            return None  # could still be a frame sync
        sync = sync_kind(head)
        if sync is not None:
            if requested != "pcm":
                if len(head) < 7 and not final:
                    return None
                if frame_len(sync, head) is not None:
                    return sync
            else:
                # a pcm sample may look like a frame sync: believe it only if the next frame header follows
                length = frame_len(sync, head) if len(head) >= 7 else None
                if length is None and len(head) < 7 and not final:
                    return None
                if length is not None and len(head) < length + 7 and not final:
                    return None
                if length is not None and sync_kind(head[length:]) == sync and frame_len(sync, head[length:]):
                    return sync
        if requested == "pcm":
            return "pcm"
        found = self._frames_after_junk(head, final)
        if found != "":
            return found
        if final and len(head) < 4:
            raise DecodeError(f"the server sent only {len(head)} bytes, not {requested} audio")
        raise DecodeError(f"the server did not send {requested} audio (the stream starts with {head[:8].hex(' ')})")

    def _frames_after_junk(self, head: bytes, final: bool) -> str | None:
        """mp3/ADTS frames after junk bytes: the kind if a run of valid frames in a row follows (the framer skips
        the junk), None to wait for more bytes, "" if there is none."""
        waiting = False
        best: tuple[int, str] | None = None
        for kind in ("mp3", "aac"):
            pos = find_run(kind, head, 0, final)
            if pos is None:
                waiting = True
            elif pos is not False and (best is None or pos < best[0]):
                best = (int(pos), kind)
        if best is not None and not (waiting and len(head) < _JUNK_LIMIT):
            self._sync_at = best[0]
            log.info("skipping %d bytes before the first %s frame", best[0], best[1])
            return best[1]
        if len(head) < _JUNK_LIMIT and not final:
            return None  # frames may still follow the junk
        return ""

    def _start(self, kind: str, head: bytes) -> None:
        if self.segments == 0:
            self.segments = 1
            self.detected_format = kind
            if kind != self.requested_format:
                sent = f"{NAMES[kind]} audio" if kind in NAMES else kind
                self.format_mismatch = f"asked for {self.requested_format}, the server sent {sent}; playing it anyway"
                log.warning("%s", self.format_mismatch)
        else:
            log.info("file %d of the body starts: %s", self.segments, kind)
            if kind != self.detected_format and self.format_mismatch is None:
                self.format_mismatch = (f"asked for {self.requested_format}, the server sent {self.detected_format} "
                                        f"and then {kind}; playing it anyway")
        if kind == "pcm":
            self._backend = PcmBackend(self._raw_rate, self._raw_channels)
        elif kind == "wav":
            self._backend = WavBackend()
        elif kind == "mp3":
            from voicegui.decode.mpeg import ParsedBackend

            self._backend = ParsedBackend(mpeg_codec(head), "mp3")
        elif kind == "aac":
            from voicegui.decode.mpeg import ParsedBackend

            self._backend = ParsedBackend("aac", "aac")
        elif kind == "flac":
            from voicegui.decode.flac import FlacBackend

            self._backend = FlacBackend()
        elif kind in NAMES:
            from voicegui.decode.container import ContainerBackend

            self._backend = ContainerBackend(kind)
        else:
            from voicegui.decode.opus import OpusBackend

            self._backend = OpusBackend()

    def _at_rate(self, chunks: list[np.ndarray], native: int | None) -> list[np.ndarray]:
        """`chunks` (at the segment's `native` rate) at the decoder's one output rate: `output_rate` if given, else
        the first segment's rate. A later segment at another rate is resampled, so nothing plays at the wrong
        speed; the resampler is kept across segments of the same rate (no seam)."""
        if native is None:
            return [c for c in chunks if len(c)]
        if self.sample_rate is None:
            self.sample_rate = self._output_rate or native
        target = self.sample_rate
        out: list[np.ndarray] = []
        chunks = [c for c in chunks if len(c)]
        if not chunks:
            return out
        if self._resampler is not None and self._resampler_in != native:
            out += self._resampler.drain()  # the previous segment's tail, before this segment's audio
            self._resampler = None
        if native == target:
            return out + chunks
        if self._resampler is None:
            if self._output_rate is None:
                log.info("file %d of the body is at %d Hz, the first at %d Hz: resampled to %d Hz",
                         self.segments, native, target, target)
            from voicegui.decode.codec import Resampler

            self._resampler = Resampler(native, target)
            self._resampler_in = native
        return out + [c for c in self._resampler.push(chunks) if len(c)]

    def _join(self, chunks: list[np.ndarray]) -> np.ndarray:
        """Concatenate and count."""
        chunks = [c for c in chunks if len(c)]
        if self._backend is not None and self._backend.rate is not None and self.sample_rate is None:
            self.sample_rate = self._output_rate or self._backend.rate
        if not chunks:
            return EMPTY
        out = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        self._samples += len(out)
        return out
