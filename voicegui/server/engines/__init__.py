"""engines: what speaks. `base.Engine` is the protocol the server calls (voices, models, synthesize); `builtin`
composes the offline engines (`hibari`, `piper`, `espeak`) into one, `worker_engine` is the single-worker base
of the neural ones, `audio` holds their shared audio helpers, and `replay` streams a fixed file (tests, bench).
Each engine's synthesis runs off the server's loop (its worker thread or asyncio.to_thread).
"""

import os

# onnxruntime (hibari's and piper's runtime) keeps a device id and an event database for Microsoft's telemetry in
# the user's home (~/.cache/Microsoft/DeveloperTools/.onnxruntime) from its import on, unless this is set first.
# A voice player has no business writing an identifier there; a user who sets the variable keeps their value.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
