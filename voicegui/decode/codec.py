"""PyAV plumbing shared by the compressed-format backends (mp3/aac, flac, opus) and by StreamDecoder.

- AV_ERRORS: what PyAV raises for a packet it cannot decode.
- CodecErrors: tells a broken stream from the odd damaged packet, and raises DecodeError for the former.
- decode_packet: one packet (or None to drain) -> float32 mono arrays, rejections counted in a CodecErrors.
- Resampler: streaming float32 mono resampler; the same samples in give the same samples out whatever the chunking.

Threads: decoders are plain synchronous objects owned by whoever feeds them (the asyncio loop thread in voicegui);
no threads of their own, no locks.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from voicegui.decode.errors import DecodeError
from voicegui.decode.samples import BadFrame, frame_to_mono

AV_ERRORS = (av.FFmpegError, ValueError)
_MAX_CONSECUTIVE_ERRORS = 8  # codec rejections in a row before we call the stream garbage
_MAX_BYTES_WITHOUT_AUDIO = 1 << 16  # compressed bytes with no decoded frame before we give up


class CodecErrors:
    """Tells a broken stream from the odd damaged packet: many rejections in a row, or many bytes and no audio."""

    def __init__(self, fmt: str) -> None:
        self._fmt = fmt
        self._consecutive = 0
        self._bytes_without_audio = 0
        self.had_audio = False

    def rejected(self, exc: Exception) -> None:
        self._consecutive += 1
        if self._consecutive >= _MAX_CONSECUTIVE_ERRORS:
            reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]  # FFmpeg's text, no errno
            raise DecodeError(f"the {self._fmt} stream is corrupt: the decoder rejected it ({reason})")

    def accepted(self, samples: int) -> None:
        self._consecutive = 0
        if samples:
            self.had_audio = True
            self._bytes_without_audio = 0

    def fed(self, n: int) -> None:
        # no real frame is anywhere near this long, so this many bytes without audio means garbage
        self._bytes_without_audio += n
        if self._bytes_without_audio > _MAX_BYTES_WITHOUT_AUDIO:
            raise DecodeError(f"the {self._fmt} stream is corrupt: {_MAX_BYTES_WITHOUT_AUDIO} bytes without audio")


def decode_packet(ctx: av.AudioCodecContext, packet: av.Packet | None, errors: CodecErrors) -> list[np.ndarray]:
    """Decode `packet` (None: drain the decoder) to float32 mono arrays. A packet the codec rejects, or a frame
    that cannot be trusted, yields nothing and is counted in `errors` (which raises DecodeError once too many are)."""
    out: list[np.ndarray] = []
    try:
        frames = ctx.decode(packet)
    except AV_ERRORS as exc:
        if packet is None:
            return out  # draining a decoder that never got a good packet: nothing to drain
        errors.rejected(exc)
        return out
    n = 0
    bad = False
    for frame in frames:
        try:
            arr = frame_to_mono(frame)
        except BadFrame as exc:
            bad = True
            errors.rejected(exc)
            continue
        n += len(arr)
        out.append(arr)
    if n or not bad:
        errors.accepted(n)
    return out


class Resampler:
    """Streaming float32 mono resampler (av.AudioResampler). Measured: the same samples in give the same
    samples out whatever the chunking, which keeps decoding independent of how the input was split."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self._in_rate = in_rate
        self._av = av.AudioResampler(format="flt", layout="mono", rate=out_rate)
        self._pts = 0

    def push(self, chunks: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for arr in chunks:
            if not len(arr):
                continue
            frame = av.AudioFrame.from_ndarray(arr.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = self._in_rate
            frame.pts = self._pts  # contiguous timestamps: the filter must not insert or drop samples
            frame.time_base = Fraction(1, self._in_rate)
            self._pts += len(arr)
            out += [frame_to_mono(res) for res in self._av.resample(frame)]
        return out

    def drain(self) -> list[np.ndarray]:
        return [frame_to_mono(res) for res in self._av.resample(None)]
