"""pcm and wav backends of the decoder: raw s16le pcm, and RIFF/RF64 WAVE walked chunk by chunk up to 'data'.

Both parse the bytes here (no PyAV): a trailing partial sample is carried to the next feed; integer samples are
scaled exactly (s16 / 32768). Like every backend, `feed(bytes)` and `flush()` return a list of float32 mono arrays
at `rate` (None until known), and `flush()` sets `truncated` if the stream ended inside a sample or header.

Threads: decoders are plain synchronous objects owned by whoever feeds them (the asyncio loop thread in voicegui);
no threads of their own, no locks.
"""

from __future__ import annotations

import numpy as np

from voicegui.decode.errors import DecodeError
from voicegui.decode.samples import EMPTY, to_float_mono
from voicegui.formats import PCM_RATE  # raw pcm carries no header: OpenAI and Kokoro send 24 kHz mono s16le


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

    def __init__(self, rate: int = PCM_RATE, channels: int = 1) -> None:
        self.rate: int | None = rate
        self.truncated = False
        self._pcm = _Pcm(2, channels, False)

    def feed(self, data: bytes) -> list[np.ndarray]:
        return [self._pcm.convert(data)]

    def flush(self) -> list[np.ndarray]:
        self.truncated = self._pcm.carry > 0
        return []

    def waiting_on(self) -> str:
        return "pcm bytes that made no samples"  # cannot happen: every second byte completes a sample


class WavBackend:
    """RIFF/RF64 WAVE: walks chunks up to 'data' (skipping LIST etc. without storing them), then PCM."""

    _UNKNOWN_SIZES = (0, 0xFFFFFFFF)

    def __init__(self) -> None:
        self.rate: int | None = None
        self.truncated = False
        self._head = bytearray()
        self._stage = "riff"
        self._skip = 0
        self._pcm: _Pcm | None = None
        self._data_left: int | None = None  # None: size unknown (streamed), play to the end
        self._fmt: tuple[int, int, int, int] | None = None
        self._chunk_id = b""  # the chunk being skipped (for the message when it never ends)

    def feed(self, data: bytes) -> list[np.ndarray]:
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
        self._pcm = _Pcm(bits // 8, channels, is_float)
        self.rate = rate

    def _start_data(self, size: int) -> None:
        self._stage = "data"
        # streamed wav writes 0 or 0xFFFFFFFF (RF64 too, its real size is in 'ds64'): then play to the end
        self._data_left = None if size in self._UNKNOWN_SIZES else size

    def _data(self, data: bytes) -> np.ndarray:
        assert self._pcm is not None
        if self._data_left is not None:
            data = data[: self._data_left]  # bytes after the data chunk (trailing LIST, id3) are not audio
            self._data_left -= len(data)
        return self._pcm.convert(data) if data else EMPTY

    def waiting_on(self) -> str:
        """What the bytes without audio went into (for StreamDecoder's message)."""
        if self._stage == "skip":
            name = self._chunk_id.decode("latin-1").strip() or "?"
            return f"a wav {name!r} chunk that never ends"
        if self._stage == "data" and self._data_left == 0:
            return "bytes after the end of the wav 'data' chunk"
        return "a wav header that never ends" if self._stage != "data" else "wav data that made no samples"

    def flush(self) -> list[np.ndarray]:
        if self._stage != "data":
            self.truncated = True
            return []
        assert self._pcm is not None
        self.truncated = self._pcm.carry > 0 or bool(self._data_left)
        return []
