"""The line-up's remembered selection: which voices were ticked, in which order, with which formats, and the
filter text, per provider, so a line-up survives a restart.

One small JSON file, `selection_path()` = config_dir()/lineup-selection.json (next to settings.json and
presets.json; $VOICEGUI_CONFIG_DIR in tests), written atomically (temporary file + os.replace) and only
readable by the user. It is bounded: at most `MAX_PROVIDERS` providers (the most recently saved kept),
`MAX_VOICES` voices each, ids and filter texts of at most `MAX_TEXT` characters; longer or extra entries are
dropped on save and on load. A damaged file (not JSON, wrong shapes) is moved aside to
lineup-selection.json.damaged (the user may look at it), logged, and the line-up starts with nothing ticked;
entries of the wrong shape are skipped one by one, so one bad entry loses only itself.

Blocking local file I/O of a few KB: any thread (the window calls it on the GUI thread). Qt-free.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicegui.app_dirs import config_dir
from voicegui.files import PRIVATE, atomic_write
from voicegui.formats import FORMATS

log = logging.getLogger(__name__)

SELECTION_FILE = "lineup-selection.json"
MAX_PROVIDERS = 20
MAX_VOICES = 200
MAX_TEXT = 200
VERSION = 1


@dataclass
class Selection:
    """The ticked voices in line-up order, formats of those that have their own, and the filter text."""

    voices: list[str] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)
    filter: str = ""


def selection_path() -> Path:
    return config_dir() / SELECTION_FILE


def _clean(raw: Any) -> Selection:
    """A Selection from one provider's JSON value; whatever is not of the expected shape is dropped."""
    if not isinstance(raw, dict):
        return Selection()
    voices: list[str] = []
    for v in raw.get("voices", []) if isinstance(raw.get("voices"), list) else []:
        if isinstance(v, str) and v.strip() and len(v) <= MAX_TEXT and v not in voices:
            voices.append(v)
    voices = voices[:MAX_VOICES]
    formats_raw = raw.get("formats")
    if not isinstance(formats_raw, dict):
        formats_raw = {}
    formats = {v: f for v, f in formats_raw.items() if v in voices and isinstance(f, str) and f in FORMATS}
    text = raw.get("filter")
    return Selection(voices, formats, text[:MAX_TEXT] if isinstance(text, str) else "")


def _read_all(path: Path) -> dict[str, Selection]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        _set_aside(path, f"cannot be read ({exc})")
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("providers"), dict):
        _set_aside(path, "is not a line-up selection")
        return {}
    providers = list(data["providers"].items())[-MAX_PROVIDERS:]
    return {str(name)[:MAX_TEXT]: _clean(raw) for name, raw in providers}


def _set_aside(path: Path, why: str) -> None:
    aside = path.with_name(path.name + ".damaged")
    try:
        os.replace(path, aside)
    except OSError as exc:
        log.warning("line-up selection: %s %s and could not be moved aside (%s); starting with none ticked",
                    path, why, exc)
        return
    log.warning("line-up selection: %s %s; moved to %s, starting with none ticked", path, why, aside)


def load_selection(provider: str, path: Path | None = None) -> Selection:
    """The selection last saved for `provider` (an empty one when there is none or the file is damaged)."""
    return _read_all(selection_path() if path is None else path).get(provider[:MAX_TEXT], Selection())


def save_selection(provider: str, selection: Selection, path: Path | None = None) -> Path:
    """Store `selection` for `provider`, keeping the other providers' (bounded, see the module docstring)."""
    path = selection_path() if path is None else path
    providers = _read_all(path)
    key = provider[:MAX_TEXT]
    providers.pop(key, None)  # re-inserted last: the most recently saved providers are the ones kept
    providers[key] = _clean({"voices": selection.voices, "formats": selection.formats, "filter": selection.filter})
    kept = list(providers.items())[-MAX_PROVIDERS:]
    body = {"version": VERSION, "providers": {name: {"voices": s.voices, "formats": s.formats, "filter": s.filter}
                                              for name, s in kept}}
    atomic_write(path, (json.dumps(body, ensure_ascii=False, indent=1) + "\n").encode("utf-8"), PRIVATE)
    return path
