"""DecodeError, the one exception the decoders raise for a stream they cannot play.

It lives in its own module so that decode.py (the front) and the per-format backends (decode_pcm, decode_codec,
decode_mpeg, decode_flac, decode_opus) can all raise it without importing each other; decode.py re-exports it.

Threads: raised on the thread that feeds the decoder (the asyncio loop thread in voicegui).
"""

from __future__ import annotations


class DecodeError(Exception):
    """Clear one-line user-facing message in str(e)."""
