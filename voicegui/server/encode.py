"""Streaming encoders for the six OpenAI speech formats: pcm, wav, mp3, aac (ADTS), flac, opus (Ogg).

`StreamingEncoder(fmt, sample_rate)` takes mono blocks (float32 in [-1, 1] or int16) through `encode(block)`
and returns whatever encoded bytes are ready *now*; `finish()` flushes the codec and returns the tail.
Bytes come out progressively: the compressed formats use a PyAV output container that writes into an
in-memory sink with `flush_packets=1`, so every packet the codec emits reaches the sink at once, and the Ogg
muxer is told to close a page every 20 ms instead of its default 1 s. pcm and wav are written by hand (wav
gets a 44-byte header whose sizes are 0xFFFFFFFF, as streaming servers send it).

The container header (mp3's ID3 tag, flac's fLaC + STREAMINFO, Ogg's OpusHead/OpusTags pages) is held back and
sent together with the first audio packet. Alone it gives the client nothing to play, and sent early it would
leave the encoder's lookahead (LAME: ~60 ms of input before its first frame) between the server's first byte
and its first audio, so "first byte" would no longer mean "audio starts arriving".

mp3 gets a LAME Info frame between the ID3 tag and the first audio frame (lame_tag.py), carrying LAME's encoder
delay as the encoder's first packet states it (its pts is minus the delay plus the decoder's 529), so decoders
skip the ~46 ms of silence LAME puts first. The frames that hold only that delay (their end is at or before
sample 0) decode to nothing once it is trimmed: they are held back with the header, which goes out with the
first frame that carries the clip's samples.

PyAV (FFmpeg's libraries: ~14 MB resident, ~60-80 ms to import) is imported by the first encoder of a compressed
format, not with this module: pcm, the default format, and wav need no codec, so a server that only sends them
never maps FFmpeg (issue 17); the decoders (decode/stream_decoder.py) likewise import it only for a compressed
body.

Threads: an encoder belongs to whoever calls it (the server's asyncio loop, one encoder per request); it is
not thread-safe. Encoding is fast (hundreds of times real time) so the loop calls it directly; the one-time
PyAV import happens there too, in the first compressed-format encoder's constructor.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from voicegui.formats import CONTENT_TYPES, FORMATS
from voicegui.server.lame_tag import DECODER_DELAY, info_frame
from voicegui.wavfile import wav_header

if TYPE_CHECKING:
    import av

log = logging.getLogger(__name__)

# format -> (container format, codec, codec sample format, bit rate or 0 for lossless, codec options).
# Bit rates are typical for 24 kHz mono speech from hosted TTS (FFmpeg's own defaults differ per codec:
# ~32 kbps mp3, ~96 kbps opus), so byte rates, and with them buffering behaviour, look like the real thing.
_CODECS: dict[str, tuple[str, str, str, int, dict[str, str]]] = {
    "mp3": ("mp3", "libmp3lame", "s16p", 64000, {}),
    "aac": ("adts", "aac", "fltp", 64000, {}),
    "flac": ("flac", "flac", "s16", 0, {}),
    # 20 ms Opus frames: the smallest unit a client can decode, and a page per ~20 ms below.
    "opus": ("ogg", "libopus", "s16", 48000, {"frame_duration": "20", "application": "audio"}),
}

_OPUS_RATES = (48000, 24000, 16000, 12000, 8000)


def to_int16(block: np.ndarray) -> np.ndarray:
    """Mono block (float32 in [-1, 1] or int16) -> int16, clipping floats rather than wrapping."""
    block = np.asarray(block)
    if block.ndim != 1:
        block = block.reshape(-1)
    if block.dtype == np.int16:
        return block
    if np.issubdtype(block.dtype, np.integer):
        return np.clip(block, -32768, 32767).astype(np.int16)
    # Scale by 32768 like FFmpeg's s16<->flt conversion, so int16 -> float -> int16 is exact (lossless
    # replay of 16-bit files); +1.0 clips to 32767.
    return np.clip(np.round(block.astype(np.float32) * 32768.0), -32768, 32767).astype(np.int16)


class _Sink:
    """Write-only file-like object that collects what the muxer writes.

    It deliberately has no seek(): PyAV then treats the output as a non-seekable stream, so the muxers never
    go back to patch headers (flac STREAMINFO, mp3 Xing) and everything they write is final.
    """

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class StreamingEncoder:
    """Encode a mono stream to one of FORMATS, returning bytes as soon as the codec produces them."""

    def __init__(self, fmt: str, sample_rate: int) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        if sample_rate <= 0:
            raise ValueError("sample_rate must be positive")
        self.format = fmt
        self.sample_rate = sample_rate
        self.content_type = CONTENT_TYPES[fmt]
        self.samples_in = 0
        self._finished = False
        self._started = False
        self._held_head = b""  # container header not yet sent: it goes out with the first audio bytes
        self._lame_tag = fmt == "mp3"  # the Info frame is still to be written (before the first audio frame)
        self._container: av.container.OutputContainer | None = None
        if fmt in ("pcm", "wav"):
            return
        import av  # see the module docstring: only the compressed formats need it

        container_fmt, codec, sample_fmt, bit_rate, codec_opts = _CODECS[fmt]
        rate = sample_rate
        if fmt == "opus" and rate not in _OPUS_RATES:
            # libopus only takes these rates; resample up to 48 kHz for anything else.
            rate = 48000
        self._codec_rate = rate
        self._sink = _Sink()
        container_opts = {"flush_packets": "1"}
        if fmt == "opus":
            # Microseconds; ffmpeg's default is 1 s pages, far too coarse for streaming.
            container_opts["page_duration"] = "20000"
        self._container = av.open(self._sink, mode="w", format=container_fmt, options=container_opts)
        stream = self._container.add_stream(codec, rate=rate, options=codec_opts)
        assert isinstance(stream, av.AudioStream)  # every codec in FORMATS is an audio encoder
        stream.layout = "mono"
        stream.format = sample_fmt
        stream.time_base = Fraction(1, rate)
        if bit_rate:
            stream.codec_context.bit_rate = bit_rate
        self._stream = stream
        self._codec_ctx = stream.codec_context
        self._resampler = av.AudioResampler(format=sample_fmt, layout="mono", rate=rate,
                                            frame_size=self._codec_ctx.frame_size or None)
        self._pts = 0

    def _start(self) -> bytes:
        """Write the container header (ID3 tag, fLaC+STREAMINFO, OpusHead pages) on first use."""
        self._started = True
        if self.format == "wav":
            return wav_header(self.sample_rate)
        if self.format == "pcm":
            return b""
        assert self._container is not None
        self._container.start_encoding()
        return self._sink.take()

    def encode(self, block: np.ndarray) -> bytes:
        """Feed one mono block; return the encoded bytes that are ready now (possibly b"")."""
        if self._finished:
            raise RuntimeError("encoder already finished")
        if not self._started:
            self._held_head = self._start()
        pcm = to_int16(block)
        self.samples_in += len(pcm)
        if len(pcm) == 0:
            return b""
        if self.format in ("pcm", "wav"):
            return self._with_head(pcm.astype("<i2").tobytes())
        import av  # loaded by the constructor already

        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = None
        return self._with_head(self._encode_frames(self._resampler.resample(frame)))

    def _with_head(self, audio: bytes) -> bytes:
        """`audio`, preceded by the held container header if these are the first audio bytes."""
        if not audio or not self._held_head:
            return audio
        head, self._held_head = self._held_head, b""
        return head + audio

    def _encode_frames(self, frames: list[av.AudioFrame]) -> bytes:
        for fr in frames:
            fr.pts = self._pts
            fr.time_base = Fraction(1, self._codec_rate)
            self._pts += fr.samples
            self._mux(self._stream.encode(fr))
        return self._sink.take()

    def _mux(self, packets: list[av.Packet]) -> None:
        assert self._container is not None
        for packet in packets:
            end = self._end_sample(packet)
            if self._lame_tag:
                self._lame_tag = False
                self._held_head += self._sink.take() + self._info_frame(packet)
            self._container.mux(packet)
            if self.format == "mp3" and end is not None and end <= 0:
                self._held_head += self._sink.take()  # encoder delay only: nothing to hear once trimmed

    def _end_sample(self, packet: av.Packet) -> int | None:
        """Where `packet`'s samples end, in samples of the input (negative inside the encoder delay)."""
        if packet.pts is None or packet.duration is None or packet.time_base is None:
            return None
        return int((packet.pts + packet.duration) * packet.time_base * self._codec_rate)

    def _info_frame(self, packet: av.Packet) -> bytes:
        """The LAME Info frame for this stream, from its first packet; b"" (logged) if it cannot be made."""
        if packet.pts is None or packet.time_base is None:
            log.warning("no LAME Info frame: the mp3 encoder's first packet has no timestamp, so its delay "
                        "is unknown and players will hear it as silence")
            return b""
        delay = -int(packet.pts * packet.time_base * self._codec_rate) - DECODER_DELAY
        try:
            return info_frame(bytes(packet), delay, self._codec_ctx.bit_rate or 0)
        except ValueError as e:
            log.warning("no LAME Info frame, players will hear the encoder delay as silence: %s", e)
            return b""

    def finish(self) -> bytes:
        """Flush the codec and the muxer; return the remaining bytes. The encoder is closed afterwards."""
        if self._finished:
            return b""
        if not self._started:
            self._held_head = self._start()
        self._finished = True
        if self._container is None:
            head, self._held_head = self._held_head, b""  # a stream with no audio at all is still a valid file
            return head
        # Drain the resampler (partial last frame), then the codec, then the muxer trailer.
        out = self._encode_frames(self._resampler.resample(None))
        self._mux(self._stream.encode(None))
        self._container.close()
        # The header (and mp3's Info frame and delay-only frames) if no audio went out yet.
        head, self._held_head = self._held_head, b""
        return head + out + self._sink.take()

    def close(self) -> None:
        """Release codec resources without flushing (used when the client went away)."""
        if self._container is not None and not self._finished:
            import av  # loaded by the constructor already

            self._finished = True
            try:
                self._container.close()
            except (av.FFmpegError, OSError, ValueError):
                # Closing a half-written container can fail; the output is being discarded anyway.
                pass
