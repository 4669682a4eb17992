"""stream: one Speak from click to sound. No Qt.

`session.SpeakSession` runs fetch (`fetch` over HTTP, `realtime` over the Realtime websocket, or
`replay_source` from the history cache) -> decode (voicegui.decode) -> `ring` -> `output` (the PortAudio
callback), gated by the `prebuffer` policy, and publishes what it measured (`metrics`). Threads: fetch and
decode run on the asyncio loop; `output`'s callback runs on PortAudio's thread and only copies from the ring.
"""

from voicegui.stream import sdk_import

# Before anything here imports the openai SDK: its types load as they are used (sdk_import says why).
sdk_import.install()
