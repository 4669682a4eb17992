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
