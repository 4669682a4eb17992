"""flac backend of the decoder: flac_frames.FlacFrameSplitter cuts whole frames, PyAV's flac decoder decodes them.

FFmpeg's own flac parser reads ~1 s ahead, hence our framer; STREAMINFO is handed to the decoder as extradata.
A frame is decoded as soon as its last byte closes the CRC-16, not only once the next header arrives. Exact.
Like every backend, `feed(bytes)` and `flush()` return a list of float32 mono arrays at `rate` (None until
STREAMINFO is in).

Threads: decoders are plain synchronous objects owned by whoever feeds them (the asyncio loop thread in voicegui);
no threads of their own, no locks.
"""

from __future__ import annotations

import av
import numpy as np

from voicegui.decode.codec import AV_ERRORS, CodecErrors, decode_packet
from voicegui.decode.errors import DecodeError
from voicegui.decode.flac_frames import FlacError, FlacFrameSplitter
from voicegui.decode.samples import BadFrame, frame_to_mono


class FlacBackend:
    """FLAC: whole frames from our framer, decoded with STREAMINFO as extradata."""

    start_trimmed_s = 0.0  # nothing of the stream's start is dropped

    def __init__(self) -> None:
        self.rate: int | None = None
        self.truncated = False
        self.rest: bytes | None = None  # bytes from where another file starts (StreamDecoder's next segment)
        self._split = FlacFrameSplitter()
        self._ctx: av.AudioCodecContext | None = None
        self._errors = CodecErrors("flac")

    def feed(self, data: bytes) -> list[np.ndarray]:
        try:
            frames = self._split.feed(data)
        except FlacError as exc:
            raise DecodeError(f"the flac stream is corrupt: {exc}") from None
        if self._split.rest is not None:
            self.rest = self._split.rest  # another file starts: StreamDecoder makes it the next segment
            return self._decode(frames)
        return self._decode(frames) + self._decode_complete()

    def _decode_complete(self) -> list[np.ndarray]:
        """Decode the buffered frame now if it is already whole, instead of waiting for the next header."""
        candidate = self._split.complete_frame()
        if candidate is None or self._ctx is None:
            return []
        data, block_size = candidate
        try:
            frames = self._ctx.decode(av.Packet(data))
            out = [frame_to_mono(f) for f in frames]
        except (*AV_ERRORS, BadFrame):
            # A chance CRC-16 match inside a frame: not whole yet. It is decoded (and any real fault in it
            # reported) once the next header or the end of the stream delimits it.
            return []
        if sum(map(len, out)) != block_size:
            return []
        self._split.take_complete_frame()
        self._errors.accepted(block_size)
        return out

    def _decode(self, frames: list[bytes]) -> list[np.ndarray]:
        if self._ctx is None and self._split.streaminfo is not None:
            self._ctx = av.CodecContext.create("flac", "r")
            self._ctx.extradata = self._split.streaminfo.raw
            self.rate = self._split.streaminfo.sample_rate
        out = []
        for frame in frames:
            assert self._ctx is not None
            out += decode_packet(self._ctx, av.Packet(frame), self._errors)
        return out

    def waiting_on(self) -> str:
        return self._split.waiting_on()

    def flush(self) -> list[np.ndarray]:
        frames, self.truncated = self._split.flush()
        out = self._decode(frames)
        if self._ctx is not None:
            out += decode_packet(self._ctx, None, self._errors)
        return out
