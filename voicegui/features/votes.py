"""A/B votes: which of two voices a listener preferred, kept so the line-up report can show them.

A `Vote` names both contenders (voice / format labels, in the order they were heard as "Voice 1" and
"Voice 2"), the choice ("1", "2" or "same"), whether the listener voted before the names were revealed
(`blind`), whether loudness was matched, the text and the time. `tally(votes)` sums them per voice
(wins / losses / same).

They are kept in one small JSON file, `votes_path()` = config_dir()/ab-votes.json, written atomically
(temporary file + os.replace, readable by the user only), bounded to the last `MAX_VOTES` votes with texts cut
to `MAX_TEXT` characters. A damaged file is moved aside to ab-votes.json.damaged and logged; entries of the
wrong shape are skipped one by one.

Blocking local file I/O of a few KB: any thread. Qt-free.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from voicegui.app_dirs import config_dir
from voicegui.files import PRIVATE, atomic_write

log = logging.getLogger(__name__)

VOTES_FILE = "ab-votes.json"
MAX_VOTES = 500
MAX_TEXT = 300
CHOICES = ("1", "2", "same")


@dataclass(frozen=True)
class Vote:
    """One preference between two voices; `first`/`second` are the labels heard as Voice 1 / Voice 2."""

    first: str
    second: str
    choice: str  # "1", "2" or "same"
    blind: bool = True  # voted before the names were shown
    matched: bool = False  # both played at the same loudness
    text: str = ""
    at: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S"))

    def __post_init__(self) -> None:
        if self.choice not in CHOICES:
            raise ValueError(f"a vote is one of {', '.join(CHOICES)}, not {self.choice!r}")

    @property
    def winner(self) -> str | None:
        return {"1": self.first, "2": self.second}.get(self.choice)

    @property
    def loser(self) -> str | None:
        return {"1": self.second, "2": self.first}.get(self.choice)

    def sentence(self) -> str:
        if self.winner is None:
            return f"{self.first} and {self.second} sound as good"
        return f"{self.winner} preferred over {self.loser}"


@dataclass
class Tally:
    wins: int = 0
    losses: int = 0
    same: int = 0


def tally(votes: Iterable[Vote]) -> dict[str, Tally]:
    """Per voice label: how often it was preferred, not preferred, or judged the same."""
    out: dict[str, Tally] = {}
    for v in votes:
        for label in (v.first, v.second):
            out.setdefault(label, Tally())
        if v.winner is None:
            out[v.first].same += 1
            out[v.second].same += 1
        else:
            out[v.winner].wins += 1
            out[str(v.loser)].losses += 1
    return out


def votes_path() -> Path:
    return config_dir() / VOTES_FILE


def _vote(raw: Any) -> Vote | None:
    if not isinstance(raw, dict):
        return None
    try:
        return Vote(first=str(raw["first"])[:MAX_TEXT], second=str(raw["second"])[:MAX_TEXT],
                    choice=str(raw["choice"]), blind=bool(raw.get("blind", True)),
                    matched=bool(raw.get("matched", False)), text=str(raw.get("text", ""))[:MAX_TEXT],
                    at=str(raw.get("at", ""))[:40])
    except (KeyError, ValueError):
        return None


def load_votes(path: Path | None = None) -> list[Vote]:
    """The kept votes, oldest first (none when there is no file or it is damaged)."""
    path = votes_path() if path is None else path
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        _set_aside(path, f"cannot be read ({exc})")
        return []
    if not isinstance(data, dict) or not isinstance(data.get("votes"), list):
        _set_aside(path, "is not a list of votes")
        return []
    votes = [v for v in (_vote(raw) for raw in data["votes"]) if v is not None]
    if len(votes) != len(data["votes"]):
        log.warning("votes: skipped %d damaged entries of %s", len(data["votes"]) - len(votes), path)
    return votes[-MAX_VOTES:]


def _set_aside(path: Path, why: str) -> None:
    aside = path.with_name(path.name + ".damaged")
    try:
        os.replace(path, aside)
    except OSError as exc:
        log.warning("votes: %s %s and could not be moved aside (%s)", path, why, exc)
        return
    log.warning("votes: %s %s; moved to %s, starting a new one", path, why, aside)


def add_vote(vote: Vote, path: Path | None = None) -> list[Vote]:
    """Append `vote` to the kept votes (the oldest dropped past MAX_VOTES); returns them all."""
    path = votes_path() if path is None else path
    votes = (load_votes(path) + [_vote(asdict(vote)) or vote])[-MAX_VOTES:]
    save_votes(votes, path)
    return votes


def save_votes(votes: Sequence[Vote], path: Path | None = None) -> Path:
    path = votes_path() if path is None else path
    body = {"version": 1, "votes": [asdict(v) for v in list(votes)[-MAX_VOTES:]]}
    atomic_write(path, (json.dumps(body, ensure_ascii=False, indent=1) + "\n").encode("utf-8"), PRIVATE)
    return path


def votes_about(votes: Iterable[Vote], labels: Iterable[str]) -> list[Vote]:
    """The votes whose two voices are both among `labels` (a report's voices)."""
    wanted = set(labels)
    return [v for v in votes if v.first in wanted and v.second in wanted]
