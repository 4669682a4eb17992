"""onnxruntime sessions over an optimized copy of the model kept in the user's cache.

Creating a session runs onnxruntime's graph optimizations every time: for hibari's 8 MB voice model that is
most of the session's ~0.15-0.3 s of CPU on a quiet machine (issue 17: the default voice is loaded while the
window starts). The first start saves the optimized graph (`SessionOptions.optimized_model_filepath`); later
starts load that copy with the optimizations off (~0.05 s, and ~4 MB less resident). The copy is optimized up
to `ORT_ENABLE_EXTENDED` only: those rewrites are the same on every CPU, whereas `ORT_ENABLE_ALL` adds layout
rewrites for this machine's instruction set, which onnxruntime's documentation warns against saving. With the
copy loaded, the model computes the same outputs as from its own file (tests/server/test_onnx_cache.py).

The file's name holds a digest of what its content depends on: this scheme's version, onnxruntime's version,
the machine's architecture (a home directory may be shared by several) and the source model (path, size,
modification time). A new hibari-tts or onnxruntime is a new name, so a stale copy is never loaded (old copies
are left for the user's cache cleaner: one per install). Writing is atomic (onnxruntime writes a temporary
file in the same directory, then os.replace), so a reader sees a whole file or none. A copy onnxruntime cannot
load (truncated, not a model) is reported, removed and made again (should that one fail too, the session is
made from the source model, as without a cache); a cache that cannot be written costs only the time.

`lean_options` are the session options of the built-in voices' models: one thread, and neither onnxruntime's
arena nor its memory-pattern planner, which keep the largest run's buffers for good (issue 17: piper's joe held
~270-500 MB more after a long sentence; per-sentence CPU unchanged for hibari, lower for piper).

Threads: plain functions on the thread that owns the session (the engine's worker); nothing shared.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCHEME = 1


def cached_path(directory: Path, model: str, ort_version: str) -> Path:
    """Where the optimized copy of `model` for onnxruntime `ort_version` is kept in `directory`."""
    st = os.stat(model)
    digest = hashlib.sha256(f"{SCHEME} {ort_version} {platform.machine()} {os.path.abspath(model)} {st.st_size} "
                            f"{st.st_mtime_ns}".encode())
    stem = Path(model).stem
    return directory / f"{stem}-optimized-{digest.hexdigest()[:16]}.onnx"


def lean_options(ort: Any) -> Any:
    """onnxruntime SessionOptions for an engine's model (see the module docstring): one intra-op thread (the
    engine's worker runs it: its fastest or cheapest setting on these machines), no arena, no memory-pattern planner."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about the graph are the model's business, not the user's
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    return options


def load_errors(ort: Any) -> tuple[type[BaseException], ...]:
    """The exceptions onnxruntime raises for a model file it cannot load (they derive from Exception only)."""
    state = ort.capi.onnxruntime_pybind11_state
    return (state.InvalidProtobuf, state.InvalidGraph, state.Fail, state.NoSuchFile, state.RuntimeException,
            state.InvalidArgument, OSError)


def cached_session(model: str, make_options: Callable[[], Any], directory: Path | None) -> Any:
    """An InferenceSession on the CPU for `model`, with the options `make_options()` gives, loaded from the
    optimized copy in `directory` (made there on the first call; None: no cache, optimized as usual).
    RuntimeError when the model itself cannot be loaded (onnxruntime's own errors derive from Exception only)."""
    import onnxruntime as ort  # type: ignore[import-untyped]

    def session(path: str, options: Any) -> Any:
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def model_session() -> Any:
        try:
            return session(model, make_options())
        except load_errors(ort) as exc:  # as RuntimeError: the engine's loader says it in one sentence
            raise RuntimeError(f"the model {model} cannot be loaded ({exc})") from exc

    if directory is None:
        return model_session()
    path = cached_path(directory, model, ort.__version__)
    for again in (False, True):
        # The saved copy, not the session that saved it: that one holds ~10 MB more (the serialised graph),
        # and the first start then runs what every later start runs.
        if not path.exists() and not _save_optimized(model, path, make_options, session):
            break
        options = make_options()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # done when it was saved
        try:
            return session(str(path), options)
        except load_errors(ort) as exc:
            log.warning("the cached optimized model %s cannot be loaded (%s): %s", path, exc,
                        "loading the model as it comes" if again else "optimizing it again")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    return model_session()


def _save_optimized(model: str, path: Path, make_options: Callable[[], Any],
                    session: Callable[[str, Any], Any]) -> bool:
    """Optimize `model` and write it to `path` atomically; False (logged) when the cache cannot be written."""
    import onnxruntime as ort

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".tmp.onnx", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        log.info("cannot cache the optimized %s in %s (%s): the next start optimizes it again", model,
                 path.parent, exc)
        return False
    errors = load_errors(ort)  # OSError among them: the write or the rename
    try:
        options = make_options()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = tmp
        session(model, options)
        os.replace(tmp, path)
    except errors as exc:
        log.info("could not save an optimized copy of %s in %s (%s): the next start optimizes it again",
                 model, path.parent, exc)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        return False
    log.debug("cached the optimized %s as %s", model, path)
    return True
