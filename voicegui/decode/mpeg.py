"""mp3 and aac (ADTS) backend of the decoder: PyAV's raw parser (`CodecContext.parse`) cuts frames, PyAV decodes.

Measured on av 18.1: the parser emits each frame as soon as its last byte arrives (it reads the frame length from
the header), so no framing of our own. For mp3, a leading Xing/Info frame is skipped together with the encoder delay
its LAME extension records (plus the decoder's 529 samples), as FFmpeg's own mp3 demuxer does. Like every backend,
`feed(bytes)` and `flush()` return a list of float32 mono arrays at `rate` (None until the first frame decodes).

Threads: decoders are plain synchronous objects owned by whoever feeds them (the asyncio loop thread in voicegui);
no threads of their own, no locks.
"""

from __future__ import annotations

import av
import numpy as np

from voicegui.decode.codec import AV_ERRORS, CodecErrors, decode_packet
from voicegui.decode.mpeg_frames import frame_len, sync_kind


def _lame_start_delay(frame: bytes) -> int | None:
    """Samples to drop at the start if `frame` is a Xing/Info tag frame (encoder delay from its LAME extension
    plus the decoder's 529), else None."""
    if len(frame) < 4:
        return None
    version, mono = (frame[1] >> 3) & 3, frame[3] >> 6 == 3
    side = (17 if mono else 32) if version == 3 else (9 if mono else 17)
    pos = 4 + side + (0 if frame[1] & 1 else 2)  # + CRC when the protection bit is 0
    tag = frame[pos : pos + 4]
    if tag not in (b"Xing", b"Info"):
        return None
    flags = int.from_bytes(frame[pos + 4 : pos + 8], "big")
    pos += 8 + (4 if flags & 1 else 0) + (4 if flags & 2 else 0) + (100 if flags & 4 else 0) + (4 if flags & 8 else 0)
    lame = frame[pos : pos + 24]
    if len(lame) == 24 and lame[:4] in (b"LAME", b"Lavf", b"Lavc", b"L3.9"):
        return (int.from_bytes(lame[21:24], "big") >> 12) + 529
    return 529


class ParsedBackend:
    """mp3 / aac: PyAV's raw parser finds frames (measured: it emits each frame as soon as it is complete)."""

    def __init__(self, codec: str, fmt: str) -> None:
        self.rate: int | None = None
        self.truncated = False
        self.rest: bytes | None = None  # bytes from where another file starts (StreamDecoder's next segment)
        self._kind = fmt
        self._dropped = 0
        self._first = True
        self._skip = 0  # decoded samples still to drop (mp3 encoder + decoder delay)
        ctx = av.CodecContext.create(codec, "r")
        assert isinstance(ctx, av.AudioCodecContext)  # mp3float/mp2float/mp1float/aac: audio decoders
        self._ctx = ctx
        self._errors = CodecErrors(fmt)
        self._fed = 0
        self._packeted = 0

    def feed(self, data: bytes) -> list[np.ndarray]:
        self._errors.fed(len(data))
        self._fed += len(data)
        try:
            packets = self._ctx.parse(data)
        except AV_ERRORS as exc:
            self._errors.rejected(exc)
            return []
        return self._decode(packets)

    def _decode(self, packets: list[av.Packet]) -> list[np.ndarray]:
        out = []
        for packet in packets:
            self._packeted += packet.size
            if self._first and self._kind == "mp3":
                self._first = False
                delay = _lame_start_delay(bytes(packet))
                if delay is not None:
                    # a Xing/Info frame is metadata that decodes to silence: skip it, and the encoder delay
                    # it records, as FFmpeg's own mp3 demuxer does
                    self._skip = delay
                    continue
            out += self._trim(decode_packet(self._ctx, packet, self._errors))
        if out and self.rate is None:
            self.rate = self._ctx.sample_rate
        return out

    def _trim(self, chunks: list[np.ndarray]) -> list[np.ndarray]:
        if not self._skip:
            return chunks
        out = []
        for arr in chunks:
            drop = min(self._skip, len(arr))
            self._skip -= drop
            if len(arr) > drop:
                out.append(arr[drop:])
        return out

    def waiting_on(self) -> str:
        return f"bytes with no whole {self._kind} frame in them"

    def flush(self) -> list[np.ndarray]:
        try:
            packets = self._ctx.parse(None)
        except AV_ERRORS:
            packets = []
        whole = []
        for packet in packets:
            # the parser hands out the bytes it holds at the end even if the frame is cut short: decoding
            # that would glitch, so a packet shorter than its header says is dropped and reported
            head = bytes(packet)[:7]
            expected = frame_len(self._kind, head) if sync_kind(head) == self._kind else None
            if expected is not None and packet.size < expected:
                self._dropped += 1
                continue
            whole.append(packet)
        out = self._decode(whole)
        out += decode_packet(self._ctx, None, self._errors)
        if out and self.rate is None:
            self.rate = self._ctx.sample_rate
        # bytes that never became a whole packet: the stream ended inside a frame
        self.truncated = self._dropped > 0 or self._fed > self._packeted
        return out
