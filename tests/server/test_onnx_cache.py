"""onnxruntime sessions over the optimized copy of a model in the user's cache (voicegui.server.engines.onnx_cache),
on hibari's real voice model: the copy computes what the model computes, later starts load it instead of
optimizing the model again, and a damaged or unwritable cache costs only time."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from voicegui.server.engines import hibari as hibari_mod

if hibari_mod.missing():
    pytest.skip(hibari_mod.missing(), allow_module_level=True)

import onnxruntime as ort
from hibari.voices import voice_path

from voicegui.server.engines import onnx_cache
from voicegui.server.engines.hibari_g2p import load_asset

PHONEMES = "həlˈO ðˈɛɹ, ðɪs ɪz ə tˈɛst."


def options() -> ort.SessionOptions:
    return onnx_cache.lean_options(ort)


def outputs(session: ort.InferenceSession) -> list[np.ndarray]:
    vocab = load_asset("vocab.json")
    ids = [0, *[vocab[c] for c in PHONEMES if c in vocab], 0]
    return session.run(None, {"ids": np.asarray([ids], np.int64), "speed": np.asarray([1.0], np.float32)})


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    """A copy of hibari's voice model that a test may spoil."""
    path = tmp_path / "model" / "hibari.onnx"
    path.parent.mkdir()
    shutil.copy2(voice_path(hibari_mod.VOICE_ID, download_missing=False), path)
    return path


def test_the_optimized_copy_computes_what_the_model_computes(model, tmp_path):
    cache = tmp_path / "cache"
    plain = outputs(onnx_cache.cached_session(str(model), options, None))
    first = outputs(onnx_cache.cached_session(str(model), options, cache))
    (copy,) = cache.glob("hibari-optimized-*.onnx")
    later = outputs(onnx_cache.cached_session(str(model), options, cache))
    assert [copy] == list(cache.iterdir())  # no temporary file left behind
    for ours in (first, later):
        assert len(ours) == len(plain)
        for a, b in zip(ours, plain, strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b)


def test_a_later_start_loads_the_copy_without_the_model(model, tmp_path):
    """The source model is spoilt (same size and time, so the copy's name stays): only the copy can load."""
    cache = tmp_path / "cache"
    expected = outputs(onnx_cache.cached_session(str(model), options, cache))
    st = model.stat()
    model.write_bytes(b"\0" * st.st_size)
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns))
    for a, b in zip(outputs(onnx_cache.cached_session(str(model), options, cache)), expected, strict=True):
        assert np.array_equal(a, b)


def test_a_truncated_copy_is_made_again(model, tmp_path, caplog):
    cache = tmp_path / "cache"
    expected = outputs(onnx_cache.cached_session(str(model), options, cache))
    (copy,) = cache.glob("hibari-optimized-*.onnx")
    size = copy.stat().st_size
    copy.write_bytes(copy.read_bytes()[: size // 2])  # cut short, as by a full disk
    with caplog.at_level(logging.WARNING):
        again = outputs(onnx_cache.cached_session(str(model), options, cache))
    assert "cannot be loaded" in caplog.text and "optimizing it again" in caplog.text
    assert copy.stat().st_size == size
    for a, b in zip(again, expected, strict=True):
        assert np.array_equal(a, b)


def test_a_cache_that_cannot_be_written_only_costs_time(model, tmp_path, caplog):
    blocker = tmp_path / "engines"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.INFO):
        session = onnx_cache.cached_session(str(model), options, blocker)
    assert "the next start optimizes it again" in caplog.text
    for a, b in zip(outputs(session), outputs(onnx_cache.cached_session(str(model), options, None)), strict=True):
        assert np.array_equal(a, b)


def test_a_new_model_or_onnxruntime_gets_a_copy_of_its_own(model, tmp_path):
    before = onnx_cache.cached_path(tmp_path, str(model), ort.__version__)
    assert onnx_cache.cached_path(tmp_path, str(model), ort.__version__) == before
    assert onnx_cache.cached_path(tmp_path, str(model), ort.__version__ + ".post1") != before
    st = model.stat()
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert onnx_cache.cached_path(tmp_path, str(model), ort.__version__) != before


def test_the_hibari_engine_keeps_its_optimized_model_in_the_users_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICEGUI_CACHE_DIR", str(tmp_path))
    engine = hibari_mod.HibariEngine(warm=False, seed=0)
    try:
        assert len(list((tmp_path / "engines").glob("hibari-optimized-*.onnx"))) == 1
    finally:
        engine.close()


@pytest.mark.parametrize("cached", [True, False])
def test_a_spoiled_model_is_a_runtime_error_that_names_it(model, tmp_path, cached):
    """onnxruntime's own load errors derive from Exception only: the engine's loader (which turns OSError,
    RuntimeError, ValueError into its one-sentence EngineError) would let them through to the crash dialog."""
    model.write_bytes(model.read_bytes()[:4096])
    with pytest.raises(RuntimeError, match=f"the model {model} cannot be loaded"):
        onnx_cache.cached_session(str(model), options, tmp_path / "cache" if cached else None)
