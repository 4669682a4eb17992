"""PyInstaller runtime hook: make sounddevice load the PortAudio library shipped inside the bundle.

On Linux sounddevice finds PortAudio with ctypes.util.find_library("portaudio"), which asks ldconfig (the
system's libportaudio2) and has no fallback; its _sounddevice_data copy exists only for Windows and macOS.
The spec copies the build machine's libportaudio.so.2 into the bundle, and this hook, which runs before any
application code, answers find_library("portaudio") with that copy, so the bundle plays audio on a machine
without libportaudio2 and always uses the PortAudio it was tested with. Other names go to the original.

Threads: runs once on the main thread at start-up, before any other thread exists.
"""

import ctypes.util
import glob
import os
import sys

_bundle_dir = getattr(sys, "_MEIPASS", os.path.dirname(sys.executable))
_original_find_library = ctypes.util.find_library


def _find_library(name):
    if name == "portaudio":
        found = sorted(glob.glob(os.path.join(_bundle_dir, "libportaudio.so*")))
        if found:
            return found[0]
    return _original_find_library(name)


ctypes.util.find_library = _find_library
