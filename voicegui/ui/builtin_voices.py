"""Which engine of the built-in server speaks a voice, and loading it before a Speak.

The app starts the built-in server with lazy engines (server/engines/builtin.py LazyEngine: listing their
voices loads nothing) and loads only the default voice's engine at start-up; another engine loads on its
first Speak. The window asks here whether a voice's engine still has to load, so it can say "Loading piper
voice…" while it does instead of a Speak that looks hung.

Threads: `pending_engine` runs on the GUI thread (it only reads the server's voice table and a flag);
`load_engine` blocks (~0.2 s for hibari, ~0.5 s for piper) and is meant for a worker thread (`asyncio.to_thread`);
LazyEngine.load holds a lock, so a request the server thread handles at the same time loads it only once.
"""

from __future__ import annotations

from typing import Any

from voicegui.server.engines.base import EngineError
from voicegui.server.engines.builtin import LazyEngine


def pending_engine(server: Any, voice: str) -> LazyEngine | None:
    """The lazy engine that offers `voice` on the BuiltinServer `server` if it is not loaded yet, else None
    (loaded already, an engine that loads at once, or a voice the server does not offer: the server's answer
    then says so)."""
    try:
        engine = server.engine.engine_for(voice)
    except EngineError:
        return None
    if isinstance(engine, LazyEngine) and not engine.loaded:
        return engine
    return None


def load_engine(engine: LazyEngine) -> None:
    """Load `engine`'s model (blocking); EngineError with the engine's name and the cause if it cannot."""
    engine.load()
