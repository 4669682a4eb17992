"""Where a Speak is in its text: the piece heard, elapsed and (estimated) total time, and the sentence heard.

`map_pieces()` finds each request's text (a piece of a long text, see text.split_for_request, which normalises
whitespace) in the text box's text, and each piece's sentences (text.split_sentences) in it, as spans of the
box's text. `progress()` maps a session's Snapshot onto that map:

* the piece heard is the session's (exact: each piece's audio starts where the decoded audio before it ends);
* elapsed is the played-audio clock (what the device played, not what arrived);
* each piece's length is exact once the next piece has started (or the last has been received); the others are
  estimated from the characters per second of the pieces measured so far (before any: the prebuffer policy's
  speaking rate), so the total is marked estimated until every piece is in;
* within a piece, most servers say nothing about sentence times: the sentence heard is estimated by sharing the
  piece's audio among its sentences in proportion to their characters, and the word heard by sharing the
  sentence's time among its words by their syllables (features/timings.syllables);
* when the piece has Timings (features/timings.py: a server's or engine's, or estimated from the audio itself,
  as for a replay from history) the sentence and word heard are theirs instead (`Progress.timed`).

Spans are in UTF-16 code units, as Qt's QTextCursor counts positions (an emoji is two). Pure functions, no Qt,
no I/O: safe on any thread (the progress line calls them on the GUI thread).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from voicegui.features.timings import Timings, syllables
from voicegui.stream.session import Snapshot
from voicegui.text import split_sentences

_SENTENCE_CHARS = 300  # as split_for_request cuts sentences


@dataclass(frozen=True)
class WordSpan:
    start: int  # in the box's text, UTF-16 code units
    end: int
    weight: float  # its syllables: its share of the sentence's time


@dataclass(frozen=True)
class SentenceSpan:
    start: int  # in the box's text, UTF-16 code units
    end: int
    chars: int  # its characters, whitespace aside: its share of the piece's audio
    words: tuple[WordSpan, ...] = ()


@dataclass(frozen=True)
class PieceMap:
    chars: int  # characters sent, whitespace aside
    sentences: tuple[SentenceSpan, ...]
    # For Timings of the piece's own text: how many non-space characters precede each of its code points, and
    # the box span (UTF-16) of each non-space character.
    squeezed_before: tuple[int, ...] = ()
    box_chars: tuple[tuple[int, int], ...] = ()

    def box_span(self, start: int, end: int) -> tuple[int, int] | None:
        """The box span of the piece text's code points start..end (None when it holds no visible character)."""
        if not self.squeezed_before or not 0 <= start < end < len(self.squeezed_before):
            return None
        first, last = self.squeezed_before[start], self.squeezed_before[end] - 1
        if last < first:
            return None
        return self.box_chars[first][0], self.box_chars[last][1]


@dataclass(frozen=True)
class Progress:
    piece: int  # 0-based, the piece heard
    pieces: int
    elapsed_s: float
    total_s: float
    estimated: bool  # total_s is partly estimated (not every piece's audio is in yet)
    sentence: tuple[int, int] | None  # the span heard, in the box's text; None: nothing heard yet, or no map
    word: tuple[int, int] | None = None  # the word heard, inside `sentence`
    timed: bool = False  # sentence and word come from Timings, not from shares of characters and syllables


def _squeeze(text: str) -> str:
    return "".join(text.split())


def map_pieces(text: str, pieces: Sequence[str]) -> list[PieceMap] | None:
    """Each piece's sentences as spans of `text`; None when the pieces are not `text`'s (it was edited since
    the Speak began, or a replay of another text plays)."""
    nonspace = [i for i, c in enumerate(text) if not c.isspace()]
    squeezed = "".join(text[i] for i in nonspace)
    wide = [0] * (len(text) + 1)  # UTF-16 offset of each code point offset
    for i, c in enumerate(text):
        wide[i + 1] = wide[i] + (2 if ord(c) > 0xFFFF else 1)
    out: list[PieceMap] = []
    k = 0
    for piece in pieces:
        whole = _squeeze(piece)
        if not whole or squeezed[k:k + len(whole)] != whole:
            return None
        raws = split_sentences(piece, _SENTENCE_CHARS)
        sentences = [_squeeze(s) for s in raws]
        if "".join(sentences) != whole:  # never expected; then the piece is one span
            raws, sentences = [piece], [whole]
        first = k
        spans = []
        for raw, sentence in zip(raws, sentences, strict=True):
            start, end = nonspace[k], nonspace[k + len(sentence) - 1] + 1
            words, j = [], k
            for word in raw.split():
                a, b = nonspace[j], nonspace[j + len(word) - 1] + 1
                words.append(WordSpan(wide[a], wide[b], float(max(1, syllables(word)))))
                j += len(word)
            spans.append(SentenceSpan(wide[start], wide[end], len(sentence), tuple(words)))
            k += len(sentence)
        before, count = [], 0
        for c in piece:
            before.append(count)
            count += not c.isspace()
        before.append(count)
        box = tuple((wide[i], wide[i + 1]) for i in nonspace[first:first + len(whole)])
        out.append(PieceMap(chars=len(whole), sentences=tuple(spans), squeezed_before=tuple(before), box_chars=box))
    return out


def piece_lengths(snap: Snapshot, chars: Sequence[int], fallback_s: Sequence[float]) -> tuple[list[float], bool]:
    """Each piece's audio length in seconds and whether any is estimated. `chars`: each piece's characters;
    `fallback_s`: each piece's guessed length, used until one piece has been measured."""
    starts = snap.piece_starts_s
    exact: list[float | None] = []
    for i, start in enumerate(starts):
        if i + 1 < len(starts):
            exact.append(starts[i + 1] - start)
        elif snap.fetch_done:
            exact.append(snap.audio_received_s - start)
        else:
            exact.append(None)
    measured = [(chars[i], length) for i, length in enumerate(exact) if length is not None and chars[i] > 0]
    seconds = sum(length for _, length in measured)
    cps = sum(c for c, _ in measured) / seconds if seconds > 0 else None
    lengths: list[float] = []
    estimated = False
    for i in range(snap.piece_count):
        length = exact[i] if i < len(exact) else None
        if length is not None:
            lengths.append(length)
        elif snap.fetch_done:
            lengths.append(0.0)  # never fetched (the stream before it was cut): it will not play
        else:
            estimated = True
            guess = chars[i] / cps if cps else fallback_s[i]
            if i == len(starts) - 1:  # arriving now: at least what has come
                guess = max(guess, snap.audio_received_s - starts[i])
            lengths.append(guess)
    return lengths, estimated


def progress(snap: Snapshot, pieces: Sequence[PieceMap] | None, chars: Sequence[int],
             fallback_s: Sequence[float], timings: Sequence[Timings | None] = ()) -> Progress:
    """Where the Speak in `snap` is; `pieces`: map_pieces() of it (None: no sentence is named); `timings`: each
    piece's Timings where known (times from the piece's first sample, characters of the piece's text)."""
    lengths, estimated = piece_lengths(snap, chars, fallback_s)
    piece = min(snap.piece_playing, snap.piece_count - 1)
    sentence = word = None
    timed = False
    if pieces is not None and snap.played_s > 0 and piece < len(pieces):
        into = snap.played_s - snap.piece_starts_s[piece]
        known = timings[piece] if piece < len(timings) else None
        if known is not None:
            heard_sentence, heard_word = known.sentence_at(into), known.word_at(into)
            sentence = None if heard_sentence is None else pieces[piece].box_span(heard_sentence.char_start,
                                                                                  heard_sentence.char_end)
            word = None if heard_word is None else pieces[piece].box_span(heard_word.char_start, heard_word.char_end)
            timed = True
        else:
            sentence, word = _sentence_at(pieces[piece], into / lengths[piece] if lengths[piece] > 0 else 0.0)
    return Progress(piece=piece, pieces=snap.piece_count, elapsed_s=snap.played_s,
                    total_s=max(sum(lengths), snap.played_s), estimated=estimated, sentence=sentence, word=word,
                    timed=timed)


def _sentence_at(piece: PieceMap, fraction: float) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """The sentence at `fraction` (0..1) of the piece's audio, sharing it by characters, and the word in it,
    sharing the sentence's time by syllables."""
    at = min(max(fraction, 0.0), 1.0) * piece.chars
    span = piece.sentences[-1]
    for candidate in piece.sentences:
        if at < candidate.chars:
            span = candidate
            break
        at -= candidate.chars
    return (span.start, span.end), _word_at(span, min(at / span.chars, 1.0) if span.chars else 1.0)


def _word_at(sentence: SentenceSpan, fraction: float) -> tuple[int, int] | None:
    if not sentence.words:
        return None
    at = fraction * sum(w.weight for w in sentence.words)
    for word in sentence.words:
        if at < word.weight:
            return word.start, word.end
        at -= word.weight
    return sentence.words[-1].start, sentence.words[-1].end


def clock(seconds: float) -> str:
    """0:41, 12:05, 1:02:03."""
    total = int(max(seconds, 0.0))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_line(p: Progress) -> str:
    """'Piece 2 of 3 · 0:41 / ~2:05': played / total ('~': estimated); no piece for a one-piece text."""
    times = f"{clock(p.elapsed_s)} / {'~' if p.estimated else ''}{clock(p.total_s)}"
    return f"Piece {p.piece + 1} of {p.pieces} · {times}" if p.pieces > 1 else times
