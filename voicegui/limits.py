"""The ranges a Speak's knobs accept, in one place: the CLI's checks and help, the settings' validation, the
server's request check and the window's spin boxes all read them here, so they cannot disagree.

Plain constants (a base module: imports nothing of voicegui); safe on any thread.
"""

from __future__ import annotations

# /audio/speech's `speed` (OpenAI's documented range; the built-in server accepts the same).
MIN_SPEED, MAX_SPEED = 0.25, 4.0
SPEED_RANGE = (MIN_SPEED, MAX_SPEED)

# Bytes handed on per chunk (None/0 in the UI: as they arrive).
MAX_CHUNK_BYTES = 1 << 20
# Audio buffered before playback starts (None: auto, from the measured delivery rate).
MAX_PREBUFFER_MS = 60000
# Most audio held in memory; beyond it the network is not read.
MIN_MAX_BUFFER_S, MAX_MAX_BUFFER_S = 0.1, 600.0
# PortAudio block size in frames (0: automatic).
MAX_BLOCKSIZE = 16384

# Hostile or broken servers: what a client holds or reads before it gives up (see decode/, stream/, providers.py).
# Bytes a decoder reads with no audio coming out (before the first audio, or between two frames) before the
# stream is declared not playable: no real header, tag or frame of speech comes near it.
MAX_BYTES_WITHOUT_AUDIO = 1 << 20
# The response body kept as received (history and replay cache); beyond it the session keeps none of it.
MAX_ORIGINAL_BYTES = 64 << 20
# A JSON answer of GET /models or /audio/voices, decompressed; OpenAI's model list is ~10 KB.
MAX_JSON_BYTES = 4 << 20
# Characters of a Realtime transcript kept (the last ones, behind a marker).
MAX_TRANSCRIPT_CHARS = 100_000

# "First sound" (TTFA): the first sample at least this loud, -40 dBFS, as handed to the device
# (stream/output.py) and as heard at the sink (`voicegui bench`, cli/bench_sink.py), so the two figures differ
# by the device's latency only. Not any non-zero sample: a decoded mp3 or aac stream begins with its encoder's
# priming (~1,100 / 1,024 samples, ~45 ms at 24 kHz) whose output stays far below this, and counting it made
# those formats' TTFA ~35-45 ms earlier than the sound at the sink. Breathy h and s onsets sit around it.
AUDIBLE_LEVEL = 10 ** (-40 / 20)

# The longest text the window speaks (its text box, a hand-off, the selection or clipboard read for it): beyond
# this, something was pasted by mistake.
MAX_TEXT_CHARS = 200_000
