"""server: the built-in OpenAI-compatible speech server (POST /v1/audio/speech, GET /v1/models, /v1/audio/voices).

`app` is the aiohttp application (request checks, streaming response, request records), `encode` the
streaming encoder per format, `shaping` the network simulator, `engines` the voices (offline engines and a
replay engine for tests and benchmarks). `thread.ServerThread` runs it on its own asyncio loop in a daemon
thread; `embedded.BuiltinServer` is that thread with the offline voices, as the window and the CLI start it.
It stands alone (`voicegui serve`): it imports only voicegui's base modules, never the player (stream,
decode, features, ui) or the cli (tests/test_layers.py).
"""
