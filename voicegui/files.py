"""Writing files so that a crash never leaves half of one: `atomic_write`.

Used for everything voicegui writes for itself or for the user: settings, line-up presets, the history
index and cached audio, exported reports and audio, the .desktop file and icons.

Threads: a plain function; it runs on whichever thread calls it (the GUI/loop thread or a worker thread
for the history's larger writes). Two writers of the same path race only in which version wins.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PRIVATE = 0o600  # what only this user should read (settings, the history cache)
PUBLIC = 0o644  # what the user exports or installs


def atomic_write(path: Path, data: bytes, mode: int = PUBLIC) -> None:
    """Write via a temporary file in the same directory + os.replace: readers see old or new, never half.

    `mode`: mkstemp creates 0600; files the user exports (reports, saved audio) or installs get the usual
    0644, the settings and the cache keep 0600 (what was said is nobody else's business). The parent
    directory is created if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
