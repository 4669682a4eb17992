"""DecodeError, the one exception the decoders raise for a stream they cannot play.

It lives in its own module so that stream_decoder.py (the front) and the per-format backends (decode.pcm, decode.codec,
decode.mpeg, decode.flac, decode.opus) can all raise it without importing each other; stream_decoder re-exports it.

Threads: raised on the thread that feeds the decoder (the asyncio loop thread in voicegui).
"""

from __future__ import annotations


class DecodeError(Exception):
    """Clear one-line user-facing message in str(e)."""
