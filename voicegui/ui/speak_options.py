"""What the next Speak asks for, built from the window's current choices: the requests (a text over the API's
4096 characters becomes several, played as one gapless session) and the playback knobs.

Threads: GUI thread (it reads widgets through the provider panel and the tuning values it is handed).
"""

from __future__ import annotations

from voicegui.features.history import HistoryEntry, entry_pcm_rate
from voicegui.stream.fetch import SpeechRequest
from voicegui.stream.output import OutputConfig
from voicegui.stream.replay_source import replay_source
from voicegui.stream.session import SpeakOptions
from voicegui.text import split_for_request
from voicegui.ui.panels import Tuning
from voicegui.ui.provider_panel import ProviderPanel

MAX_INPUT_CHARS = 4096  # OpenAI's limit for `input`: longer text is sent as several requests


def _output(tuning: Tuning) -> OutputConfig:
    return OutputConfig(device=tuning.device, latency=tuning.latency, blocksize=tuning.blocksize,
                        volume=tuning.volume)


def speak_options(provider: ProviderPanel, tuning: Tuning, text: str, voice: str | None = None,
                  fmt: str | None = None) -> SpeakOptions:
    """The next Speak of `text` (voice/format: instead of the provider panel's); ValueError with a message for
    the user when a choice is missing."""
    base_url, key = provider.endpoint()
    voice_object = False
    if voice is None:
        voice, voice_object = provider.voice_request()  # a typed {"id": ...} is sent as an object
    model = provider.model_id()
    extra_body = provider.extra_body()  # the stream flag, lang_code, the user's extra JSON
    if not model:
        raise ValueError("Choose a model.")
    if not voice:
        raise ValueError("Choose a voice.")
    pieces = [text] if len(text) <= MAX_INPUT_CHARS else split_for_request(text, MAX_INPUT_CHARS)
    requests = [SpeechRequest(
        base_url=base_url,
        api_key=key or "none",  # the OpenAI client insists on a key; local servers ignore it
        model=model,
        voice=voice,
        text=piece,
        response_format=fmt or provider.response_format(),
        speed=provider.speed_value(),
        instructions=provider.instructions_value(),
        chunk_bytes=tuning.chunk_bytes,
        extra_body=extra_body,
        stream_field_auto=provider.stream_field_auto(),
        stream_format=provider.stream_format(),
        voice_object=voice_object,
    ) for piece in pieces]
    # One session for all pieces: fetched one after another into the same ring and device (gapless).
    return SpeakOptions(request=requests[0], continuation=tuple(requests[1:]), prebuffer_ms=tuning.prebuffer_ms,
                        max_buffer_s=tuning.max_buffer_s, output=_output(tuning),
                        keep_original=True,  # for the history cache
                        pcm_rate=provider.pcm_rate())


def replay_options(entry: HistoryEntry, body: bytes, tuning: Tuning) -> SpeakOptions:
    """A history entry played again from its cached `body`: no request. The current knobs apply: replaying the
    same bytes under other buffer settings is a fair test."""
    request = SpeechRequest(base_url=entry.base_url, api_key="none", model=entry.model, voice=entry.voice,
                            text=entry.text, response_format=entry.format, speed=entry.speed,
                            chunk_bytes=tuning.chunk_bytes)
    return SpeakOptions(request=request, prebuffer_ms=tuning.prebuffer_ms, max_buffer_s=tuning.max_buffer_s,
                        output=_output(tuning), keep_original=True, source=replay_source(body),
                        pcm_rate=entry_pcm_rate(entry))
