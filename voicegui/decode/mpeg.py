"""mp3 and aac (ADTS) backend of the decoder: mpeg_framer.MpegFramer cuts whole frames, PyAV decodes each one.

Each frame is decoded as soon as its last byte is in. For mp3, a leading Xing/Info (LAME) or VBRI frame is
skipped together with the encoder delay it records plus the decoder's 529 samples, and the end padding it records
is trimmed where it states a frame count (the samples from frame count x samples per frame - padding + 529 up to
the end of the frames counted), as FFmpeg's own mp3 demuxer does; so files glued back to back (one per sentence)
join without the ~90 ms of silence their tags and padding would add, and the built-in server's stream, whose Info
frame states the delay only, starts at its first sample. ADTS carries no such info. When the framer finds the
start of another file, the bytes from there go to `rest` for StreamDecoder's next segment. Like every backend,
`feed(bytes)` and `flush()` return a list of float32 mono arrays at `rate` (None until the first frame decodes).

Threads: decoders are plain synchronous objects owned by whoever feeds them (the asyncio loop thread in voicegui);
no threads of their own, no locks.
"""

from __future__ import annotations

import logging

import av
import numpy as np

from voicegui.decode.codec import CodecErrors, decode_packet
from voicegui.decode.mpeg_framer import MpegFramer, xing_info

log = logging.getLogger(__name__)


class ParsedBackend:
    """mp3 / aac: whole frames from our framer (as soon as each is complete), one decoder packet each."""

    def __init__(self, codec: str, fmt: str) -> None:
        self.rate: int | None = None
        self.truncated = False
        self.rest: bytes | None = None  # bytes from where another file starts (StreamDecoder's next segment)
        self._kind = fmt
        self._framer = MpegFramer(fmt)
        self._first = True
        self._pos = 0  # decoded samples so far (the tag frame not counted)
        self._skip = 0  # decoded samples to drop at the start (mp3 encoder + decoder delay)
        self._padding: tuple[int, int] | None = None  # decoded samples [start, end) to drop: the end padding
        ctx = av.CodecContext.create(codec, "r")
        assert isinstance(ctx, av.AudioCodecContext)  # mp3float/mp2float/mp1float/aac: audio decoders
        self._ctx = ctx
        self._errors = CodecErrors(fmt)

    def feed(self, data: bytes) -> list[np.ndarray]:
        self._errors.fed(len(data))
        out = self._decode(self._framer.feed(data))
        if self._framer.rest is not None:
            self.rest = self._framer.rest
        return out

    def _decode(self, frames: list[bytes]) -> list[np.ndarray]:
        out = []
        for frame in frames:
            if self._first:
                self._first = False
                info = xing_info(frame) if self._kind == "mp3" else None
                if info is not None:
                    # a Xing/Info frame is metadata that decodes to silence: skip it, the encoder delay and the
                    # end padding it records, as FFmpeg's own mp3 demuxer does
                    self._skip, self._padding = info.skip, info.padding
                    continue
            out += self._trim(decode_packet(self._ctx, av.Packet(frame), self._errors))
        if out and self.rate is None:
            self.rate = self._ctx.sample_rate
        return out

    @property
    def start_trimmed_s(self) -> float:
        """The encoder delay and the decoder's 529 samples dropped so far (0 without a LAME tag)."""
        rate = self._ctx.sample_rate
        return min(self._pos, self._skip) / rate if rate else 0.0

    def _trim(self, chunks: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for arr in chunks:
            start, self._pos = self._pos, self._pos + len(arr)
            drops = [(0, self._skip)] + ([self._padding] if self._padding else [])
            cuts = [(max(lo - start, 0), min(hi - start, len(arr))) for lo, hi in drops]
            cuts = [(lo, hi) for lo, hi in cuts if lo < hi]
            if cuts:  # the ranges may overlap (a corrupt tag): one mask
                keep = np.ones(len(arr), bool)
                for lo, hi in cuts:
                    keep[lo:hi] = False
                arr = arr[keep]
            if len(arr):
                out.append(arr)
        return out

    def waiting_on(self) -> str:
        return f"bytes with no whole {self._kind} frame in them"

    def flush(self) -> list[np.ndarray]:
        frames, cut = self._framer.flush()
        out = self._decode(frames)
        out += self._trim(decode_packet(self._ctx, None, self._errors))
        if out and self.rate is None:
            self.rate = self._ctx.sample_rate
        if self._framer.junk:
            log.info("skipped %d bytes of the %s stream that were no frames", self._framer.junk, self._kind)
        # bytes that never became a whole frame: the stream ended inside a frame
        self.truncated = cut
        return out
