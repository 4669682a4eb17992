"""`python -m voicegui.cli.prepare`: build the default built-in voice's caches in the user's cache directory now,
so that the first launch of the window is as quick as the later ones.

The first start of the default voice (hibari's "heart") builds two things it keeps in the user's cache: hibari's
packed pronunciation tables and an optimized copy of its ONNX model (voicegui/server/engines/hibari.py,
onnx_cache.py): ~1.7 s once, after which a start takes ~0.3 s. A new user's first launch paid for it (default
voice ready 1.69 s after launch against 1.02 s later, quiet machine). `make install` (and so `make run`)
runs this once per install, as the cost of installing, not of the first minute in the window.

Building the caches is an optimization: when it cannot be done (hibari-tts not installed, a cache directory
that cannot be written), it says so in one line and exits 0; the window then builds them, or says what is
wrong, at its first start.

Threads: the main thread only; the engine's own worker thread loads the model and is closed before exiting.
"""

from __future__ import annotations

import logging
import sys

from voicegui.app_dirs import cache_dir


def prepare() -> str:
    """Build the default voice's caches; a one-line account of what was done (or why not)."""
    from voicegui.server.engines import hibari
    from voicegui.server.engines.base import EngineError

    hint = hibari.missing()
    if hint is not None:
        return f"nothing to prepare: {hint}"
    directory = cache_dir() / "engines"
    try:
        engine = hibari.create(warm=False)
    except (OSError, RuntimeError, ValueError, ImportError, EngineError) as exc:
        return (f"could not build the built-in voice's caches in {directory} ({exc}); the window builds them at "
                "its first start")
    engine.close()
    # The engine also starts when its caches cannot be written (it logs why and builds its tables in memory):
    # ready only if both are there now.
    if any(directory.glob("hibari-optimized-*.onnx")) and any(directory.glob("hibari-g2p-*")):
        return f"the built-in voice's caches are ready in {directory}"
    return f"could not keep the built-in voice's caches in {directory}; the window builds them at each start"


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    print(f"voicegui: {prepare()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
