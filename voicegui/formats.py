"""The six response formats of /audio/speech, in one canonical order, with their file extensions and MIME types.

Every list of formats in voicegui (the decoder front, the built-in server's encoder and request check, the
provider and settings choices, the history cache, the reports, the CLI choices, the window's combo boxes)
is this one. The order is the one the window offers: pcm first (the default, lowest latency), then wav, then
the compressed formats.

Plain constants (a base module: imports nothing of voicegui); safe on any thread.
"""

from __future__ import annotations

FORMATS: tuple[str, ...] = ("pcm", "wav", "mp3", "opus", "aac", "flac")
DEFAULT_FORMAT = "pcm"

# "pcm" is raw signed 16-bit little-endian mono at 24 kHz, the rate of OpenAI's speech and of the built-in
# voices.
PCM_RATE = 24000

# The file suffix a response is saved under (history cache, "Save audio", drag and drop).
EXTENSIONS: dict[str, str] = {fmt: fmt for fmt in FORMATS}

# The Content-Type the speech server sends, as OpenAI's does (raw pcm as "audio/pcm").
CONTENT_TYPES: dict[str, str] = {
    "pcm": "audio/pcm",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
}

# The MIME type of a saved or embedded file (reports, drag and drop): raw pcm says what a player would need
# to open it (RFC 2586 audio/L16 with its rate and channels), since no container carries that.
MIME_TYPES: dict[str, str] = {**CONTENT_TYPES, "pcm": f"audio/L16;rate={PCM_RATE};channels=1"}

# Raw pcm carries no header, so a server that does not send 24 kHz says so in its response headers: Piper-based
# servers send `X-Sample-Rate: 22050` (one also `Content-Type: audio/pcm_s16le`), others put `rate=`/`channels=`
# parameters on the Content-Type (audio/L16; rate=22050; channels=1). Rates outside this range are not believed.
PCM_RATES = range(4000, 384001)
PCM_MAX_CHANNELS = 8


def announced_pcm_format(headers: dict[str, str]) -> tuple[int | None, int | None]:
    """(sample rate, channels) a response's headers announce for raw pcm; None for what they do not say.
    `headers`: names in lower case."""
    rate: int | None = None
    channels: int | None = None
    params: dict[str, str] = {}
    for part in headers.get("content-type", "").split(";")[1:]:
        name, _, value = part.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    for raw in (headers.get("x-sample-rate"), headers.get("x-samplerate"), params.get("rate")):
        if raw is not None and raw.strip().isdigit() and int(raw) in PCM_RATES:
            rate = int(raw)
            break
    for raw in (headers.get("x-channels"), params.get("channels")):
        if raw is not None and raw.strip().isdigit() and 1 <= int(raw) <= PCM_MAX_CHANNELS:
            channels = int(raw)
            break
    return rate, channels
