"""Start a command's slow imports and model loads in background threads, so `voicegui speak` overlaps them
with what the main thread does meanwhile (parsing arguments, opening PortAudio, starting the built-in voices).

Measured (python -X importtime, tests/cli/startup_bench.py): importing the openai SDK is most of the start-up
(~0.6-0.9 s: its `types` package builds several hundred pydantic models, and the aiohttp it vendors builds two
TLS contexts), initialising PortAudio (sounddevice) ~40 ms, loading the hibari voice's model ~0.5 s. Python
imports hold the GIL, so two threads importing do not finish sooner than one; what does overlap is the work
done outside it: PortAudio enumerating devices, onnxruntime building its session, reading files.

`single_blas_thread()` keeps numpy's OpenBLAS from starting a thread per core: those threads spin for a while
after numpy's import (measured on 2 cores: `import numpy` 115-179 ms of CPU instead of 56-90, and the next
~0.1 s of the process's other work ~35 ms more), CPU taken from the second core that the built-in voices'
process or PortAudio's start uses meanwhile. voicegui multiplies no matrices with numpy (onnxruntime runs the
neural voices on its own threads), so one is enough; a user's own OPENBLAS_NUM_THREADS is kept.

`import_in_background(modules)` imports modules on a daemon thread. A module that fails to import there is
imported again where it is used (a failed import leaves nothing in sys.modules), so its error reaches the user
through that code's usual message; this thread only logs it at debug level. `load_voice_in_background`
loads the model behind a built-in voice now instead of on the first request.

A command can end while such a thread still runs (a usage error found while openai is still being imported).
Python then finalizes the interpreter under that thread, which is not safe with a daemon thread inside an
extension module's import or a model load (a usage error's exit died with SIGSEGV in CI once: most likely that;
it did not recur in ~900 runs here).
`end_if_still_loading(code)`, called by the process's entry point, ends such a process at once with its exit
code, after flushing stdout, stderr and the log, without finalizing the interpreter.

Threads: the main thread may import the same modules meanwhile: Python's per-module import locks make it
wait for a module another thread is still importing (the packages involved import each other in one
direction only, so neither thread waits for the other in a circle). Each function starts one daemon
thread (daemon: a command that ends early, e.g. on a usage error, must not wait for an import it no longer
needs) and returns it; nothing here touches the caller's objects after that, except the engine's own
thread-safe `load()`.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: the built-in voices are not loaded by importing the CLI
    from voicegui.server.engines.builtin import BuiltinEngine

log = logging.getLogger(__name__)


BLAS_THREADS_VARIABLE = "OPENBLAS_NUM_THREADS"

# Every thread this module started (import_in_background, load_voice_in_background), for end_if_still_loading.
_started: list[threading.Thread] = []


def single_blas_thread() -> None:
    """One OpenBLAS thread for this process and its children, unless the user set their own (see the module
    docstring). Call it before anything imports numpy: OpenBLAS reads the variable when it is loaded."""
    os.environ.setdefault(BLAS_THREADS_VARIABLE, "1")


def import_quietly(module: str) -> bool:
    """Import `module` ahead of its use; False if that failed (logged at debug level only: the module is
    imported again where it is used, and that code reports the error)."""
    try:
        importlib.import_module(module)
    # Any error: the code that uses the module imports it again and reports what it raises.
    except Exception as exc:
        log.debug("preloading %s failed (%s); it is imported again where it is used", module, exc)
        return False
    return True


def import_in_background(modules: Sequence[str], then: Callable[[], object] | None = None,
                         name: str = "voicegui-preload") -> threading.Thread:
    """Import `modules` in this order on a new daemon thread (started), then call `then` (which must report
    its own failures) if they all imported; returns the thread."""

    def run() -> None:
        if all(import_quietly(module) for module in modules) and then is not None:
            then()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    _started.append(thread)
    return thread


def load_voice_in_background(engines: BuiltinEngine, voice: str) -> threading.Thread | None:
    """Load the model of the built-in `voice` on a new daemon thread (started) while the request is prepared,
    instead of when the request arrives; None if there is nothing to load (espeak-ng, already loaded, or a
    voice the server does not offer: its answer to the request says so). `engines`: the built-in server's
    (BuiltinServer's before_start hands it over before the server itself starts)."""
    from voicegui.server.engines.base import EngineError
    from voicegui.server.engines.builtin import LazyEngine

    try:
        engine = engines.engine_for(voice)
    except EngineError:
        return None
    if not isinstance(engine, LazyEngine) or engine.loaded:
        return None

    def run() -> None:
        try:
            engine.load()
        except EngineError as exc:
            # load() raises it again for the request, and the server sends it as the response's error.
            log.debug("preloading the %s voice failed (%s); the request reports it", voice, exc)

    thread = threading.Thread(target=run, name=f"voicegui-load-{engine.name}", daemon=True)
    thread.start()
    _started.append(thread)
    return thread


def still_loading() -> list[str]:
    """The names of the threads started here that are still running."""
    return [thread.name for thread in _started if thread.is_alive()]


def end_if_still_loading(code: int) -> None:
    """If a thread started here still runs, end the process now with `code` (see the module docstring): the
    log, stdout and stderr are flushed first; atexit handlers do not run. Otherwise return.

    Only for the process's entry point: a program that calls cli.main.main itself (a test) keeps running."""
    busy = still_loading()
    if not busy:
        return
    log.debug("exiting without waiting for %s", ", ".join(busy))
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or a closed stream: nothing more can reach it anyway
            pass
    os._exit(code)
