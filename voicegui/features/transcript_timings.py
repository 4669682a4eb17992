"""Word timings of a Realtime reading from where its transcript deltas arrived in its audio (read-along).

Input: the text of one piece as the user typed it and the `TranscriptTimeline` that stream/realtime.py filled
while it was read (one response per sentence: its audio span in the piece, exact, and the audio position at
which each transcript delta arrived). Output: a `Timings` of the user's text on the piece's clock.

How honest it is. A response's audio span is exact, so each sentence's start and end are. Within a sentence,
the Realtime API says nothing about when a word is spoken: its transcript deltas carry no time and usually
arrive AHEAD of the audio they describe. A word's onset here is the audio position at which the delta holding
its first character arrived, clamped into its response's span and made non-decreasing: the earliest it can be
heard. Those onsets are labelled ``server-transcript`` ("from the Realtime transcript") only when the deltas
arrived spread over the response's audio (its last word's text came after `TRACKING_SHARE` of it); a
transcript that came in one burst ahead of the audio says nothing about where each word falls, and its
sentence's words are estimated by syllables within the sentence's exact span, labelled ``estimated``.

The model may read the text differently: the transcript's words are matched to the typed words
(difflib, on words compared as stream/realtime.transcript_differs compares them); a typed word without a
match is estimated between the matched words around it (or its sentence's bounds), the stretch shared by
syllables, labelled ``estimated``. A response without a
transcript (none sent, or past the bounded timeline) gets its sentence's words estimated the same way; a
sentence whose audio has not arrived yet has no timings yet.

No Qt, no I/O. `transcript_timings()` is a pure function, safe on any thread; a `TranscriptTimer` caches the
finished sentences of one piece and belongs to the thread that uses it (the window's progress line, on the GUI
thread, which rebuilds when the timeline's `version` changed).
"""

from __future__ import annotations

import bisect
import difflib
from collections.abc import Sequence

from voicegui.features.timings import Timing, Timings, syllables, word_spans
from voicegui.stream.realtime import ResponseTimeline, TranscriptTimeline, word_key

SOURCE = "server-transcript"
TRACKING_SHARE = 0.5  # the last word's text must arrive past this share of its sentence's audio to time words


class TranscriptTimer:
    """The timings of one piece's typed `text`, rebuilt from its timeline as it grows: a finished response's
    words are timed once and kept (its timeline no longer changes), so a rebuild costs the response in flight
    only, whatever the length of the piece."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._spans = word_spans(text)
        self._starts = [a for a, _ in self._spans]
        self._ends = [b for _, b in self._spans]
        self._done: list[tuple[ResponseTimeline, int, list[Timing], Timing]] = []  # (response, end char, ...)

    def timings(self, timeline: TranscriptTimeline) -> Timings | None:
        """Timings of the text read as `timeline` records so far; None before any audio."""
        kept = 0
        while kept < len(self._done) and kept < len(timeline.responses) \
                and self._done[kept][0] is timeline.responses[kept]:
            kept += 1
        del self._done[kept:]
        words = [w for _, _, timed, _ in self._done for w in timed]
        sentences = [sentence for _, _, _, sentence in self._done]
        pos = self._done[-1][1] if self._done else 0
        for response in timeline.responses[kept:]:
            span = _locate(self.text, response.said, pos)
            if span is None:
                break  # never expected: the responses read this very text's sentences in order
            a, b = span
            pos = b
            if response.end_s <= response.start_s:
                break  # no audio for it yet: nothing to time
            first = bisect.bisect_left(self._starts, a)
            mine = self._spans[first:bisect.bisect_right(self._ends, b)]  # the words inside a..b
            timed = _sentence_words(self.text, mine, response)
            source = SOURCE if any(w.source == SOURCE for w in timed) else "estimated"
            sentence = Timing(response.start_s, response.end_s, a, b, self.text[a:b], source)
            words.extend(timed)
            sentences.append(sentence)
            if response.done and len(self._done) == len(sentences) - 1:
                self._done.append((response, b, timed, sentence))
        if not sentences:
            return None
        return Timings(self.text, tuple(words), tuple(sentences))


def transcript_timings(text: str, timeline: TranscriptTimeline) -> Timings | None:
    """Timings of `text` (the piece's text as typed) read as `timeline` records; None before any audio."""
    return TranscriptTimer(text).timings(timeline)


def _locate(text: str, said: str, pos: int) -> tuple[int, int] | None:
    """The span of sentence `said` (whitespace normalised by text.split_sentences) in `text`, from `pos`."""
    parts = said.split()
    if not parts:
        return None
    start = text.find(parts[0], pos)
    if start < 0:
        return None
    end = start
    for part in parts:
        at = text.find(part, end)
        if at < 0:
            return None
        end = at + len(part)
    return start, end


def transcript_onsets(response: ResponseTimeline) -> list[tuple[str, float]]:
    """(word, onset_s) per word of the response's transcript: where the delta holding its first character
    arrived, clamped into the response's audio and non-decreasing."""
    out: list[tuple[str, float]] = []
    marks = response.marks
    m = 0
    floor = response.start_s
    for c0, c1 in word_spans(response.transcript):
        while m + 1 < len(marks) and marks[m + 1][0] <= c0:
            m += 1
        at = marks[m][1] if marks else response.start_s
        floor = max(floor, min(max(at, response.start_s), response.end_s))
        out.append((response.transcript[c0:c1], floor))
    return out


def _tracks(onsets: Sequence[tuple[str, float]], response: ResponseTimeline) -> bool:
    """Whether the deltas arrived spread over the response's audio, not all at once ahead of it."""
    if len(onsets) < 2:
        return bool(onsets)  # one word: it starts where the sentence starts
    length = response.end_s - response.start_s
    return onsets[-1][1] - response.start_s >= TRACKING_SHARE * length


def _sentence_words(text: str, spans: Sequence[tuple[int, int]], response: ResponseTimeline) -> list[Timing]:
    """The typed words `spans` of one sentence, timed from its response."""
    if not spans:
        return []
    onsets = transcript_onsets(response) if response.consistent else []
    starts: list[float | None] = [None] * len(spans)
    if _tracks(onsets, response):
        typed = [word_key(text[c0:c1]) for c0, c1 in spans]
        said = [word_key(w) for w, _ in onsets]
        matcher = difflib.SequenceMatcher(None, typed, said, autojunk=False)
        for block in matcher.get_matching_blocks():
            for k in range(block.size):
                if typed[block.a + k]:  # a word of punctuation only matches anything: leave it estimated
                    starts[block.a + k] = onsets[block.b + k][1]
    sources = [SOURCE if s is not None else "estimated" for s in starts]
    _fill(starts, [syllables(text[c0:c1]) + 0.3 for c0, c1 in spans], response.start_s, response.end_s)
    out = []
    for i, ((c0, c1), source) in enumerate(zip(spans, sources, strict=True)):
        start = starts[i]
        assert start is not None  # _fill filled every gap
        nxt = starts[i + 1] if i + 1 < len(starts) else response.end_s
        assert nxt is not None
        out.append(Timing(start, max(start, nxt), c0, c1, text[c0:c1], source))
    return out


def _fill(starts: list[float | None], weights: Sequence[float], begin_s: float, end_s: float) -> None:
    """Give each None in `starts` a time between the known starts around it (or the sentence's bounds), the
    stretch shared by the words' weights; the known ones are kept (they are non-decreasing)."""
    i = 0
    n = len(starts)
    while i < n:
        if starts[i] is not None:
            i += 1
            continue
        j = i
        while j < n and starts[j] is None:
            j += 1
        before = starts[i - 1] if i > 0 else None
        t0 = begin_s if before is None else before
        t1 = end_s if j == n else starts[j]
        assert t1 is not None
        # The word before the stretch (if timed) takes its share too: the stretch starts after it.
        first = i - 1 if before is not None else i
        share = list(weights[first:j])
        total = sum(share) or 1.0
        acc = 0.0
        for k in range(first, j):
            if k >= i:
                starts[k] = t0 + (t1 - t0) * acc / total
            acc += weights[k]
        i = j
