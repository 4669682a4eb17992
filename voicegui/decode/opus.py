"""opus backend of the decoder: ogg.OggPacketReader cuts packets from the segment table as bytes arrive, PyAV's
opus decoder decodes them at 48 kHz.

The decoder gets the OpusHead as extradata but with pre-skip zeroed, because pre-skip and the end padding (last
page's granule) are trimmed here; the result is then resampled 48 kHz -> the OpusHead input rate. Chained streams
are played one after the other. Like every backend, `feed(bytes)` and `flush()` return a list of float32 mono
arrays at `rate` (None until the OpusHead is in).

Threads: decoders are plain synchronous objects owned by whoever feeds them (the asyncio loop thread in voicegui);
no threads of their own, no locks.
"""

from __future__ import annotations

import av
import numpy as np

from voicegui.decode.codec import CodecErrors, Resampler, decode_packet
from voicegui.decode.errors import DecodeError
from voicegui.decode.ogg import OggError, OggPacket, OggPacketReader


class OpusBackend:
    """Ogg Opus: packets cut as they arrive, decoded at 48 kHz, pre-skip and end padding trimmed here."""

    def __init__(self) -> None:
        self.rate: int | None = None
        self.truncated = False
        self.rest: bytes | None = None  # bytes from where another file starts (StreamDecoder's next segment)
        self._ogg = OggPacketReader()
        self._ctx: av.AudioCodecContext | None = None
        self._errors = CodecErrors("opus")
        self._skip = 0  # pre-skip samples (48 kHz) still to drop
        self._emitted = 0  # 48 kHz samples handed out for the current logical stream (after pre-skip)
        self._preskip = 0
        self._headers = 0  # header packets seen for the current logical stream (OpusHead, OpusTags)
        self._resampler: Resampler | None = None
        self._input_rate: int | None = None

    @property
    def start_trimmed_s(self) -> float:
        """The current logical stream's pre-skip dropped so far (48 kHz samples)."""
        return (self._preskip - self._skip) / 48000

    def feed(self, data: bytes) -> list[np.ndarray]:
        if self._headers >= 2:
            self._errors.fed(len(data))  # not before: OpusTags may carry cover art of any size
        try:
            packets = self._ogg.feed(data)
        except OggError as exc:
            raise DecodeError(f"the opus stream is corrupt: {exc}") from None
        out: list[np.ndarray] = []
        for packet in packets:
            out += self._packet(packet)
        return out

    def _packet(self, packet: OggPacket) -> list[np.ndarray]:
        data = packet.data
        if packet.bos:
            out = self._drain()  # a chained stream starts: finish the previous one
            if not data.startswith(b"OpusHead") or len(data) < 19:
                codec = "Vorbis" if data[1:7] == b"vorbis" else "FLAC" if data[1:5] == b"FLAC" else "an unknown codec"
                raise DecodeError(f"the Ogg stream carries {codec}, not Opus")
            self._preskip = int.from_bytes(data[10:12], "little")
            input_rate = int.from_bytes(data[12:16], "little")
            if self._input_rate is None:
                # play at the rate the speech was made at (24 kHz for OpenAI); 0 means "unknown": use 48 kHz
                self._input_rate = input_rate if 8000 <= input_rate <= 48000 else 48000
                self.rate = self._input_rate
            # FFmpeg would apply pre-skip itself; we zero it and trim here so the trimming is ours to check
            extradata = bytearray(data)
            extradata[10:12] = b"\x00\x00"
            self._ctx = av.CodecContext.create("opus", "r")
            self._ctx.extradata = bytes(extradata)
            self._skip = self._preskip
            self._emitted = 0
            self._headers = 1
            return out
        if self._ctx is None:
            return []  # audio of a stream whose OpusHead we never saw
        if self._headers == 1:
            self._headers = 2
            if data.startswith(b"OpusTags") or packet.oversized:
                return []  # comments (possibly with cover art, hence oversized): not audio
        pcm = decode_packet(self._ctx, av.Packet(data), self._errors)
        return self._trim(pcm, packet.granule - self._preskip if packet.eos else None)

    def _trim(self, chunks: list[np.ndarray], limit: int | None) -> list[np.ndarray]:
        out = []
        for arr in chunks:
            if self._skip:
                drop = min(self._skip, len(arr))
                arr = arr[drop:]
                self._skip -= drop
            if limit is not None:
                arr = arr[: max(0, limit - self._emitted)]  # end padding of the last page
            self._emitted += len(arr)
            if len(arr):
                out.append(arr)
        return self._resample(out)

    def _resample(self, chunks: list[np.ndarray]) -> list[np.ndarray]:
        if self._input_rate == 48000:
            return chunks
        if self._resampler is None:
            assert self._input_rate is not None  # set from the OpusHead before any audio packet is decoded
            self._resampler = Resampler(48000, self._input_rate)
        return self._resampler.push(chunks)

    def _drain(self) -> list[np.ndarray]:
        if self._ctx is None:
            return []
        pcm = decode_packet(self._ctx, None, self._errors)
        self._ctx = None
        return self._trim(pcm, None)

    def waiting_on(self) -> str:
        if self._ogg.in_packet:
            return "an Ogg packet that never ends"
        if self._ctx is None:
            return "Ogg pages without an OpusHead"
        if self._headers < 2:
            return "Ogg header pages only"
        return "Ogg pages with no audio packets in them"

    def flush(self) -> list[np.ndarray]:
        out = self._drain()
        if self._resampler is not None:
            out += self._resampler.drain()
        self.truncated = self._ogg.mid_unit
        return out
