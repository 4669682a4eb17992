"""Timings: when each word and sentence of a Speak is heard, and how we know (read-along and captions).

A `Timings` is two lists of `Timing` (start_s, end_s, char_start, char_end, text, source), one per word and one
per sentence, on the audio's own clock (0 = its first sample). Character offsets are code points of the text
that was spoken (`Timings.text`); the window converts them to Qt's UTF-16 positions itself. `source` says how
the time is known, best first:

* ``server``: the server said so (Kokoro-FastAPI's `/dev/captioned_speech` word timestamps);
* ``server-transcript``: from the Realtime transcript (features/transcript_timings.py): each sentence's bounds
  are exact, each word's start is where the transcript's text for it arrived in the audio, which can run
  ahead of the voice; shown and written as "from the Realtime transcript";
* ``engine``: the built-in server's engine said so (espeak-ng's word events give each word's start; for the
  other engines each sentence's audio is one block, so its bounds are exact);
* ``estimated``: made here by `estimate()`, and always shown and written as estimated.

`estimate()` aligns the text to the audio it was spoken as: it finds the pauses in the audio (10 ms frames
quieter than 1/30 of the loud frames for at least `MIN_GAP_S`), and matches them monotonically to the word
boundaries (a dynamic programme that prefers boundaries after punctuation and near where the words' syllable
weights put them); between matched pauses the words share the voiced time by weight. Character counts alone
drift by a word or more per sentence; the pauses pin every sentence and most clauses.

JSON (`to_json` / `from_json`) is what the history keeps beside the audio; `from_json` takes data from disk and
refuses what is not a Timings (ValueError naming the field), and `MAX_WORDS` bounds it.

Pure functions and frozen dataclasses: no Qt, no I/O, safe on any thread.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from voicegui.text import split_sentences

SOURCES = ("server", "engine", "estimated", "server-transcript")
FROM_TRANSCRIPT = "from the Realtime transcript"  # how the UI and the caption files name 'server-transcript'
MAX_WORDS = 100_000  # a 200,000-character text has fewer; more on disk is damage
FRAME_S = 0.010
MIN_GAP_S = 0.060  # shorter silences are stops inside words (the closure before "t", "k")
QUIET_RATIO = 1 / 30  # frame RMS below this share of the loud frames' level is a pause
_WORD = re.compile(r"\S+")
_VOWELS = re.compile(r"[aeiouyàâäéèêëîïôöùûüæœ]+", re.IGNORECASE)


@dataclass(frozen=True)
class Timing:
    start_s: float
    end_s: float
    char_start: int  # code points into Timings.text
    char_end: int
    text: str
    source: str  # one of SOURCES

    def to_json(self) -> list[Any]:
        return [round(self.start_s, 4), round(self.end_s, 4), self.char_start, self.char_end, self.text,
                self.source]


@dataclass(frozen=True)
class Timings:
    text: str
    words: tuple[Timing, ...]
    sentences: tuple[Timing, ...]
    audio_s: float | None = None  # the length of the audio they were made for, when known (not kept in JSON)

    @property
    def estimated(self) -> bool:
        """Whether any time in it is an estimate (then the UI and the files say so)."""
        return any(t.source == "estimated" for t in (*self.words, *self.sentences))

    @property
    def from_transcript(self) -> bool:
        """Whether any time in it comes from a Realtime transcript (then the UI and the files say so)."""
        return any(t.source == "server-transcript" for t in (*self.words, *self.sentences))

    @property
    def duration_s(self) -> float:
        return max((t.end_s for t in (*self.words, *self.sentences)), default=0.0)

    def word_at(self, seconds: float) -> Timing | None:
        return _at(self.words, seconds)

    def sentence_at(self, seconds: float) -> Timing | None:
        return _at(self.sentences, seconds)

    def shifted(self, offset_s: float, char_offset: int, text: str) -> Timings:
        """These timings placed `offset_s` later and `char_offset` further into `text` (a piece of a long text)."""
        def move(t: Timing) -> Timing:
            return Timing(t.start_s + offset_s, t.end_s + offset_s, t.char_start + char_offset,
                          t.char_end + char_offset, t.text, t.source)
        return Timings(text, tuple(map(move, self.words)), tuple(map(move, self.sentences)),
                       None if self.audio_s is None else self.audio_s + offset_s)

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "text": self.text, "words": [w.to_json() for w in self.words],
                "sentences": [s.to_json() for s in self.sentences]}

    @classmethod
    def from_json(cls, data: Any) -> Timings:
        """Timings from parsed JSON (from disk: not trusted); ValueError naming what is wrong."""
        if not isinstance(data, dict) or data.get("version") != 1:
            raise ValueError("timings are not a version 1 timings object")
        text = data.get("text")
        if not isinstance(text, str):
            raise ValueError("timings text must be text")
        lists = []
        for name in ("words", "sentences"):
            items = data.get(name)
            if not isinstance(items, list) or len(items) > MAX_WORDS:
                raise ValueError(f"timings {name} must be a list of at most {MAX_WORDS}")
            lists.append(tuple(_timing(item, len(text), name) for item in items))
        return cls(text, lists[0], lists[1])


def _timing(item: Any, length: int, name: str) -> Timing:
    if not isinstance(item, list) or len(item) != 6:
        raise ValueError(f"a timings {name} item is not [start, end, char_start, char_end, text, source]")
    start, end, c0, c1, text, source = item
    numbers_ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                     for v in (start, end))
    if not numbers_ok or not 0 <= start <= end:
        raise ValueError(f"a timings {name} item has times {start!r}..{end!r}")
    if not (isinstance(c0, int) and isinstance(c1, int) and 0 <= c0 <= c1 <= length):
        raise ValueError(f"a timings {name} item has characters {c0!r}..{c1!r} outside the text")
    if not isinstance(text, str) or source not in SOURCES:
        raise ValueError(f"a timings {name} item has source {source!r}, not one of {', '.join(SOURCES)}")
    return Timing(float(start), float(end), c0, c1, text, source)


def _at(items: Sequence[Timing], seconds: float) -> Timing | None:
    """The item being heard at `seconds`: the last that has started (a pause belongs to the word before it)."""
    found = None
    for t in items:
        if t.start_s > seconds:
            break
        found = t
    return found


def syllables(word: str) -> int:
    """A rough syllable count (vowel groups, at least one): the weight of a word's speaking time."""
    letters = [c for c in word if c.isalnum()]
    if not letters:
        return 0
    if any(not c.isascii() for c in letters) and not _VOWELS.search(word):
        return max(1, len(letters) // 2)  # scripts without Latin vowels: by characters
    groups = len(_VOWELS.findall(word))
    if word.lower().rstrip(".,;:!?\"')").endswith("e") and groups > 1:
        groups -= 1  # a silent final e
    return max(1, groups + sum(c.isdigit() for c in letters))  # each digit is read as a word


def _weight(word: str) -> float:
    return syllables(word) + 0.3


def _pause_bonus(word: str) -> float:
    """How likely a pause follows `word`, from its punctuation."""
    end = word.rstrip("\"')]»”’")
    if end.endswith((".", "!", "?", "…")):
        return 3.0
    if end.endswith((",", ";", ":", "—", "–")):
        return 2.0
    return 0.5


def word_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _WORD.finditer(text)]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Each sentence of `text` (text.split_sentences) as a code point span of it."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for sentence in split_sentences(text, 100_000):
        words = sentence.split()
        if not words:
            continue
        start = text.find(words[0], pos)
        end = start
        for w in words:
            at = text.find(w, end)
            if at < 0:  # never expected (split_sentences only normalises whitespace): one span for the rest
                return [*spans, (spans[-1][1] if spans else 0, len(text.rstrip()))]
            end = at + len(w)
        spans.append((start, end))
        pos = end
    return spans


def voiced_segments(samples: np.ndarray, rate: int, min_gap_s: float = MIN_GAP_S) -> list[tuple[float, float]]:
    """(start_s, end_s) of the sounding stretches of `samples`, split at pauses of at least `min_gap_s`."""
    frame = max(1, round(FRAME_S * rate))
    n = len(samples) // frame
    if n == 0:
        return []
    rms = np.sqrt(np.mean(np.square(samples[:n * frame].astype(np.float64).reshape(n, frame)), axis=1))
    loud_level = float(np.percentile(rms, 90))
    if loud_level <= 1e-5:
        return []
    loud = np.concatenate([[False], rms > loud_level * QUIET_RATIO, [False]])
    edges = np.flatnonzero(np.diff(loud.astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]  # frame runs [start, end) that are loud
    quiet_frames = min_gap_s / FRAME_S - 1e-9
    keep = np.concatenate([[True], starts[1:] - ends[:-1] >= quiet_frames])  # a run after a long enough pause
    segments = [[int(a), int(b)] for a, b in zip(starts[keep], np.append(ends[np.flatnonzero(keep)[1:] - 1],
                                                                       ends[-1]), strict=True)]
    return [(a * frame / rate, b * frame / rate) for a, b in segments]


def estimate(text: str, samples: np.ndarray, rate: int) -> Timings:
    """Word and sentence timings of `text` spoken as `samples` (float32 mono at `rate`): see the module
    docstring. Every timing is 'estimated'."""
    spans = word_spans(text)
    words = [text[a:b] for a, b in spans]
    if not spans:
        return Timings(text, (), ())
    segments = voiced_segments(samples, rate) or [(0.0, len(samples) / rate if rate else 0.0)]
    times = _align(words, segments)
    timed = tuple(Timing(s, e, a, b, w, "estimated") for (s, e), (a, b), w in zip(times, spans, words, strict=True))
    return Timings(text, timed, sentences_from_words(text, timed, "estimated"))


def sentences_from_words(text: str, words: Sequence[Timing], source: str) -> tuple[Timing, ...]:
    out = []
    for a, b in sentence_spans(text):
        inside = [w for w in words if w.char_start >= a and w.char_end <= b]
        if inside:
            out.append(Timing(inside[0].start_s, inside[-1].end_s, a, b, text[a:b], source))
    return tuple(out)


def _align(words: Sequence[str], segments: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """(start_s, end_s) per word: pauses matched to word boundaries, then voiced time shared by weight."""
    weights = [_weight(w) for w in words]
    voiced = sum(e - s for s, e in segments)
    total = sum(weights)
    # Speech-time (voiced seconds before it) of each boundary as the weights expect it, and of each pause.
    expected, acc = [], 0.0
    for w in weights[:-1]:
        acc += w
        expected.append(acc / total * voiced)
    gaps, acc = [], 0.0
    for (s, e), (s2, _) in zip(segments, segments[1:], strict=False):
        acc += e - s
        gaps.append((acc, s2 - e))
    matched = _match(gaps, expected, [_pause_bonus(w) for w in words[:-1]], voiced)
    # Anchors: (word index, real time) where a word is known to start; the last word ends at the last sound.
    anchors = [(0, segments[0][0])]
    ends: dict[int, float] = {}
    for g, b in matched:
        ends[b] = segments[g][1]  # word b ends where pause g starts
        anchors.append((b + 1, segments[g + 1][0]))
    anchors.append((len(words), segments[-1][1]))
    times: list[tuple[float, float]] = []
    for (i0, t0), (i1, t1) in zip(anchors, anchors[1:], strict=False):
        stop = ends.get(i1 - 1, t1)
        share = weights[i0:i1]
        cum = np.concatenate([[0.0], np.cumsum(share)]) / max(sum(share), 1e-9)
        v0, v1 = _to_voiced(segments, t0), _to_voiced(segments, stop)
        edges = [_to_real(segments, v0 + float(f) * (v1 - v0)) for f in cum]
        edges[0], edges[-1] = t0, stop
        times.extend((edges[k], edges[k + 1]) for k in range(len(share)))
    return times


def _match(gaps: Sequence[tuple[float, float]], expected: Sequence[float], bonus: Sequence[float],
           voiced: float) -> list[tuple[int, int]]:
    """Monotone pairs (pause, boundary) with the best score: a pause near where a boundary is expected, long,
    and after punctuation scores high; a pause matched nowhere lies inside a word."""
    n, m = len(gaps), len(expected)
    if n == 0 or m == 0:
        return []
    scale = max(voiced / (m + 1), 1e-3)  # one word's expected length
    where = np.array([w for w, _ in gaps])[:, None]
    length = np.array([g for _, g in gaps])[:, None]
    score = (np.asarray(bonus, dtype=np.float64)[None, :] + np.minimum(length / 0.1, 3.0)
             - 2.5 * np.abs(where - np.asarray(expected)[None, :]) / scale)
    best = np.zeros((n + 1, m + 1))
    for g in range(1, n + 1):
        # best[g, b] = max(best[g-1, b], best[g, b-1], best[g-1, b-1] + score): the middle term is a running max
        # along the row, so a row is one vector step.
        candidate = np.maximum(best[g - 1, 1:], best[g - 1, :-1] + score[g - 1])
        best[g, 1:] = np.maximum.accumulate(candidate)
    pairs: list[tuple[int, int]] = []
    g, b = n, m
    while g > 0 and b > 0:
        if best[g, b] == best[g - 1, b]:
            g -= 1
        elif best[g, b] == best[g, b - 1]:
            b -= 1
        else:
            pairs.append((g - 1, b - 1))
            g, b = g - 1, b - 1
    return pairs[::-1]


def _to_voiced(segments: Sequence[tuple[float, float]], t: float) -> float:
    acc = 0.0
    for s, e in segments:
        if t <= s:
            return acc
        if t <= e:
            return acc + t - s
        acc += e - s
    return acc


def _to_real(segments: Sequence[tuple[float, float]], v: float) -> float:
    for s, e in segments:
        if v <= e - s:
            return s + v
        v -= e - s
    return segments[-1][1]


# How far the audio timings were made for may differ from the audio played and still describe it (encoder
# edges, a resampler's last block): a second synthesis of a voice that is not deterministic differs by more.
AUDIO_MATCH_S, AUDIO_MATCH_SHARE = 0.05, 0.02


def match_slack_s(timings_audio_s: float) -> float:
    """How much the audio played may differ from `timings_audio_s` (what timings were made for) and still be it."""
    return AUDIO_MATCH_S + AUDIO_MATCH_SHARE * timings_audio_s


def describes(timings: Timings, audio_s: float) -> bool:
    """Whether `timings` (made from a synthesis of its own, e.g. the server's /dev/captioned_speech) can time
    `audio_s` seconds of played audio: their audio is as long, within the encoder's edges."""
    if timings.audio_s is None:
        return False
    return abs(audio_s - timings.audio_s) <= match_slack_s(timings.audio_s)
