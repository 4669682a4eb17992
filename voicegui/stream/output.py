"""Audio output: a sounddevice.OutputStream, kept open between utterances, fed from each utterance's ring.

Parts: ``DeviceStream`` is one open PortAudio stream; its callback plays the attached ``AudioOutput`` (one
utterance: ring, prebuffer gate, counters, its end) or silence. ``OutputKeeper`` (the Player owns one) keeps
the stream open between utterances and reuses it when the device, rate, latency and blocksize match, so a Speak
does not pay for a device open (48-77 ms) nor the null sink's stall; it closes it after IDLE_CLOSE_S idle.

Threads:
* The asyncio loop writes decoded frames into ``ring``, sets ``gate_frames`` (the prebuffer threshold) and
  ``ended``, drains ``played`` (a copy of what the callback handed to the device, for the waveform and --out),
  stops (``stop_now``) and releases the utterance. Opening a stream (``OutputKeeper.acquire``) runs in a worker
  thread, the idle close in a timer thread; the keeper's lock serialises those (never the callback).
* The PortAudio callback thread runs ``DeviceStream._callback`` -> ``AudioOutput.render`` only: it copies
  ring -> device, fills silence when the ring is empty, counts underruns, records the time of the first
  audible sample (at or above limits.AUDIBLE_LEVEL, -40 dBFS), copies what it played into ``played``, and at the end
  writes silence until the last sample has been played (``_play_out``), then announces the end (``finished``,
  ``on_finished``). It never
  logs or blocks; it writes only its own counters (plain attributes) and preallocated arrays; the end's
  announcement is its one brief lock (see ``_play_out``).
* Stop: the callback writes silence from its next call; the stream stays open for the next utterance.
* Device loss: when the sound server goes away mid-stream, PortAudio's own thread ends the stream and calls
  the finished-callback although we never closed it (measured with a killed PulseAudio: the ALSA host API
  fails its poll and stops): ``lost`` is set and the utterance's end announced. A device that merely stops
  calling us (hung server) is caught by ``check_alive()``, which the loop polls: no callback for ``STALL_S``
  while the utterance should play. Either way ``failure()`` gives the user's sentence, the session stops
  instead of waiting forever, and the keeper drops that stream: the next utterance opens a new one.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sounddevice as sd

from voicegui.limits import AUDIBLE_LEVEL
from voicegui.stream import alsa
from voicegui.stream.ring import FloatRing

log = logging.getLogger(__name__)

# PortAudio listed the devices when sounddevice was imported, loading every ALSA plugin on the way: let the
# ones no stream uses go (~10 MB; stream/alsa.py says why this keeps the device list and every device usable).
alsa.release_listing_plugins()

MAX_UNDERRUN_MARKS = 1024
# No callback for this long while the stream should be running means the device hung. PulseAudio's null sink
# can stall a new stream ~2 s (docs/architecture.md), so this is well above that.
STALL_S = 6.0
# How long stop_now() waits for PortAudio to abort a lost device's stream before leaving it behind. Measured
# with a SIGSTOPped PulseAudio: Pa_AbortStream joins PortAudio's thread, which is stuck inside the ALSA pulse
# plugin until the sound server answers again, i.e. possibly forever.
ABORT_WAIT_S = 1.0
# Silence written after the last sample beyond PortAudio's own figure for when it plays (AudioOutput._play_out): the
# end of a Speak is announced this much later, and a stream closed then has played every sample.
PLAY_OUT_MARGIN_S = 0.02
# An OutputKeeper closes its stream after this long without an utterance: an idle open stream costs CPU (see
# OutputKeeper), reopening costs 48-77 ms and, on the null sink, a stall (docs/architecture.md).
IDLE_CLOSE_S = 30.0

_abandoned_streams: list[sd.OutputStream] = []  # kept referenced: their thread may still be inside PortAudio


class OutputError(Exception):
    """The audio device could not be opened or failed; str() is a clear message for the user."""


@dataclass(frozen=True)
class OutputConfig:
    device: int | str | None = None
    latency: str | float = "low"  # 'low' | 'high' | seconds
    blocksize: int = 0  # 0 lets PortAudio choose (lowest latency for the host API)
    volume: float = 1.0


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


def stream_key(sample_rate: int, config: OutputConfig) -> tuple[object, ...]:
    """What a device stream is opened with: two utterances with the same key can share one stream (the volume
    is applied per utterance, so it is not part of it)."""
    return resolve_device(config.device), sample_rate, config.latency, config.blocksize


class DeviceStream:
    """One open, running PortAudio output stream (mono float32). Its callback plays the attached AudioOutput,
    or silence while none is attached, so it can stay open between utterances (see OutputKeeper)."""

    def __init__(self, sample_rate: int, config: OutputConfig) -> None:
        self.sample_rate = sample_rate
        self.config = config
        self.key = stream_key(sample_rate, config)
        # Written by the loop (attach/detach), read by the callback: a reference assignment, atomic.
        self.voice: AudioOutput | None = None
        self.callbacks = 0  # written by the callback only
        self.lost = False  # the stream ended without our close(), or stopped calling back (see AudioOutput)
        self.finished = threading.Event()  # PortAudio's finished-callback ran
        self.output_latency_s = 0.0
        self._stream: sd.OutputStream | None = None
        self._closing = False

    def open(self) -> None:
        """Open and start the stream (blocking, tens of ms: a worker thread's job). OutputError if it cannot."""
        alsa.quiet_errors()
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
            self.output_latency_s = float(self._stream.latency)
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            if self._stream is not None:
                self._closing = True
                self._stream.close(ignore_errors=True)
                self._stream = None
            raise OutputError(_device_message(self.config.device, exc)) from exc
        log.debug("output stream open: %d Hz, latency %.1f ms", self.sample_rate, self.output_latency_s * 1000)

    @property
    def running(self) -> bool:
        """Open, started, and neither lost nor finished: an utterance can be attached to it."""
        return (self._stream is not None and not self.lost and not self.finished.is_set()
                and bool(self._stream.active))

    def close(self) -> None:
        """Close the stream (what it still holds is dropped). A lost one is aborted without hanging the caller."""
        self._closing = True
        if self.lost:
            self._abort_lost()
            return
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close(ignore_errors=True)

    def _abort_lost(self) -> None:
        """Abort and close a lost device's stream without letting a hung PortAudio hang us (see ABORT_WAIT_S)."""
        stream, self._stream = self._stream, None
        if stream is None:
            return
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

    # --- PortAudio's threads -----------------------------------------------------------------------------
    def _callback(self, outdata: np.ndarray, frames: int, time_info, status: sd.CallbackFlags) -> None:
        self.callbacks += 1
        voice = self.voice
        if voice is None:
            outdata.fill(0)
            return
        voice.render(outdata, frames, time_info, status)

    def _on_finished(self) -> None:
        # Once per stream, after the last callback: after our close(), or because the device went away.
        if not self._closing:
            self.lost = True
        self.finished.set()
        voice = self.voice
        if voice is not None:
            voice.device_finished()


class OutputKeeper:
    """Keeps one DeviceStream open between utterances (the Player owns one): an utterance with the same device,
    rate, latency and blocksize reuses it; anything else closes it and opens another. Idle, the stream plays
    silence, which costs CPU (measured: ~7 % of a core at latency 'low', ~460 callbacks/s, ~3 % at 'high'), so
    it is closed after ``idle_close_s`` without an utterance (None: never; the caller closes it).

    Threads: ``acquire`` opens the device, so it runs in a worker thread; ``release`` and ``close`` run on the
    loop; the idle close runs in a timer thread. ``_lock`` serialises the three (never the callback's).
    """

    def __init__(self, idle_close_s: float | None = IDLE_CLOSE_S) -> None:
        self.idle_close_s = idle_close_s
        self.opened = 0  # device streams opened so far (reuse is visible as not counting up)
        self._stream: DeviceStream | None = None
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    @property
    def stream(self) -> DeviceStream | None:
        """The stream kept open, if any."""
        return self._stream

    def acquire(self, voice: AudioOutput) -> None:
        """Attach ``voice`` to the kept stream, opening one if there is none that fits (OutputError if the
        device cannot be opened). Blocking: call from a worker thread."""
        with self._lock:
            self._cancel_timer()
            stream = self._stream
            if stream is not None and (stream.key != voice.key or not stream.running):
                self._stream = None
                stream.close()
                stream = None
            if stream is None:
                stream = DeviceStream(voice.sample_rate, voice.config)
                stream.open()
                self._stream = stream
                self.opened += 1
            voice.attach(stream)

    def release(self, voice: AudioOutput) -> None:
        """The utterance has ended (played out or stopped): detach it; a lost stream is closed, a healthy one
        kept for the next utterance."""
        with self._lock:
            stream = voice.device
            voice.detach()
            if stream is None or stream is not self._stream:
                return
            if stream.lost or voice.lost:
                stream.lost = True
                self._stream = None
                stream.close()
            elif self.idle_close_s is not None:
                self._timer = threading.Timer(self.idle_close_s, self._close_idle)
                self._timer.daemon = True  # never keeps the process alive
                self._timer.start()

    def close(self) -> None:
        """Close the kept stream, releasing the device (the next acquire opens a new one)."""
        with self._lock:
            self._cancel_timer()
            stream, self._stream = self._stream, None
            if stream is not None:
                stream.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _close_idle(self) -> None:
        # The timer thread: nothing has played for idle_close_s.
        with self._lock:
            stream = self._stream
            if self._timer is None or stream is None or stream.voice is not None:
                return  # an utterance came (acquire cancelled the timer) or the keeper was closed
            self._timer = None
            self._stream = None
            stream.close()
        log.debug("output stream closed after %.0f s idle", self.idle_close_s or 0)


class AudioOutput:
    """One utterance's side of the output: its ring, prebuffer gate, counters and end. It plays through a
    DeviceStream that an OutputKeeper attaches it to (``open()`` makes a private one, closed by ``close()``)."""

    def __init__(self, ring: FloatRing, sample_rate: int, config: OutputConfig, played: FloatRing | None = None):
        self.ring = ring
        self.played = played
        self.sample_rate = sample_rate
        self.config = config
        self.key = stream_key(sample_rate, config)
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
        self.callbacks = 0  # how many times the callback ran for this utterance (the loop watches it move)
        self.device_underflows = 0  # callbacks PortAudio flagged output_underflow (the device ran dry)
        # Called once, on PortAudio's thread, when the utterance has been played out or the device was lost:
        # the session hands the news to its loop with call_soon_threadsafe instead of polling `finished`.
        self.on_finished: Callable[[], None] | None = None
        self._in_underrun = False
        self._tail_left: int | None = None  # silence still to write after the last sample (see _play_out)
        self._sound_end_dac = 0.0  # stream time (PortAudio's clock) at which the last sample handed on plays
        self._done = False  # played out: the callback writes only silence for it
        self._announced = False
        self.lost = False  # the stream ended without our close(), or hung: the device went away
        self.finished = threading.Event()
        self._watch_count = -1
        self._watch_since = 0.0
        self.output_latency_s: float | None = None
        self.device: DeviceStream | None = None  # the stream it plays on, once attached
        self._own: OutputKeeper | None = None  # open() without a keeper: a private one
        self._stopped = False

    # --- loop side -------------------------------------------------------------------------------------
    def open(self) -> None:
        """Play on a stream of its own (blocking: a worker thread's job); ``close()`` closes it."""
        self._own = OutputKeeper(idle_close_s=None)
        self._own.acquire(self)

    def close(self) -> None:
        """Let go of a stream opened by ``open()``."""
        if self._own is not None:
            self._own.release(self)
            self._own.close()

    def attach(self, stream: DeviceStream) -> None:
        """Start playing on ``stream`` (OutputKeeper.acquire calls this)."""
        self.device = stream
        self.output_latency_s = stream.output_latency_s
        stream.voice = self  # last: the callback may render it from now on

    def detach(self) -> None:
        """Stop playing on the stream (OutputKeeper.release calls this): it plays silence from its next callback."""
        if self.device is not None and self.device.voice is self:
            self.device.voice = None

    def device_finished(self) -> None:
        # PortAudio's thread: the stream ended under this utterance. Unless it was stopped or played out,
        # the device went away.
        if not self._done and not self._stopped:
            self.lost = True
        self._announce()

    def _announce(self) -> None:
        if self._announced:
            return
        self._announced = True
        self.finished.set()
        if self.on_finished is not None:
            self.on_finished()

    def check_alive(self, now: float | None = None) -> bool:
        """Loop side, polled: False once the device was lost or has stopped calling back for STALL_S."""
        if self.lost:
            return False
        device = self.device
        if device is None or self._stopped or self._done:
            return True
        if device.lost:
            self.lost = True
            return False
        now = time.monotonic() if now is None else now
        if self.callbacks != self._watch_count:
            self._watch_count, self._watch_since = self.callbacks, now
            return True
        if now - self._watch_since > STALL_S:
            self.lost = device.lost = True
            return False
        return True

    def failure(self) -> str:
        """The user's sentence for a lost device (valid once check_alive() returned False)."""
        name = "the default audio device" if self.config.device in (None, "") else \
            f"audio device {self.config.device!r}"
        played = self.frames_played / self.sample_rate
        if self.callbacks and self.device is not None and self.device.finished.is_set():
            how = "went away"
        elif self.callbacks:
            how = f"stopped taking audio for more than {STALL_S:g} s"
        else:
            how = "never started taking audio"
        return (f"The audio output stopped: {name} {how} after {played:.1f} s of playback "
                "(was it unplugged, or did the sound server stop?).")

    def stop_now(self) -> None:
        """Silence at once: the callback writes silence from its next call, the stream stays open for the next
        utterance (what the device already holds, about its latency, still plays). A lost device's stream is
        aborted (without hanging on a hung sound server)."""
        self._stopped = True
        if self.lost and self.device is not None:
            self.device.lost = True
            self.device.close()
        self.finished.set()

    @property
    def active(self) -> bool:
        """Still playing: attached to a running stream, neither stopped nor played out."""
        device = self.device
        return (device is not None and device.voice is self and device.running and not self._stopped
                and not self._done)

    # --- PortAudio callback thread ---------------------------------------------------------------------
    def render(self, outdata: np.ndarray, frames: int, time_info, status: sd.CallbackFlags) -> None:
        """Fill ``outdata`` for the DeviceStream's callback: ring -> device, silence when stopped or done."""
        out = outdata[:, 0]
        ring = self.ring
        self.callbacks += 1
        if status.output_underflow:
            self.device_underflows += 1
        if self._stopped or self._done:
            out.fill(0)  # not one more sample after Stop
            return
        if not self.playing:
            buffered = ring.available
            # At least this whole callback, even with no prebuffer: a codec's first output can be a few
            # samples (mp3 after its encoder delay is trimmed: 47 at 24 kHz), and starting on them ran dry
            # in the same callback, one counted underrun and ~10 ms of silence in every mp3 run at prebuffer 0.
            # Never more than the ring holds (a block size above the max buffer): a full ring stops the fetch.
            need = min(max(self.gate_frames, frames), ring.capacity)
            if buffered > 0 and (buffered >= need or self.ended):
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
            if self.first_sound_at is None:  # before the volume: the audio's own level decides, not the knob's
                audible = np.flatnonzero(np.abs(out[:n]) >= AUDIBLE_LEVEL)
                if len(audible):
                    self.first_sound_at = time.monotonic() + audible[0] / self.sample_rate
            if self.volume != 1.0:
                out[:n] *= self.volume
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
        """The ring is empty and nothing more comes: write silence until the last sample has been heard, then
        announce the end.

        Stopping right after the last sample loses the end: PortAudio's ALSA backend stopped the pulse plugin
        (CallbackStop) before PulseAudio had played what it held, so the last ~9 ms (latency 'low') were never
        heard (measured on the null sink's monitor, tests/e2e/test_last_sample.py), and a stream closed after
        the end (the next utterance at another rate, the CLI's exit) drops what it holds. So the callback keeps
        writing silence until the stream's clock has passed the time PortAudio gave for the last sample's
        playback (``_sound_end_dac``, which includes PulseAudio's own delay), and at least for the reported
        latency plus one callback's worth (a host API that reports no times gives 0), plus PLAY_OUT_MARGIN_S:
        once, in the CI's fresh root, the stream closed right after that time still cut the last ~2 ms of a
        10 ms final burst (81 % heard; not reproduced here, cause not established: the ALSA pulse plugin's
        reported times right after a stream opens are the first suspect). Only then is the end
        announced: once per utterance, the one place the callback takes a (brief) lock (Event.set and the
        session's call_soon_threadsafe), when it is writing only silence.
        """
        if self._tail_left is None:
            latency = (self.output_latency_s or 0.0) + PLAY_OUT_MARGIN_S
            self._tail_left = int(np.ceil(latency * self.sample_rate)) + period
        self._tail_left -= silent
        now = 0.0 if time_info is None else float(time_info.currentTime)
        if self._tail_left <= 0 and (now == 0.0 or now >= self._sound_end_dac + period / self.sample_rate
                                     + PLAY_OUT_MARGIN_S):
            self._done = True
            self._announce()
