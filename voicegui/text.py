"""Text splitting for speech: sentences for the built-in engines, request-sized pieces for long input.

`split_sentences()` cuts text into sentences (at . ! ? … and the CJK 。！？) so an engine can speak the
first sentence while it synthesises the next; sentences longer than `max_chars` are cut further at clause
punctuation (, ; : — –), then at spaces, and a single "word" longer than `max_chars` (a URL, unspaced CJK)
is cut where it must. `split_for_request()` packs those sentences into pieces that fit an API's input limit
(4096 characters for OpenAI), for clients that were handed a longer text.

Guarantees (tested with hypothesis): no piece is empty or longer than its limit; whitespace inside a piece is
normalised to single spaces; the pieces' characters, whitespace aside, are the text's characters in order,
and when every cut falls on whitespace (always, for spaced scripts with words <= `max_chars`) the pieces
joined with spaces give back exactly the text's words.

Pure functions, no Qt, no I/O: safe on any thread.
"""

from __future__ import annotations

import re

# A period after these never ends a sentence: titles come before a name, the rest before more of the
# sentence ("e.g. this"). Lower case, without their final period; dotted ones keep their inner dots.
_NEVER_ENDS = frozenset({
    "mr", "mrs", "ms", "mx", "dr", "prof", "st", "sr", "jr", "gen", "capt", "lt", "col", "sgt", "rev", "hon",
    "mt", "fr", "messrs", "mme", "mlle", "e.g", "i.e", "vs", "cf", "viz", "approx", "fig", "figs", "no",
    "nos", "vol", "pp", "ca", "al", "ed", "eds", "dept", "est", "ref",
})
# Western sentence ends need whitespace (or the end) after them, so "3.14", "e.g.x" or "Yahoo!Inc" stay
# whole; CJK ends do not, since CJK text has no spaces. Closing quotes/brackets stay with their sentence.
_END = re.compile(r"(?P<mark>[.!?…]+|[。！？]+)(?P<close>[\"”’'»)\]」』）]*)")
_CJK_END = frozenset("。！？")
_PARAGRAPH = re.compile(r"\n\s*\n")
# Clause cuts: whitespace after , ; : — – (consumed), or right after CJK clause marks, which have no
# whitespace to consume. Not after a bare comma ("1,000") nor an unspaced dash ("word—word"): cutting there
# would split a whitespace-delimited word.
_CLAUSE = re.compile(r"(?<=[,;:—–])\s+|(?<=[，、；：])(?=\S)")
_OPENERS = "\"“‘'«([「『（"


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _ends_sentence(para: str, start: int, end: int, mark: str) -> bool:
    """Whether the end mark para[start:end] (with its closing quotes) ends a sentence."""
    if any(c in _CJK_END for c in mark):
        return True
    if end < len(para) and not para[end].isspace():
        return False  # "3.14", "U.S.A", "Yahoo!Inc"
    rest = para[end:].lstrip()
    if not rest:
        return True
    if mark[-1] in ".…" and not any(c in "!?" for c in mark):
        # A lower-case word after "..." or "etc." continues the sentence.
        first = rest.lstrip(_OPENERS)[:1]
        if first.islower():
            return False
        if mark == ".":
            word = para[para.rfind(" ", 0, start) + 1:start].lstrip(_OPENERS)
            if word.lower() in _NEVER_ENDS or (len(word) == 1 and word.isupper()):
                return False  # "Mr. Smith", "e.g. Paris", "J. K. Rowling"
    return True


def _sentences(para: str) -> list[str]:
    """Sentences of one whitespace-normalised paragraph."""
    out: list[str] = []
    cut = 0
    for m in _END.finditer(para):
        if _ends_sentence(para, m.start(), m.end(), m.group("mark")):
            piece = para[cut:m.end()].strip()
            if piece:
                out.append(piece)
            cut = m.end()
    tail = para[cut:].strip()
    if tail:
        out.append(tail)
    return out


def _pack(units: list[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
    """Greedily join (separator, text) units into (separator, piece) pieces <= limit.

    A cut drops the separator there; each piece keeps the separator of its first unit, so pieces can be
    packed again one level up.
    """
    pieces: list[tuple[str, str]] = []
    first_sep, cur = "", ""
    for sep, unit in units:
        if cur and len(cur) + len(sep) + len(unit) <= limit:
            cur += sep + unit
        else:
            if cur:
                pieces.append((first_sep, cur))
            first_sep, cur = sep, unit
    if cur:
        pieces.append((first_sep, cur))
    return pieces


def _split_words(clause: str, sep: str, max_chars: int) -> list[tuple[str, str]]:
    """(separator, piece) pieces <= max_chars of a clause, cut at spaces and, for over-long words, anywhere."""
    units: list[tuple[str, str]] = []
    for n, word in enumerate(clause.split(" ")):
        word_sep = sep if n == 0 else " "
        if len(word) <= max_chars:
            units.append((word_sep, word))
            continue
        # No whitespace to cut at (a URL, unspaced CJK): cut by code points; the first chunk keeps the
        # separator before the word, the others are glued on.
        for i in range(0, len(word), max_chars):
            units.append((word_sep if i == 0 else "", word[i:i + max_chars]))
    return _pack(units, max_chars)


def _split_long(sentence: str, max_chars: int) -> list[str]:
    """A sentence as pieces <= max_chars, preferring clause boundaries, then spaces."""
    if len(sentence) <= max_chars:
        return [sentence]
    units: list[tuple[str, str]] = []
    pos = 0
    sep = ""
    for m in _CLAUSE.finditer(sentence):
        clause = sentence[pos:m.start()]
        if clause:
            units.append((sep, clause))
            sep = " " if m.end() > m.start() else ""
        pos = m.end()
    if pos < len(sentence):
        units.append((sep, sentence[pos:]))
    expanded: list[tuple[str, str]] = []
    for sep, clause in units:
        if len(clause) <= max_chars:
            expanded.append((sep, clause))
        else:
            expanded.extend(_split_words(clause, sep, max_chars))
    return [piece for _, piece in _pack(expanded, max_chars)]


def split_sentences(text: str, max_chars: int = 300) -> list[str]:
    """Split text into sentences for speech, each at most `max_chars` characters. See the module docstring.

    Blank lines (paragraph breaks) always end a sentence; single line breaks are spaces.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    out: list[str] = []
    for para in _PARAGRAPH.split(text):
        para = _normalise(para)
        if not para:
            continue
        for sentence in _sentences(para):
            out.extend(_split_long(sentence, max_chars))
    return out


def split_for_request(text: str, limit: int = 4096) -> list[str]:
    """Group the text's sentences into as few pieces of <= `limit` characters as a greedy fill gives.

    For sending a text longer than a speech API's input limit as several requests, cut at sentence ends.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    sentences = split_sentences(text, max_chars=min(limit, 300))
    return [piece for _, piece in _pack([(" ", s) for s in sentences], limit)]
