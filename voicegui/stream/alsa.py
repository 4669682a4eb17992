"""What voicegui asks of libasound (ALSA's library, under PortAudio on Linux) directly, through ctypes.

* ``quiet_errors()``: libasound prints "underrun occurred" and similar lines straight onto the terminal;
  our own callback counts underruns and shows them, so its lines are silenced.
* ``release_listing_plugins()``: PortAudio's ALSA host API lists devices by opening every PCM the ALSA
  configuration defines (pa_linux_alsa.c BuildDeviceList: each ``pcm.*`` node but a few, such as hw and
  plug). Opening one dlopens its plugin, and libasound keeps each plugin loaded in its cache until the global
  configuration is freed. With Debian's libasound2-plugins that is a52 (libavcodec, and through it librsvg,
  x265, rav1e, aom, ...), lavrate, jack, oss, speex, upmix, vdownmix, usb_stream: ~10 MB resident (measured:
  `import sounddevice` on a PulseAudio null sink, 23 -> 13 MB), for devices nobody picked. Freeing the global
  configuration (``snd_config_update_free_global``, what PortAudio's own Pa_Terminate calls) unloads the
  plugins no open PCM uses; PortAudio keeps its device list (its own copy of the names and capabilities), so
  the user sees the same devices, and the next PCM open reads the configuration again (a few ms) and loads
  only the plugin it needs (``pulse`` on PulseAudio and PipeWire; ``hw`` devices need none). libasound
  counts references on the configuration and on each cached plugin, so a PCM open meanwhile keeps what it
  uses. Not on alsa-lib 1.2.3 exactly: its cache cleanup freed the plugin directory's name and kept using it
  (use after free at the next plugin load; fixed in 1.2.3.1, alsa-lib commit 20e003a6).

Threads: ``release_listing_plugins()`` runs once, on the thread that imports ``stream.output`` (right after
PortAudio's initialisation, before that module can open a stream); ``quiet_errors()`` on the worker thread that
opens a device stream. libasound takes its own locks inside both.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

_handler = None  # kept referenced: libasound holds the pointer
_library: ctypes.CDLL | None = None
_load_failed = False


def _asound() -> ctypes.CDLL | None:
    """The libasound PortAudio uses (the system's; dlopen hands back the copy already loaded), or None where
    there is none (not Linux, or not loadable: reason logged once)."""
    global _library, _load_failed
    if _library is not None or _load_failed:
        return _library
    if not sys.platform.startswith("linux"):
        _load_failed = True
        return None
    try:
        _library = ctypes.cdll.LoadLibrary("libasound.so.2")
    except OSError as exc:
        _load_failed = True
        log.debug("libasound not loadable (%s): ALSA is left as it is", exc)
    return _library


def quiet_errors() -> None:
    """Stop libasound printing its messages onto the user's terminal. The handler runs on PortAudio's thread,
    which already holds the GIL for our callback, and does nothing."""
    global _handler
    asound = _asound()
    if _handler is not None or asound is None:
        return
    handler_type = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                                    ctypes.c_char_p)
    _handler = handler_type(lambda *args: None)
    asound.snd_lib_error_set_handler(_handler)


UNSAFE_RELEASE = frozenset({"1.2.3"})  # alsa-lib versions whose cache cleanup breaks the next plugin load


def release_listing_plugins() -> bool:
    """Let libasound unload the plugins PortAudio's device listing loaded (see the module docstring). Call it
    after PortAudio has initialised. True if libasound was asked; False where there is no libasound or its
    version cannot do it safely (the plugins then stay loaded, as before)."""
    asound = _asound()
    if asound is None:
        return False
    asound.snd_asoundlib_version.restype = ctypes.c_char_p
    version = asound.snd_asoundlib_version().decode(errors="replace")
    if version in UNSAFE_RELEASE:
        log.debug("alsa-lib %s cannot unload its plugins safely: they stay loaded", version)
        return False
    status = asound.snd_config_update_free_global()
    if status < 0:  # it returns 0 in every alsa-lib since 1.0; a negative errno would be news
        log.debug("snd_config_update_free_global returned %d: ALSA's plugins stay loaded", status)
        return False
    return True
