"""The hibari engine's start (voicegui.server.engines.hibari): the voice is offered as soon as its model is
loaded, its warm-up sentence is spoken on the worker afterwards, ahead of the first request, and a warm-up that
fails is reported, not swallowed."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from voicegui.server.engines import hibari as hibari_mod

if hibari_mod.missing():
    pytest.skip(hibari_mod.missing(), allow_module_level=True)

import hibari


async def speak(engine: hibari_mod.HibariEngine, text: str) -> int:
    return sum([len(block) async for block in engine.synthesize(text, hibari_mod.VOICE_ID, 1.0)])


def test_the_voice_is_ready_before_its_warm_up_sentence(monkeypatch):
    """The warm-up is held until the constructor has returned (at most 10 s: before the change the constructor
    waited for it, and the warm-up then ran with the engine not yet handed out)."""
    constructed = threading.Event()
    spoken: list[tuple[str, bool]] = []
    real = hibari.Hibari.__call__

    def held(self, text, *args, **kwargs):
        constructed.wait(10)
        spoken.append((text, constructed.is_set()))
        return real(self, text, *args, **kwargs)

    monkeypatch.setattr(hibari.Hibari, "__call__", held)
    engine = hibari_mod.HibariEngine(warm=True, seed=0)
    constructed.set()
    try:
        samples = asyncio.run(speak(engine, "Hello there."))  # queued behind the warm-up on the one worker
        assert [after for _, after in spoken] == [True]  # one warm-up, spoken after the constructor returned
        assert spoken[0][0] == hibari_mod.WARM_UP
        assert samples > 0
    finally:
        engine.close()


def test_a_failing_warm_up_is_reported(monkeypatch, caplog):
    def broken(self, text, *args, **kwargs):
        raise RuntimeError("no kernels for this CPU")

    monkeypatch.setattr(hibari.Hibari, "__call__", broken)
    with caplog.at_level(logging.WARNING):
        engine = hibari_mod.HibariEngine(warm=True, seed=0)
        try:
            engine._executor.submit(lambda: None).result()  # the worker has passed the warm-up
        finally:
            engine.close()
    assert "warm-up sentence failed (no kernels for this CPU)" in caplog.text


def test_a_later_start_keeps_the_tables_out_of_anonymous_memory(tmp_path):
    """Loaded and warm in a fresh process, with the tables cached by an earlier start: they are mapped from
    the cache's files (clean pages the kernel can drop), not read into the heap. Anonymous memory was ~62 MB
    with the tables read from an .npz, ~45 MB mapped; the bound is between."""
    from tests.test_memory import run_python

    code = f"""
        import json, os
        from pathlib import Path
        os.environ["VOICEGUI_CACHE_DIR"] = {str(tmp_path)!r}
        from voicegui.server.engines.hibari import HibariEngine

        engine = HibariEngine(warm=True, seed=0)
        engine._executor.submit(lambda: None).result()  # past the warm-up
        fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
        print(json.dumps({{"anon_mb": int(fields["RssAnon"].split()[0]) / 1024}}))
        engine.close()
    """
    run_python(code)  # the first start builds the tables and the optimized model
    assert run_python(code)["anon_mb"] < 53


def test_its_sessions_run_on_one_thread_without_arena_or_memory_pattern(monkeypatch):
    """The options hibari's ONNX sessions report are ours (issue 17): onnxruntime's arena and memory-pattern
    planner would keep the longest sentence's buffers for good (~4 MB more idle after the warm-up alone, and
    they grow with the longest sentence spoken: tests/test_memory.py). The out-of-vocabulary net, loaded by the
    first word no lexicon knows, gets the same."""
    engine = hibari_mod.HibariEngine(warm=False, seed=0)
    try:
        samples = asyncio.run(speak(engine, "Zorblaxian delegates."))  # an unknown word: the OOV net loads
        sessions = engine._executor.submit(lambda: [engine._tts.sess, engine._tts._g2p._oov._oov.sess]).result()
    finally:
        engine.close()
    assert samples > 0
    for session in sessions:
        options = session.get_session_options()
        assert (options.enable_cpu_mem_arena, options.enable_mem_pattern) == (False, False)
        assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)
