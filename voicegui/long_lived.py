"""Keep Python's full garbage collections short while audio plays: what start-up loaded is frozen.

A full (generation 2) collection walks every object the collector tracks while holding the GIL: ~50 ms for
the ~100,000 objects of the window once it has started (measured on these 2-core VMs, `gc.collect(2)` after
the window's imports), and any thread's allocations may start one. The PortAudio callback is Python code that
needs the GIL every few ms (latency 'low': ~2 ms of audio per call, ~9 ms held by the device), so such a pass
on any thread can leave the device without samples. What start-up loads (modules, classes, functions, Qt
wrappers, the engines' tables) lives as long as the process: `gc.freeze()` moves it out of every later
collection, which then walks only what was made since (~0 ms in the same measurement). Cyclic garbage made
later is still collected.

Called once after each step that loads many modules for good (the window's start-up, `voicegui speak`'s
audio stack), never per Speak: a cycle that happened to be alive at that moment would never be freed.

Threads: any thread (gc.freeze runs under the GIL).
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def freeze_loaded(step: str) -> int:
    """Move every object the collector tracks now out of later collections; `step` names what was just loaded
    (for the log). Returns how many objects are frozen in all."""
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.debug("after %s: %d objects frozen (full collections no longer walk them)", step, frozen)
    return frozen
