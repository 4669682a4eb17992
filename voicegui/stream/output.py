"""Audio output: a sounddevice.OutputStream fed from the playback ring by the PortAudio callback.

Threads:
* The asyncio loop creates, starts, stops and closes the stream, writes decoded frames into ``ring``, sets
  ``gate_frames`` (the prebuffer threshold) and ``ended``, and drains ``played`` (a copy of what the callback
  handed to the device, for the waveform and --out).
* The PortAudio callback thread runs ``_callback`` only: it copies ring -> device, fills silence when the
  ring is empty, counts underruns, records the time of the first non-silent sample, copies what it played
  into ``played``, and at the end writes silence until the last sample has been played (``_play_out``). It never logs, blocks or takes a lock; it writes only its own counters (plain attributes)
  and preallocated arrays. ``finished`` is set by PortAudio's finished-callback when the stream has drained.
* Device loss: when the sound server goes away mid-stream, PortAudio's own thread ends the stream and calls
  the finished-callback although we never raised CallbackStop (measured with a killed PulseAudio: the ALSA
  host API fails its poll and stops). ``_on_finished`` tells the two apart and sets ``lost``; a device that
  merely stops calling us (hung server) is caught by ``check_alive()``, which the loop polls: no callback for
  ``STALL_S`` while the stream should run. Either way ``failure()`` gives the user's sentence and the session
  stops instead of waiting for ``finished`` forever.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sounddevice as sd

from voicegui.stream.ring import FloatRing

log = logging.getLogger(__name__)

MAX_UNDERRUN_MARKS = 1024
# No callback for this long while the stream should be running means the device hung. PulseAudio's null sink
# can stall a new stream ~2 s (docs/architecture.md), so this is well above that.
STALL_S = 6.0
# How long stop_now() waits for PortAudio to abort a lost device's stream before leaving it behind. Measured
# with a SIGSTOPped PulseAudio: Pa_AbortStream joins PortAudio's thread, which is stuck inside the ALSA pulse
# plugin until the sound server answers again, i.e. possibly forever.
ABORT_WAIT_S = 1.0
_abandoned_streams: list[sd.OutputStream] = []  # kept referenced: their thread may still be inside PortAudio


_ALSA_HANDLER = None


def _quiet_alsa() -> None:
    """Stop libasound printing "underrun occurred" and similar lines straight onto the user's terminal.

    Underruns are counted by our own callback and shown as metrics; ALSA's own lines (written to stderr by
    the C library, bypassing logging) only duplicate that as noise. The handler runs on PortAudio's thread,
    which already holds the GIL for our callback, and does nothing.
    """
    global _ALSA_HANDLER
    if _ALSA_HANDLER is not None or not sys.platform.startswith("linux"):
        return
    try:
        asound = ctypes.cdll.LoadLibrary("libasound.so.2")
    except OSError:
        log.debug("libasound not loadable: ALSA messages are left as they are")
        return
    handler_type = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                                    ctypes.c_char_p)
    _ALSA_HANDLER = handler_type(lambda *args: None)  # kept referenced: libasound holds the pointer
    asound.snd_lib_error_set_handler(_ALSA_HANDLER)


class OutputError(Exception):
    """The audio device could not be opened or failed; str() is a clear message for the user."""


@dataclass(frozen=True)
class OutputConfig:
    device: int | str | None = None
    latency: str | float = "low"  # 'low' | 'high' | seconds
    blocksize: int = 0  # 0 lets PortAudio choose (lowest latency for the host API)
    volume: float = 1.0


def parse_latency(value: str) -> str | float:
    """'low', 'high' or a number of seconds, as given on the command line or in settings."""
    if value in ("low", "high"):
        return value
    try:
        seconds = float(value)
    except ValueError as exc:
        raise ValueError(f"latency must be low, high or seconds, not {value!r}") from exc
    if not 0 < seconds <= 2:
        raise ValueError(f"latency must be between 0 and 2 seconds, not {seconds}")
    return seconds


@dataclass(frozen=True)
class OutputDevice:
    """A PortAudio device that can play."""

    index: int  # PortAudio's device index (what --device accepts, as does the name)
    name: str
    default_samplerate: float
    is_default: bool  # PortAudio's default output device


def output_devices() -> list[OutputDevice]:
    """The devices that can play, in PortAudio's order (for `voicegui devices` and the window's device list).

    OutputError when PortAudio cannot list them. Called on the caller's thread (main/GUI); PortAudio's
    device query is quick and touches no open stream.
    """
    try:
        devices = sd.query_devices()
        default_out = sd.default.device[1]
    except sd.PortAudioError as exc:
        raise OutputError(str(exc)) from exc
    return [OutputDevice(index, str(dev["name"]), float(dev["default_samplerate"]), index == default_out)
            for index, dev in enumerate(devices) if dev.get("max_output_channels", 0) > 0]


def resolve_device(device: int | str | None) -> int | str | None:
    """Accept an index given as text; otherwise pass names through to PortAudio's own matching."""
    if isinstance(device, str) and device.strip().isdigit():
        return int(device)
    return device or None


def device_sample_rate(config: OutputConfig, wanted: int) -> int:
    """``wanted`` if the device accepts it (no resampling), else the device's default rate."""
    device = resolve_device(config.device)
    try:
        sd.check_output_settings(device=device, samplerate=wanted, channels=1, dtype="float32")
        return wanted
    except sd.PortAudioError as exc:
        if "sample rate" not in str(exc).lower():
            raise OutputError(_device_message(config.device, exc)) from exc
        info = sd.query_devices(device, "output")
        return int(info["default_samplerate"])
    except ValueError as exc:  # sounddevice raises ValueError for unknown device names
        raise OutputError(_device_message(config.device, exc)) from exc


def _device_message(device: int | str | None, exc: BaseException) -> str:
    name = "the default audio device" if device in (None, "") else f"audio device {device!r}"
    reason = str(exc).strip().rstrip(".")
    if device in (None, "") and "querying device -1" in reason:
        # PortAudio's words for "there is no default output device" (e.g. the sound server is not running).
        reason = "there is no audio output device (is the sound server running?)"
    return f"Could not use {name}: {reason}. Check that an output device is connected (voicegui devices lists them)."


class AudioOutput:
    """One OutputStream for one utterance."""

    def __init__(self, ring: FloatRing, sample_rate: int, config: OutputConfig, played: FloatRing | None = None):
        self.ring = ring
        self.played = played
        self.sample_rate = sample_rate
        self.config = config
        # Written by the loop, read by the callback.
        self.gate_frames = 0
        self.ended = False
        self.volume = float(config.volume)
        # Written by the callback, read by the loop/GUI.
        self.playing = False
        self.play_started_at: float | None = None
        self.first_sound_at: float | None = None
        self.frames_played = 0
        self.underrun_episodes = 0
        self.underrun_frames = 0
        self.underrun_times = np.zeros(MAX_UNDERRUN_MARKS, dtype=np.float64)
        self.callback_errors = 0
        self.callbacks = 0  # how many times the callback ran (the loop watches it move)
        self.device_underflows = 0  # callbacks PortAudio flagged output_underflow (the device ran dry)
        # Called once, on PortAudio's thread, when the stream has finished (played out, stopped or lost): the
        # session hands the news to its loop with call_soon_threadsafe instead of polling `finished`.
        self.on_finished: Callable[[], None] | None = None
        self._in_underrun = False
        self._tail_left: int | None = None  # silence still to write after the last sample (see _play_out)
        self._sound_end_dac = 0.0  # stream time (PortAudio's clock) at which the last sample handed on plays
        self._callback_stop = False  # we raised CallbackStop: a finish is the normal end of the utterance
        self.lost = False  # the stream ended without our CallbackStop or stop_now(): the device went away
        self.finished = threading.Event()
        self._watch_count = -1
        self._watch_since = 0.0
        self.output_latency_s: float | None = None
        self._stream: sd.OutputStream | None = None
        self._stopped = False
        # Held while open() starts the stream in its worker thread: PortAudio must never see abort() on a
        # stream while start() on it is still running in another thread (it aborts the process: seen once
        # as "Fatal Python error: Aborted" when a Stop came while the device was opening).
        self._starting = threading.Lock()

    # --- loop side -------------------------------------------------------------------------------------
    def open(self) -> None:
        _quiet_alsa()
        try:
            self._stream = sd.OutputStream(
                samplerate=self.sample_rate,
                channels=1,
                dtype="float32",
                device=resolve_device(self.config.device),
                latency=self.config.latency,
                blocksize=self.config.blocksize,
                callback=self._callback,
                finished_callback=self._on_finished,
            )
        except (sd.PortAudioError, ValueError) as exc:
            raise OutputError(_device_message(self.config.device, exc)) from exc
        self.output_latency_s = float(self._stream.latency)
        with self._starting:
            if self._stopped:
                return  # Stop arrived while the device was opening (open runs in a worker thread)
            self._stream.start()
            if self._stopped:
                # Stop arrived during start(): stop_now() left the abort to us rather than race start().
                self._stream.abort()
        log.debug("output stream open: %d Hz, latency %.1f ms", self.sample_rate, self.output_latency_s * 1000)

    def _on_finished(self) -> None:
        # PortAudio's thread, once per stream, after the last callback.
        if not self._callback_stop and not self._stopped:
            self.lost = True
        self.finished.set()
        if self.on_finished is not None:
            self.on_finished()

    def check_alive(self, now: float | None = None) -> bool:
        """Loop side, polled: False once the device was lost or has stopped calling back for STALL_S."""
        if self.lost:
            return False
        if self._stream is None or self._stopped or self._callback_stop or self.finished.is_set():
            return True
        now = time.monotonic() if now is None else now
        if self.callbacks != self._watch_count:
            self._watch_count, self._watch_since = self.callbacks, now
            return True
        if now - self._watch_since > STALL_S:
            self.lost = True
            return False
        return True

    def failure(self) -> str:
        """The user's sentence for a lost device (valid once check_alive() returned False)."""
        name = "the default audio device" if self.config.device in (None, "") else \
            f"audio device {self.config.device!r}"
        played = self.frames_played / self.sample_rate
        if self.callbacks and self.finished.is_set():
            how = "went away"
        elif self.callbacks:
            how = f"stopped taking audio for more than {STALL_S:g} s"
        else:
            how = "never started taking audio"
        return (f"The audio output stopped: {name} {how} after {played:.1f} s of playback "
                "(was it unplugged, or did the sound server stop?).")

    def stop_now(self) -> None:
        """Silence at once: abort discards what the device still holds (Stop must be heard within 100 ms)."""
        self._stopped = True
        if self._stream is not None:
            if self.lost:
                self._abort_lost()
            elif self._starting.acquire(blocking=False):
                try:
                    self._stream.abort()
                except sd.PortAudioError as exc:
                    log.warning("aborting the output stream failed: %s", exc)
                finally:
                    self._starting.release()
            # else: open() is inside start() in its worker thread; it sees _stopped and aborts right after.
        self.finished.set()

    def _abort_lost(self) -> None:
        """Abort and close a lost device's stream without letting a hung PortAudio hang us (see ABORT_WAIT_S)."""
        stream, self._stream = self._stream, None
        assert stream is not None  # stop_now calls this only while a stream is open
        done = threading.Event()

        def abort_and_close() -> None:
            try:
                stream.abort(ignore_errors=True)
                stream.close(ignore_errors=True)
            finally:
                done.set()

        threading.Thread(target=abort_and_close, name="voicegui-abort-lost-stream", daemon=True).start()
        if not done.wait(ABORT_WAIT_S):
            log.warning("the audio device does not answer: its stream is left behind")
            _abandoned_streams.append(stream)
            # sounddevice's exit handler calls Pa_Terminate, which would wait for that same stuck stream and
            # hang the process at exit. The OS reclaims the device connection when we exit anyway.
            atexit.unregister(getattr(sd, "_exit_handler", lambda: None))

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.close(ignore_errors=True)
            finally:
                self._stream = None

    @property
    def active(self) -> bool:
        return self._stream is not None and self._stream.active

    # --- PortAudio callback thread ---------------------------------------------------------------------
    def _callback(self, outdata: np.ndarray, frames: int, time_info, status: sd.CallbackFlags) -> None:
        out = outdata[:, 0]
        ring = self.ring
        self.callbacks += 1
        if status.output_underflow:
            self.device_underflows += 1
        if self._stopped:
            # Stopped before the stream was aborted (Stop while it was starting): not one more sample.
            out.fill(0)
            raise sd.CallbackAbort
        if not self.playing:
            buffered = ring.available
            if buffered > 0 and (buffered >= self.gate_frames or self.ended):
                self.playing = True
                if self.play_started_at is None:
                    self.play_started_at = time.monotonic()
            else:
                out.fill(0)
                if self._in_underrun:
                    self.underrun_frames += frames
                if self.ended and buffered == 0:
                    self._play_out(time_info, frames, frames)
                return
        n = ring.read_into(out)
        if n < frames:
            out[n:] = 0
        if n:
            if time_info is not None:
                self._sound_end_dac = float(time_info.outputBufferDacTime) + n / self.sample_rate
            if self.volume != 1.0:
                out[:n] *= self.volume
            if self.first_sound_at is None:
                nonzero = np.flatnonzero(out[:n])
                if len(nonzero):
                    self.first_sound_at = time.monotonic() + nonzero[0] / self.sample_rate
            if self.played is not None:
                self.played.write(out[:n])
            self.frames_played += n
        if n < frames:
            if self.ended and ring.available == 0:
                self._play_out(time_info, frames - n, frames)
                return
            self.underrun_frames += frames - n
            if not self._in_underrun:
                self._in_underrun = True
                if self.underrun_episodes < MAX_UNDERRUN_MARKS:
                    self.underrun_times[self.underrun_episodes] = time.monotonic()
                self.underrun_episodes += 1
            self.playing = False  # rebuffer up to the (grown) gate before resuming
        else:
            self._in_underrun = False

    def _play_out(self, time_info, silent: int, period: int) -> None:
        """The ring is empty and nothing more comes: write silence until the last sample has been heard, then stop.

        CallbackStop right after the last sample loses the end: PortAudio's ALSA backend stops the pulse plugin
        before PulseAudio has played what it holds, so the last ~9 ms (latency 'low') were never heard
        (measured on the null sink's monitor, tests/e2e/test_last_sample.py). So the callback keeps writing
        silence until the stream's clock has passed the time PortAudio gave for the last sample's playback
        (``_sound_end_dac``, which includes PulseAudio's own delay), and at least for the reported latency plus
        one callback's worth (a host API that reports no times gives 0).
        """
        if self._tail_left is None:
            latency = self.output_latency_s or 0.0
            self._tail_left = int(np.ceil(latency * self.sample_rate)) + period
        self._tail_left -= silent
        now = 0.0 if time_info is None else float(time_info.currentTime)
        if self._tail_left <= 0 and (now == 0.0 or now >= self._sound_end_dac + period / self.sample_rate):
            self._callback_stop = True
            raise sd.CallbackStop  # PortAudio plays what it holds, then calls finished_callback
