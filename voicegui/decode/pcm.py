"""pcm and wav backends of the decoder: raw s16le pcm, and RIFF/RF64 WAVE walked chunk by chunk up to 'data'.

Both parse the bytes here (no PyAV): a trailing partial sample is carried to the next feed; integer samples are
scaled exactly (s16 / 32768). Where a wav file ends, the next may begin (servers that send one file per
sentence): after a 'data' chunk of known size, trailing chunks are skipped and a new file's start is handed back
in `rest`; in a 'data' chunk of unknown size (a streaming header: 0 or 0xFFFFFFFF), a RIFF/WAVE header with a sane
'fmt ' chunk at a sample-frame-aligned position ends the audio there (so its 44 bytes never play as a click).
Like every backend, `feed(bytes)` and `flush()` return a list of float32 mono arrays
at `rate` (None until known), and `flush()` sets `truncated` if the stream ended inside a sample or header.

Threads: decoders are plain synchronous objects owned by whoever feeds them (the asyncio loop thread in voicegui);
no threads of their own, no locks.
"""

from __future__ import annotations

import re

import numpy as np

from voicegui.decode.boundaries import FILE_START_BYTES, file_start, riff_wave_header
from voicegui.decode.errors import DecodeError
from voicegui.decode.samples import EMPTY, to_float_mono
from voicegui.formats import PCM_RATE  # raw pcm carries no header: OpenAI and Kokoro send 24 kHz mono s16le

_STARTS = re.compile(rb"RIFF|RF64|fLaC|OggS|ID3|\x1a\x45\xdf\xa3|ftyp|\xff")


class _Pcm:
    """Little-endian interleaved integer/float PCM -> float32 mono, carrying a partial sample frame."""

    def __init__(self, width: int, channels: int, is_float: bool) -> None:
        self._width = width
        self._channels = channels
        self._float = is_float
        self._block = width * channels
        self._carry = b""

    @property
    def carry(self) -> int:
        return len(self._carry)

    def convert(self, data: bytes) -> np.ndarray:
        if self._carry:
            data = self._carry + data
        usable = len(data) - len(data) % self._block
        self._carry = data[usable:]
        if not usable:
            return EMPTY
        raw = memoryview(data)[:usable]
        w = self._width
        if self._float:
            arr = np.frombuffer(raw, dtype="<f4" if w == 4 else "<f8")
        elif w == 1:
            arr = np.frombuffer(raw, dtype=np.uint8)
        elif w == 2:
            arr = np.frombuffer(raw, dtype="<i2").astype(np.int16)
        elif w == 3:
            b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
            arr = (b[:, 0] << 8 | b[:, 1] << 16 | b[:, 2] << 24).astype(np.int32)  # left-aligned in int32
        else:
            arr = np.frombuffer(raw, dtype="<i4").astype(np.int32)
        return to_float_mono(arr.reshape(-1, self._channels).T)


class PcmBackend:
    """Raw pcm: s16le at `rate` (PCM_RATE unless the response said otherwise), no header; channels mixed down."""

    start_trimmed_s = 0.0  # nothing of the stream's start is dropped

    def __init__(self, rate: int = PCM_RATE, channels: int = 1) -> None:
        self.rate: int | None = rate
        self.truncated = False
        self.rest: bytes | None = None  # raw pcm has no file boundaries
        self._pcm = _Pcm(2, channels, False)

    def feed(self, data: bytes) -> list[np.ndarray]:
        return [self._pcm.convert(data)]

    def flush(self) -> list[np.ndarray]:
        self.truncated = self._pcm.carry > 0
        return []

    def waiting_on(self) -> str:
        return "pcm bytes that made no samples"  # cannot happen: every second byte completes a sample


class WavBackend:
    """RIFF/RF64 WAVE: walks chunks up to 'data' (skipping LIST etc. without storing them), then PCM; after the
    audio, the start of another file is handed back in `rest`."""

    _UNKNOWN_SIZES = (0, 0xFFFFFFFF)
    start_trimmed_s = 0.0  # nothing of the stream's start is dropped

    def __init__(self) -> None:
        self.rate: int | None = None
        self.truncated = False
        self.rest: bytes | None = None
        self._held = bytearray()  # streamed data from a frame-aligned position that may be a RIFF header
        self._block = 1  # bytes per sample frame
        self._trailer = bytearray()  # bytes after a sized 'data' chunk: trailing chunks, or the next file
        self._trailer_skip = 0
        self._head = bytearray()
        self._stage = "riff"
        self._skip = 0
        self._pcm: _Pcm | None = None
        self._data_left: int | None = None  # None: size unknown (streamed), play to the end
        self._fmt: tuple[int, int, int, int] | None = None
        self._chunk_id = b""  # the chunk being skipped (for the message when it never ends)

    def feed(self, data: bytes) -> list[np.ndarray]:
        if self.rest is not None:
            raise RuntimeError("feed() after the next file began")
        if self._stage == "data":
            return [self._data(data)]
        self._head += data
        while self._stage != "data":
            if not self._header_step():
                return []
        rest = bytes(self._head)
        self._head.clear()
        return [self._data(rest)]

    def _header_step(self) -> bool:
        head = self._head
        if self._stage == "riff":
            if len(head) < 12:
                return False
            if head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
                raise DecodeError("the wav stream has no RIFF/WAVE header")
            del head[:12]
            self._stage = "chunk"
            return True
        if self._stage == "skip":
            n = min(self._skip, len(head))
            del head[:n]
            self._skip -= n
            if self._skip:
                return False
            self._stage = "chunk"
            return True
        if len(head) < 8:
            return False
        cid, size = bytes(head[:4]), int.from_bytes(head[4:8], "little")
        if cid == b"data":
            if self._fmt is None:
                raise DecodeError("the wav stream has audio data before its 'fmt ' chunk")
            del head[:8]
            self._start_data(size)
            return True
        if cid == b"fmt ":
            if size < 16 or size > 1024:
                raise DecodeError("the wav stream has an invalid 'fmt ' chunk")
            if len(head) < 8 + size:
                return False
            self._parse_fmt(bytes(head[8 : 8 + size]))
            del head[: 8 + size]
            self._skip = size & 1  # pad byte of an odd-sized chunk
            self._stage = "skip" if self._skip else "chunk"
            return True
        if size == 0xFFFFFFFF:
            raise DecodeError(f"the wav stream has a chunk {cid!r} of unknown size before its audio")
        del head[:8]
        self._chunk_id = cid
        self._skip = size + (size & 1)  # chunks are padded to even length
        self._stage = "skip" if self._skip else "chunk"
        return True

    def _parse_fmt(self, body: bytes) -> None:
        tag = int.from_bytes(body[0:2], "little")
        channels = int.from_bytes(body[2:4], "little")
        rate = int.from_bytes(body[4:8], "little")
        bits = int.from_bytes(body[14:16], "little")
        if tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag leads the sub-format GUID
            tag = int.from_bytes(body[24:26], "little")
        if channels < 1 or not 1000 <= rate <= 768000:
            raise DecodeError(f"the wav stream has an invalid format ({channels} channels, {rate} Hz)")
        if tag == 1 and bits in (8, 16, 24, 32):
            is_float = False
        elif tag == 3 and bits in (32, 64):
            is_float = True
        else:
            raise DecodeError(f"the wav stream uses an unsupported encoding (format tag {tag}, {bits} bits)")
        self._fmt = (tag, channels, rate, bits)
        self._block = channels * bits // 8
        self._pcm = _Pcm(bits // 8, channels, is_float)
        self.rate = rate

    def _start_data(self, size: int) -> None:
        self._stage = "data"
        # streamed wav writes 0 or 0xFFFFFFFF (RF64 too, its real size is in 'ds64'): then play to the end
        self._data_left = None if size in self._UNKNOWN_SIZES else size

    def _data(self, data: bytes) -> np.ndarray:
        assert self._pcm is not None
        if self._data_left is None:
            return self._streamed(data)
        if self._data_left == 0:
            self._after_data(data)
            return EMPTY
        audio = data[: self._data_left]
        self._data_left -= len(audio)
        if len(data) > len(audio):
            self._after_data(data[len(audio) :])  # bytes after the data chunk (trailing LIST, id3, next file)
        return self._pcm.convert(audio) if audio else EMPTY

    def _streamed(self, data: bytes) -> np.ndarray:
        """Data of unknown length: play it up to a RIFF/WAVE header at a frame-aligned position (the next file).
        Bytes from an aligned position that may still become such a header are held until they decide."""
        assert self._pcm is not None
        buf = self._held + data if self._held else data
        self._held = bytearray()
        block = self._block
        base = self._pcm.carry  # the carried partial frame: aligned positions in buf are base-shifted
        start = (-base) % block
        cut = len(buf)
        for magic in (b"RIFF", b"RF64"):
            at = buf.find(magic[:1], start)
            while 0 <= at < cut:
                if (at - start) % block == 0 and (at + 4 > len(buf) or buf[at : at + 4] == magic):
                    verdict = riff_wave_header(buf, at)
                    if verdict is None:
                        cut = at
                        self._held = bytearray(buf[at:])
                        break
                    if verdict:
                        cut = at
                        self.rest = bytes(buf[at:])
                        break
                at = buf.find(magic[:1], at + 1)
        if self.rest is not None:
            self._held = bytearray()
        return self._pcm.convert(bytes(buf[:cut])) if cut else EMPTY

    def _after_data(self, data: bytes) -> None:
        """After a sized 'data' chunk: skip trailing chunks (LIST, id3, ...) and junk; a new file's start ends
        this one (`rest`)."""
        buf = self._trailer
        buf += data
        while buf:
            if self._trailer_skip:
                n = min(self._trailer_skip, len(buf))
                del buf[:n]
                self._trailer_skip -= n
                continue
            verdict = file_start(buf)
            if verdict is None and len(buf) < FILE_START_BYTES:
                return
            if verdict:
                self.rest = bytes(buf)
                buf.clear()
                return
            if len(buf) < 8:
                return
            cid = bytes(buf[:4])
            if all(32 <= b < 127 for b in cid):  # a chunk: skip it (padded to even length)
                size = int.from_bytes(buf[4:8], "little")
                del buf[:8]
                self._trailer_skip = size + (size & 1)
                self._chunk_id = cid
            else:  # junk between files: skip to the next place a file may start
                found = _STARTS.search(buf, 1)
                at = len(buf) - FILE_START_BYTES if found is None else found.start()
                if found is not None and found.group() == b"ftyp":
                    at -= 4
                del buf[: max(1, at)]

    def waiting_on(self) -> str:
        """What the bytes without audio went into (for StreamDecoder's message)."""
        if self._stage == "skip":
            name = self._chunk_id.decode("latin-1").strip() or "?"
            return f"a wav {name!r} chunk that never ends"
        if self._stage == "data" and self._data_left == 0:
            if self._trailer_skip:
                name = self._chunk_id.decode("latin-1").strip() or "?"
                return f"a wav {name!r} chunk after the audio that never ends"
            return "bytes after the end of the wav 'data' chunk"
        return "a wav header that never ends" if self._stage != "data" else "wav data that made no samples"

    def flush(self) -> list[np.ndarray]:
        if self._stage != "data":
            self.truncated = True
            return []
        assert self._pcm is not None
        out = [self._pcm.convert(bytes(self._held))] if self._held and self.rest is None else []
        self._held = bytearray()
        self.truncated = self._pcm.carry > 0 or bool(self._data_left)
        return out
