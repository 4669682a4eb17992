"""WebM/Matroska and MP4/M4A backend of the decoder: containers no speech format asks for, but some servers send.

FFmpeg's demuxers (through PyAV) read them; they want a file, not a push of bytes, so the body is kept and the
demuxer re-opened on the bytes so far each time STEP more (or a sixteenth of the body so far, whichever is more,
so a long body is not re-read too often) have come in, and the packets not decoded before are
decoded with one codec context (from the first pass, so the decoder's state carries on). The last packet of a
pass may be cut short by the end of the bytes so far: it waits for the next pass (or the end of the body).
WebM and fragmented MP4 play progressively that way; an MP4 with its index ('moov') after the audio ('mdat')
cannot be read before its end, so it is decoded once the body is complete (logged). Priming and padding are
trimmed as FFmpeg's demuxer marks them on the packets. Like every backend, `feed(bytes)` and `flush()` return a
list of float32 mono arrays at `rate` (None until the first pass finds the audio track).

Threads: plain synchronous object owned by whoever feeds it (the asyncio loop thread in voicegui); no threads of its
own, no locks. Memory: the body so far (bounded by the caller: limits.MAX_BYTES_WITHOUT_AUDIO before the first
audio; a speech body is a few MB at most) and one demuxer pass; work: at most ~16 + n/STEP demuxes of the body.
"""

from __future__ import annotations

import io
import logging

import av
import numpy as np

from voicegui.decode.boundaries import CONTAINER_NAMES as NAMES
from voicegui.decode.codec import AV_ERRORS, CodecErrors, decode_packet
from voicegui.decode.errors import DecodeError

log = logging.getLogger(__name__)

STEP = 4096  # bytes between two demuxer passes at least: ~1 s of opus at 32 kbit/s, 0.5 s of aac at 64


def mp4_index_last(buf: bytes | bytearray) -> bool | None:
    """True if the MP4's top-level 'mdat' box comes before 'moov' (index at the end), False if 'moov' comes first,
    None if neither is in the bytes yet."""
    pos = 0
    while pos + 8 <= len(buf):
        size = int.from_bytes(buf[pos : pos + 4], "big")
        kind = bytes(buf[pos + 4 : pos + 8])
        if kind in (b"moov", b"mdat"):
            return kind == b"mdat"
        if size == 1 and pos + 16 <= len(buf):
            size = int.from_bytes(buf[pos + 8 : pos + 16], "big")
        if size < 8:
            return None
        pos += size
    return None


class ContainerBackend:
    """WebM / MP4: PyAV's demuxer over the bytes so far, every STEP bytes; one decoder for all passes."""

    start_trimmed_s = 0.0  # what FFmpeg's demuxer trims (an MP4 edit list) is not counted here

    def __init__(self, kind: str) -> None:
        self.rate: int | None = None
        self.truncated = False
        self.rest: bytes | None = None  # a container is read whole: no file boundaries inside it
        self._kind = kind
        self._buf = bytearray()
        self._next_pass = STEP
        self._done = 0  # packets of the audio track decoded so far
        self._first: av.container.InputContainer | None = None  # its codec context decodes every pass's packets
        self._ctx: av.AudioCodecContext | None = None
        self._errors = CodecErrors(NAMES[kind])
        self._index_last: bool | None = None

    def feed(self, data: bytes) -> list[np.ndarray]:
        self._buf += data
        if len(self._buf) < self._next_pass:
            return []
        self._next_pass = len(self._buf) + max(STEP, len(self._buf) // 16)
        if self._kind == "mp4":
            if self._index_last is None:
                self._index_last = mp4_index_last(self._buf)
                if self._index_last:
                    log.info("the MP4 has its index ('moov') after the audio: it plays once the body is complete")
            if self._index_last is not False:
                return []
        return self._pass(final=False)

    def _pass(self, final: bool) -> list[np.ndarray]:
        try:
            container = av.open(io.BytesIO(bytes(self._buf)), "r")
        except AV_ERRORS as exc:
            if final:
                raise DecodeError(f"the {NAMES[self._kind]} stream cannot be read ({_reason(exc)})") from None
            return []
        assert isinstance(container, av.container.InputContainer)
        if not container.streams.audio:
            container.close()
            if final:
                raise DecodeError(f"the {NAMES[self._kind]} stream has no audio track")
            return []
        packets: list[av.Packet] = []
        try:
            for packet in container.demux(container.streams.audio[0]):
                if packet.size:
                    packets.append(packet)
        except AV_ERRORS:
            pass  # the end of the bytes so far cut the demuxer short; the next pass reads on
        if self._ctx is None:
            self._first = container
            ctx = container.streams.audio[0].codec_context
            assert isinstance(ctx, av.AudioCodecContext)
            self._ctx = ctx
        else:
            container.close()
        new = packets[self._done :] if final else packets[self._done : -1]  # the last one may be cut short
        out: list[np.ndarray] = []
        for packet in new:
            if packet.is_corrupt and not final:
                break
            self._done += 1
            out += decode_packet(self._ctx, packet, self._errors)
        if out and self.rate is None:
            self.rate = self._ctx.sample_rate
        return out

    def waiting_on(self) -> str:
        return f"a {NAMES[self._kind]} stream with no audio packets in it"

    def flush(self) -> list[np.ndarray]:
        out = self._pass(final=True)
        if self._ctx is not None:
            out += decode_packet(self._ctx, None, self._errors)
        if out and self.rate is None:
            self.rate = self._ctx.sample_rate if self._ctx is not None else None
        if self._first is not None:
            self._first.close()
            self._first = None
        return out


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0]
