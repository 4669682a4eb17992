"""hibari's packed G2P tables (hibari_g2p.py) kept in the user's cache between starts: one .npz of plain
arrays (no pickled objects), read in a few tens of ms where parsing hibari's JSON and packing it takes ~1 s.

The file's name holds a digest of everything its content depends on: this format's version, the byte order,
and each hibari asset it is built from (name, size, modification time). A new hibari-tts, an edited asset or a
new format is a new name, so a stale file is never read; old files are left for the user's cache cleaner (a
few MB each, and only a reinstall makes one).

Writing is atomic (a temporary file in the same directory, then os.replace): two processes starting at once
each write a whole file, and a reader sees one of them or none. A file that cannot be read (truncated, not an
npz, pickled content) is reported as None and built again by the caller.

Threads: plain functions on whichever thread loads the voice (the hibari engine's worker); nothing shared.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, cast

import numpy as np

log = logging.getLogger(__name__)

FORMAT = 1
SOURCES = ("lexicon_us_gold.json.gz", "lexicon_us_silver.json.gz", "tagger.json.gz")
Parts = dict[str, np.ndarray]


def cache_path(directory: Path, assets: str) -> Path:
    """The cache file in `directory` for hibari's assets in the folder `assets` as they are now."""
    digest = hashlib.sha256(f"{FORMAT} {sys.byteorder}".encode())
    for name in SOURCES:
        st = os.stat(os.path.join(assets, name))
        digest.update(f" {name} {st.st_size} {st.st_mtime_ns}".encode())
    return directory / f"hibari-g2p-{digest.hexdigest()[:16]}.npz"


def read(path: Path) -> Parts | None:
    """The arrays in `path`, or None when there is no such file or it cannot be read (logged)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        log.warning("the cached hibari tables %s cannot be read (%s): building them again", path, exc)
        return None


def write(path: Path, parts: Parts) -> bool:
    """Write `parts` to `path` atomically; False (logged) when the cache cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **cast(dict[str, Any], parts))  # names only: numpy's stub reads them as flags
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        log.info("cannot cache hibari's tables in %s (%s): the next start builds them again", path.parent, exc)
        return False
    log.debug("cached hibari's tables in %s", path)
    return True
