"""The window's own state between runs: geometry, splitter sizes, the current tab, the text, the theme
choice, the plots' "Fixed axes" and the tray's "Close to tray",
in a small JSON file of its own (window.json in app_dirs.config_dir(), next to settings.json, which
holds what a Speak uses).

Written atomically (a temporary file in the same directory, then os.replace), so a crash mid-write leaves the
old file. Read tolerantly: a missing file gives the defaults silently; a damaged, oversized or foreign file,
or a field of the wrong type, gives the defaults for what is unusable and one log line naming the file. The
file is bounded: the saved text is cut at limits.MAX_TEXT_CHARS (more cannot be spoken anyway), lists at
a few entries, and a file over MAX_FILE_BYTES is not read.

Threads: load() and save() are plain file I/O on whatever thread calls them (the window saves from a worker
thread at close); WindowState is a plain dataclass built and applied on the GUI thread.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from voicegui.app_dirs import config_dir
from voicegui.limits import MAX_TEXT_CHARS

log = logging.getLogger(__name__)

FILE_NAME = "window.json"
MAX_FILE_BYTES = 1024 * 1024  # MAX_TEXT_CHARS of text (UTF-8, ≤ 4 bytes each) plus a little
MAX_SIZES = 4  # splitter panes
THEMES = ("system", "light", "dark")


@dataclass
class WindowState:
    """What the window looked like when it closed. Empty/None fields mean "use the default"."""

    geometry: str | None = None  # QWidget.saveGeometry() as base64
    splitter: list[int] = field(default_factory=list)  # left | right pane widths
    side_splitter: list[int] = field(default_factory=list)  # tabs | readout heights
    tab: int = 0
    text: str = ""
    theme: str = "system"
    close_to_tray: bool = False  # the tray's "Close to tray" (off by default)
    fixed_axes: bool = False  # the plots' "Fixed axes": a tuning session compares runs across restarts too


def state_path() -> Path:
    return config_dir() / FILE_NAME


def _sizes(value: Any) -> list[int] | None:
    if (isinstance(value, list) and len(value) <= MAX_SIZES
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 100_000 for v in value)):
        return list(value)
    return None


def _from_dict(raw: dict[str, Any]) -> tuple[WindowState, list[str]]:
    """The usable fields of `raw` and the names of those that were not."""
    state, bad = WindowState(), []
    geometry = raw.get("geometry")
    if isinstance(geometry, str) and geometry.isascii() and len(geometry) < 4096:
        state.geometry = geometry
    elif geometry is not None:
        bad.append("geometry")
    for name in ("splitter", "side_splitter"):
        if name in raw:
            sizes = _sizes(raw[name])
            if sizes is None:
                bad.append(name)
            else:
                setattr(state, name, sizes)
    tab = raw.get("tab", 0)
    if isinstance(tab, int) and not isinstance(tab, bool) and 0 <= tab < 100:
        state.tab = tab
    else:
        bad.append("tab")
    text = raw.get("text", "")
    if isinstance(text, str):
        state.text = text[:MAX_TEXT_CHARS]
    else:
        bad.append("text")
    theme = raw.get("theme", "system")
    if theme in THEMES:
        state.theme = theme
    else:
        bad.append("theme")
    for name in ("close_to_tray", "fixed_axes"):
        flag = raw.get(name, False)
        if isinstance(flag, bool):
            setattr(state, name, flag)
        else:
            bad.append(name)
    return state, bad


def load(path: Path | None = None) -> WindowState:
    """The saved state, or the defaults for whatever is missing or unusable (one log line, never an error)."""
    path = path or state_path()
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            log.warning("%s is %d bytes (more than %d): ignored, the window opens at its defaults",
                        path, size, MAX_FILE_BYTES)
            return WindowState()
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return WindowState()
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        log.warning("%s is unreadable (%s): the window opens at its defaults; it is rewritten at close",
                    path, exc)
        return WindowState()
    if not isinstance(raw, dict):
        log.warning("%s holds no JSON object: the window opens at its defaults; it is rewritten at close", path)
        return WindowState()
    state, bad = _from_dict(raw)
    if bad:
        log.warning("%s: unusable %s, the defaults are used for them", path, ", ".join(bad))
    return state


def save(state: WindowState, path: Path | None = None) -> Path:
    """Write `state` atomically (text cut at MAX_TEXT_CHARS); raises OSError when the directory is unwritable."""
    path = path or state_path()
    data = asdict(state)
    if len(state.text) > MAX_TEXT_CHARS:
        log.info("the text has %d characters: the first %d are kept for the next start",
                 len(state.text), MAX_TEXT_CHARS)
        data["text"] = state.text[:MAX_TEXT_CHARS]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{FILE_NAME}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
