"""engines: what speaks. `base.Engine` is the protocol the server calls (voices, models, synthesize); `builtin`
composes the offline engines (`hibari`, `piper`, `espeak`) into one, `worker_engine` is the single-worker base
of the neural ones, `audio` holds their shared audio helpers, and `replay` streams a fixed file (tests, bench).
Each engine's synthesis runs off the server's loop (its worker thread or asyncio.to_thread).
"""
