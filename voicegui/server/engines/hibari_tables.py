"""hibari's packed G2P tables (hibari_g2p.py) kept in the user's cache between starts: one directory of .npy
files, one plain array each (no pickled objects), memory-mapped when read. Reading them is a few file opens
where parsing hibari's JSON and packing it takes ~1 s, and only the pages lookups touch become resident, as
clean file pages (~7 MB of the ~12 after the warm-up sentence, most of them after a few sentences: the kernel
maps the neighbours of each page read), where the tables read into memory held ~26 MB (issue 17).

The directory's name holds a digest of everything its content depends on: this format's version, the byte
order, and each hibari asset it is built from (name, size, modification time). A new hibari-tts, an edited
asset or a new format is a new name, so a stale table is never read; old directories are left for the user's
cache cleaner (a few MB each, and only a reinstall makes one).

Writing is atomic: the files go to a temporary directory beside it, which is then renamed into place (a damaged
directory there is moved aside first and removed), so a reader sees a whole directory or none. Files are never
rewritten in place, so the pages a running engine has mapped never change under it. A table that cannot be
read (truncated, not .npy, pickled content, a wrong type) is reported and built again by the caller.

Threads: plain functions on whichever thread loads the voice (the hibari engine's worker); nothing shared.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FORMAT = 2
SUFFIX = ".npy"
SOURCES = ("lexicon_us_gold.json.gz", "lexicon_us_silver.json.gz", "tagger.json.gz")
Parts = dict[str, np.ndarray]


def cache_path(directory: Path, assets: str) -> Path:
    """The cache directory in `directory` for hibari's assets in the folder `assets` as they are now."""
    digest = hashlib.sha256(f"{FORMAT} {sys.byteorder}".encode())
    for name in SOURCES:
        st = os.stat(os.path.join(assets, name))
        digest.update(f" {name} {st.st_size} {st.st_mtime_ns}".encode())
    return directory / f"hibari-g2p-{digest.hexdigest()[:16]}"


def read(path: Path) -> Parts | None:
    """The arrays in the directory `path`, memory-mapped read-only, or None when there is no such directory or
    a file in it cannot be read (logged)."""
    try:
        names = sorted(entry.name for entry in os.scandir(path) if entry.name.endswith(SUFFIX))
        return {name[: -len(SUFFIX)]: np.load(path / name, mmap_mode="r", allow_pickle=False) for name in names}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError) as exc:
        log.warning("the cached hibari tables %s cannot be read (%s): building them again", path, exc)
        return None


def write(path: Path, parts: Parts) -> bool:
    """Write `parts` to the directory `path` atomically, replacing what is there; False (logged) when the cache
    cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=path.name, suffix=".tmp", dir=path.parent))
        try:
            for name, array in parts.items():
                np.save(tmp / f"{name}{SUFFIX}", array, allow_pickle=False)
            _move_into_place(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    except OSError as exc:
        log.info("cannot cache hibari's tables in %s (%s): the next start builds them again", path.parent, exc)
        return False
    log.debug("cached hibari's tables in %s", path)
    return True


def _move_into_place(tmp: Path, path: Path) -> None:
    """Rename the directory `tmp` to `path`; one already there (damaged, or another process's) is renamed out of
    the way first and removed (a process that has its files mapped keeps them until it unmaps them)."""
    try:
        os.rename(tmp, path)
        return
    except OSError:
        if not path.exists():
            raise
    old = Path(tempfile.mkdtemp(prefix=path.name, suffix=".old", dir=path.parent))
    os.rename(path, old / "tables")
    os.rename(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
