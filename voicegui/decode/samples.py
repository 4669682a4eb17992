"""Sample conversion for the decoders: decoded samples of any type and layout -> float32 mono in [-1, 1].

`to_float_mono` converts a (channels, samples) array (integer samples scaled exactly: s16 / 32768);
`frame_to_mono` does the same for a PyAV AudioFrame, checking its planes' sizes first (raises BadFrame).

Threads: plain functions with no state; they run on the thread that feeds the decoder (the asyncio loop thread in
voicegui).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import av

EMPTY = np.zeros(0, dtype=np.float32)

_MAX_CHANNELS = 8  # speech servers send mono (sometimes stereo); more is a corrupt header, not audio
_SAMPLE_DTYPES: dict[str, type[np.generic]] = {
    "u8": np.uint8, "s16": np.int16, "s32": np.int32, "flt": np.float32, "dbl": np.float64,
}


class BadFrame(ValueError):
    """A decoded frame whose shape cannot be trusted (counted as a rejected packet)."""


def frame_to_mono(frame: av.AudioFrame) -> np.ndarray:
    """float32 mono of a decoded frame; integer samples scaled exactly (s16 / 32768).

    The planes are read here with their sizes checked instead of through AudioFrame.to_ndarray(): fuzzing
    found ADTS input for which FFmpeg's AAC decoder returns a frame whose layout says 63 channels while PyAV
    sees 73 planes, and to_ndarray() then reads unmapped memory (a segfault, tests/decode/fuzz_corpus/
    any-aac-63-channels-segfault.bin). Such a frame is rejected like a bad packet.
    """
    channels = frame.layout.nb_channels
    samples = frame.samples
    planar = frame.format.is_planar
    dtype = _SAMPLE_DTYPES.get(frame.format.name.rstrip("p"))
    planes = frame.planes
    if dtype is None or not 1 <= channels <= _MAX_CHANNELS or samples < 0:
        raise BadFrame(f"unusable frame: {channels} channels of {frame.format.name}")
    if len(planes) != (channels if planar else 1):
        raise BadFrame(f"frame has {len(planes)} planes for {channels} channels")
    per_plane = samples * (1 if planar else channels)
    itemsize = np.dtype(dtype).itemsize
    if any(plane.buffer_size < per_plane * itemsize for plane in planes):
        raise BadFrame("frame planes are shorter than their sample count")
    if planar:
        arr = np.stack([np.frombuffer(memoryview(plane), dtype=dtype, count=samples) for plane in planes])
    else:
        arr = np.frombuffer(memoryview(planes[0]), dtype=dtype, count=per_plane).reshape(-1, channels).T
    return to_float_mono(arr)


def to_float_mono(arr: np.ndarray) -> np.ndarray:
    """(channels, samples) of any sample type -> float32 mono in [-1, 1]."""
    float_input = arr.dtype.kind == "f"
    if arr.dtype == np.int16:
        arr = arr.astype(np.float32) / np.float32(32768.0)
    elif arr.dtype == np.int32:
        arr = (arr.astype(np.float64) / 2147483648.0).astype(np.float32)
    elif arr.dtype == np.uint8:
        arr = (arr.astype(np.float32) - 128.0) / np.float32(128.0)
    else:
        with np.errstate(over="ignore", invalid="ignore"):  # float64 beyond float32 becomes inf, clipped below
            arr = arr.astype(np.float32, copy=False)
    mono = arr[0] if arr.shape[0] == 1 else arr.mean(axis=0, dtype=np.float32)
    if float_input:
        # lossy decoders overshoot slightly; NaN/inf from a broken stream must not reach the device
        mono = np.clip(np.nan_to_num(mono, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
    return np.ascontiguousarray(mono, dtype=np.float32)
