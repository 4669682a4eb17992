"""Frame headers of MPEG audio (mp1/mp2/mp3) and AAC in ADTS: frame sync, frame length, FFmpeg decoder name.

Used twice: decode.py sniffs the container from the first frame header (and checks that the next header follows),
and decode/mpeg.py checks at the end of a stream that the last frame is as long as its header says.

Threads: plain functions with no state; they run on the thread that feeds the decoder (the asyncio loop thread in
voicegui).
"""

from __future__ import annotations


def mpeg_audio_frame_len(h: bytes | bytearray) -> int | None:
    """Length of an MPEG-1/2/2.5 layer I/II/III frame from its 4-byte header, None if not a valid header."""
    if len(h) < 4 or h[0] != 0xFF or h[1] & 0xE0 != 0xE0:
        return None
    version = (h[1] >> 3) & 3  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5, 1: reserved
    layer = (h[1] >> 1) & 3  # 1: III, 2: II, 3: I, 0: reserved (that is where ADTS differs)
    br_index, sr_index, pad = h[2] >> 4, (h[2] >> 2) & 3, (h[2] >> 1) & 1
    if version == 1 or layer == 0 or br_index in (0, 15) or sr_index == 3:
        return None
    rate = (44100, 48000, 32000)[sr_index] >> (0 if version == 3 else 1 if version == 2 else 2)
    if version == 3:
        table = {3: _BR_V1_L1, 2: _BR_V1_L2, 1: _BR_V1_L3}[layer]
    else:
        table = _BR_V2_L1 if layer == 3 else _BR_V2_L23
    bitrate = table[br_index] * 1000
    if layer == 3:
        return (12 * bitrate // rate + pad) * 4
    if layer == 1 and version != 3:
        return 72 * bitrate // rate + pad
    return 144 * bitrate // rate + pad


_BR_V1_L1 = (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448)
_BR_V1_L2 = (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384)
_BR_V1_L3 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_BR_V2_L1 = (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256)
_BR_V2_L23 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)


def adts_frame_len(h: bytes | bytearray) -> int | None:
    """Length of an ADTS frame from its header, None if not a valid ADTS header."""
    if len(h) < 7 or h[0] != 0xFF or h[1] & 0xF6 != 0xF0:
        return None
    if (h[2] >> 2) & 0xF >= 13:  # sampling frequency index
        return None
    length = ((h[3] & 3) << 11) | (h[4] << 3) | (h[5] >> 5)
    return length if length >= 7 else None


def sync_kind(h: bytes | bytearray) -> str | None:
    """'aac' or 'mp3' for a plausible frame sync at h[0:2], else None. Layer bits 00 means ADTS."""
    if len(h) < 2 or h[0] != 0xFF:
        return None
    if h[1] & 0xF6 == 0xF0:
        return "aac"
    if h[1] & 0xE0 == 0xE0 and (h[1] >> 1) & 3 != 0 and (h[1] >> 3) & 3 != 1:
        return "mp3"
    return None


def mpeg_codec(head: bytes) -> str:
    """FFmpeg decoder for the MPEG audio layer in the first frame header (float decoders: no s16 clipping)."""
    layer = (head[1] >> 1) & 3 if len(head) >= 2 else 1
    return {1: "mp3float", 2: "mp2float", 3: "mp1float"}.get(layer, "mp3float")


def frame_len(kind: str, h: bytes | bytearray) -> int | None:
    """Length of an `kind` ("aac" or "mp3") frame from its header, None if not a valid header."""
    return adts_frame_len(h) if kind == "aac" else mpeg_audio_frame_len(h)
