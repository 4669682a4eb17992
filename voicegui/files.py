"""Writing files so that a crash never leaves half of one: `atomic_write`; keeping a damaged one: `set_aside`.

Used for everything voicegui writes for itself or for the user: settings, line-up presets, the history
index and cached audio, exported reports and audio, the .desktop file and icons. `set_aside` renames a file
voicegui cannot read (settings.json, the history index) next to itself, so the app starts with a fresh one
and the user still has the old bytes.

Threads: a plain function; it runs on whichever thread calls it (the GUI/loop thread or a worker thread
for the history's larger writes). Two writers of the same path race only in which version wins.
"""

from __future__ import annotations

import os
import tempfile
import time
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


def set_aside(path: Path) -> Path:
    """Rename `path` to `<name>.corrupt-<YYYYmmdd-HHMMSS>` in the same directory and return the new path.

    A second file set aside in the same second gets `-2`, `-3`, ... rather than replacing the first (two
    windows finding the same damage must not lose either copy). Raises OSError if the rename fails."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    os.replace(path, aside)
    return aside
