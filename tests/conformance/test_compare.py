"""The comparison itself can fail: wrong speed, a missing end, a shift or damage in lossless audio, and
distortion are each reported, and the unchanged audio passes. Runs in every test run (no server, no encoder:
the reference is PyAV's decode of a WAV made here)."""

from __future__ import annotations

import numpy as np

from tests.conformance.compare import Audio, check, reference_decode
from voicegui.server.benchclip import speech_like
from voicegui.wavfile import wav_bytes

RATE = 24000


def reference(samples: np.ndarray, rate: int = RATE) -> Audio:
    return reference_decode(wav_bytes(samples, rate), "wav", RATE)


def played(samples: np.ndarray) -> Audio:
    return Audio(samples.astype(np.float64) / 32768.0, RATE)


CLIP = speech_like(1.0, RATE)


def test_the_same_samples_pass():
    assert check(played(CLIP), reference(CLIP), "wav", "same") == ""


def test_a_22050_hz_file_played_as_24000_hz_is_too_short():
    # The 22,050 Hz samples handed to a 24 kHz device unchanged: 8.8 % fast.
    slow = speech_like(1.0, 22050)
    problem = check(played(slow), reference(slow, 22050), "wav", "fast")
    assert "played 22050 samples, the reference has 24000" in problem, problem


def test_a_missing_end_is_reported_even_for_lossy_formats():
    problem = check(played(CLIP[: len(CLIP) - 2400]), reference(CLIP), "mp3", "cut")
    assert "played 21600 samples" in problem, problem


def test_lossless_must_match_sample_for_sample():
    damaged = CLIP.copy()
    damaged[1000:1010] += 40
    assert "LSB" in check(played(damaged), reference(CLIP), "flac", "damaged")
    shifted = np.concatenate([np.zeros(5, np.int16), CLIP[:-5]])
    assert "shifted" in check(played(shifted), reference(CLIP), "wav", "shifted")


def test_distortion_fails_the_correlation():
    rng = np.random.default_rng(1)
    noisy = np.clip(CLIP + rng.normal(0, 4000, len(CLIP)), -32768, 32767).astype(np.int16)
    assert "correlation" in check(played(noisy), reference(CLIP), "opus", "noisy")


def test_lossy_shift_within_a_few_ms_is_aligned():
    shifted = np.concatenate([np.zeros(312, np.int16), CLIP])  # a decoder's priming left in
    assert check(played(shifted), reference(CLIP), "mp3", "primed") == ""
