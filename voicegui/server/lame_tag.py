"""The LAME "Info" frame that starts the built-in server's streaming mp3: it tells decoders the encoder delay.

LAME starts every stream with ~576 samples of encoder delay (plus the 529 every mp3 decoder adds), ~46 ms of
silence at 24 kHz. A file says so in a Xing/Info frame with the LAME extension (delay and end padding, 12 bits
each), written first; FFmpeg (so PyAV, mpv, Chromium), LAME's own decoder and our client trim the delay then.
FFmpeg's muxer and LAME write that frame only when they can seek back to fill it in at the end, so a streamed
mp3 has none. `info_frame()` writes it up front, with what is known when the stream starts:
- the encoder delay (from the encoder's first packet);
- end padding 0 and no frame count: neither is known before the end. Decoders then trim the start only.
- a byte count of 0xFFFFFFFF (flag 2): FFmpeg's demuxer skips the tag frame only if the frame count or the byte
  count is non-zero; with neither it decodes the tag frame as 576 samples of silence *and* trims the delay, so
  the start moves by a frame. The frame count would give a duration (0xFFFFFFFF frames: 28,000 hours); the byte
  count alone is used only for seeking by file size (a guess FFmpeg makes only when asked to seek fast) and
  gets a "growing file?" warning, which describes a stream that was still being written.
The frame is a valid layer III frame (the stream's own header, no CRC, no padding; side info all zero, so a
decoder that plays it plays silence) and its tag CRC is set, as LAME's specification asks.

Threads: plain functions, called by the encoder's owner (the server loop).
"""

from __future__ import annotations

import struct

DECODER_DELAY = 529  # samples every mp3 decoder adds before the first encoded one (FFmpeg: 528 + 1)
MAX_DELAY = (1 << 12) - 1  # the LAME tag's delay field has 12 bits
UNKNOWN_BYTES = 0xFFFFFFFF
_VERSION = b"LAME3.100"  # libmp3lame encodes; 3.100 (2017) is its last release, the one every build carries
_CBR = 0x01  # tag revision 0, VBR method 1: constant bit rate (the server encodes at a fixed bit rate)
_XING_BYTES = 0x02  # Xing flags: only the byte count is present (no frame count, TOC or quality)
_LAME_LEN = 36  # the LAME extension, from the version string to the tag CRC


def crc16(data: bytes) -> int:
    """CRC-16/ARC (poly 0x8005 reflected, init 0): the LAME tag's CRC, as LAME and FFmpeg compute it."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def _side_info_len(header: bytes) -> int:
    mpeg1, mono = (header[1] >> 3) & 3 == 3, header[3] >> 6 == 3
    return (17 if mono else 32) if mpeg1 else (9 if mono else 17)


def info_frame(first_frame: bytes, encoder_delay: int, bit_rate: int) -> bytes:
    """A LAME Info frame for a stream whose first audio frame is `first_frame` (a whole layer III frame).

    `encoder_delay` is LAME's delay in samples, without the decoder's 529 (0..4095); `bit_rate` in bit/s goes
    into the tag's bit rate byte. Raises ValueError if the frame is no layer III frame or too short to hold
    the tag, or the delay does not fit its 12 bits."""
    header = first_frame[:4]
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0 or (header[1] >> 1) & 3 != 1:
        raise ValueError(f"not an mp3 (layer III) frame header: {header.hex()}")
    if not 0 <= encoder_delay <= MAX_DELAY:
        raise ValueError(f"encoder delay {encoder_delay} does not fit the LAME tag's 12 bits")
    padded = (header[2] >> 1) & 1
    size = len(first_frame) - padded  # the same bit rate without the padding byte
    tag_at = 4 + _side_info_len(header)
    lame = bytearray(_LAME_LEN)
    lame[:9] = _VERSION
    lame[9] = _CBR
    lame[20] = min(bit_rate // 1000, 255)
    lame[21:24] = (encoder_delay << 12).to_bytes(3, "big")  # end padding (low 12 bits): unknown, 0
    tag = b"Info" + struct.pack(">II", _XING_BYTES, UNKNOWN_BYTES) + lame
    if tag_at + len(tag) > size:
        raise ValueError(f"a {size}-byte mp3 frame is too short for the {len(tag)}-byte LAME tag")
    frame = bytearray(size)
    frame[:4] = bytes((header[0], header[1] | 1, header[2] & ~2 & 0xFF, header[3]))  # no CRC, no padding
    frame[tag_at : tag_at + len(tag)] = tag
    crc_at = tag_at + len(tag) - 2
    frame[crc_at : crc_at + 2] = crc16(bytes(frame[:crc_at])).to_bytes(2, "big")
    return bytes(frame)
