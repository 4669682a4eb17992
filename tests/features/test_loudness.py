"""Loudness: BS.1770 integrated loudness of real encoded/decoded audio, and a matching gain that never clips."""

from __future__ import annotations

import numpy as np
import pytest

from voicegui.features.loudness import (
    PEAK_CEILING_DBFS,
    TARGET_LUFS,
    apply_gain,
    matching_gain_db,
    measure,
    reaches_target,
)

RATE = 24000


def tone(amplitude: float, seconds: float = 2.0, hz: float = 997.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_louder_audio_measures_louder_by_the_gain():
    quiet, loud = measure(tone(0.05), RATE), measure(tone(0.5), RATE)
    assert quiet.lufs is not None and loud.lufs is not None
    assert loud.lufs - quiet.lufs == pytest.approx(20.0, abs=0.1)  # x10 amplitude = +20 dB
    assert loud.peak_dbfs == pytest.approx(20 * np.log10(0.5), abs=0.01)


def test_matching_brings_both_voices_to_the_target():
    for amp in (0.02, 0.3):
        clip = tone(amp)
        got = measure(clip, RATE)
        gain = matching_gain_db(got)
        assert reaches_target(got, gain)
        assert measure(apply_gain(clip, gain), RATE).lufs == pytest.approx(TARGET_LUFS, abs=0.1)


def test_gain_is_limited_by_the_peak_so_matching_never_clips():
    # A quiet voice with one loud click: full matching would push the click far over full scale.
    clip = tone(0.01)
    clip[1000] = 0.9
    got = measure(clip, RATE)
    gain = matching_gain_db(got)
    assert not reaches_target(got, gain)
    peak = float(np.max(np.abs(apply_gain(clip, gain))))
    assert 20 * np.log10(peak) <= PEAK_CEILING_DBFS + 1e-3


def test_too_short_or_silent_audio_has_no_loudness_and_no_gain():
    assert measure(tone(0.3, seconds=0.2), RATE).lufs is None
    silent = measure(np.zeros(RATE, dtype=np.float32), RATE)
    assert silent.lufs is None and matching_gain_db(silent) == 0.0 and silent.describe() == "n/a"


@pytest.mark.parametrize("rate", [24000, 48000])
def test_a_full_scale_1khz_sine_reads_as_bs1770_says(rate):
    """BS.1770's reference: a 0 dBFS 997 Hz sine in one channel is -3.01 LKFS (K-weighting is ~0 dB there)."""
    t = np.arange(rate * 3) / rate
    sine = np.sin(2 * np.pi * 997 * t).astype(np.float32)
    assert measure(sine, rate).lufs == pytest.approx(-3.01, abs=0.15)
    assert measure(sine * np.float32(0.1), rate).lufs == pytest.approx(-23.01, abs=0.15)
