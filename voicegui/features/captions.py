"""Captions: SRT and WebVTT files from a Speak's Timings (features/timings.py).

One cue per sentence (a sentence longer than `MAX_CUE_WORDS` words is cut at word boundaries into several), from
its first word's start to its last word's end. Estimated timings are said to be estimated inside the file: in
WebVTT a NOTE block after the header; SRT has no comment syntax, so its first cue (0.000 to the first cue's
start, at least 1 ms long) reads "[Timings estimated by voicegui]", and a file whose first cue starts at 0
shares that first instant with it. Timings from a Realtime transcript are said to be so the same way ("Word
times from the Realtime transcript"), next to the estimated note when both apply. `write_captions()` picks the
format from the file name.

Pure text building plus one atomic file write: no Qt, any thread.
"""

from __future__ import annotations

from pathlib import Path

from voicegui.features.timings import FROM_TRANSCRIPT, Timing, Timings
from voicegui.files import atomic_write

MAX_CUE_WORDS = 14  # about two subtitle lines
ESTIMATED_NOTE = "Timings estimated by voicegui"
TRANSCRIPT_NOTE = f"Word times {FROM_TRANSCRIPT}"
EXTENSIONS = (".srt", ".vtt")


class CaptionError(ValueError):
    """Captions cannot be written as asked; str() is one sentence naming the cause and the fix."""


def cues(timings: Timings) -> list[tuple[float, float, str]]:
    """(start_s, end_s, text) per cue: sentences, long ones cut by words; times strictly increasing."""
    out: list[tuple[float, float, str]] = []
    for sentence in timings.sentences:
        words = [w for w in timings.words
                 if w.char_start >= sentence.char_start and w.char_end <= sentence.char_end]
        groups = [words[i:i + MAX_CUE_WORDS] for i in range(0, len(words), MAX_CUE_WORDS)] or [[]]
        for group in groups:
            first: Timing = group[0] if group else sentence
            last: Timing = group[-1] if group else sentence
            text = " ".join(w.text for w in group) if group else " ".join(sentence.text.split())
            start = max(first.start_s, out[-1][1] if out else 0.0)
            out.append((start, max(last.end_s, start + 0.001), text))
    return out


def _stamp(seconds: float, comma: bool) -> str:
    ms = max(0, round(seconds * 1000))
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{',' if comma else '.'}{millis:03d}"


def to_srt(timings: Timings) -> str:
    body = cues(timings)
    notes = [note for note, applies in ((ESTIMATED_NOTE, timings.estimated),
                                        (TRANSCRIPT_NOTE, timings.from_transcript)) if applies]
    if notes:
        first = body[0][0] if body else 0.0
        body = [(0.0, max(first, 0.001), f"[{'; '.join(notes)}]"), *body]
    blocks = [f"{n}\n{_stamp(s, True)} --> {_stamp(e, True)}\n{_one_block(text)}\n"
              for n, (s, e, text) in enumerate(body, 1)]
    return "\n".join(blocks)


def to_vtt(timings: Timings) -> str:
    parts = ["WEBVTT\n"]
    if timings.estimated:
        parts.append(f"NOTE {ESTIMATED_NOTE}: the text is aligned to pauses in the audio, not told by the "
                     "server.\n")
    if timings.from_transcript:
        parts.append(f"NOTE {TRANSCRIPT_NOTE}: each word starts where the model's text for it arrived, which can "
                     "run ahead of the voice.\n")
    parts.extend(f"{_stamp(s, False)} --> {_stamp(e, False)}\n{_vtt_text(text)}\n" for s, e, text in cues(timings))
    return "\n".join(parts)


def _one_block(text: str) -> str:
    """Cue text cannot hold a blank line (it would end the cue) or the arrow of a timing line."""
    return " ".join(text.split()).replace("-->", "->")


def _vtt_text(text: str) -> str:
    return _one_block(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render(timings: Timings, path: Path | str) -> str:
    """The caption file's text for `path`'s extension (.srt or .vtt); CaptionError for another."""
    suffix = Path(path).suffix.lower()
    if suffix == ".srt":
        return to_srt(timings)
    if suffix == ".vtt":
        return to_vtt(timings)
    raise CaptionError(f"Captions are written as .srt or .vtt, not {suffix or 'a file without extension'}: "
                       f"name the file {Path(path).stem}.srt or {Path(path).stem}.vtt.")


def write_captions(timings: Timings, path: Path | str) -> Path:
    """Write SRT or WebVTT (by extension) to `path` atomically; CaptionError for another extension."""
    text = render(timings, path)
    target = Path(path)
    atomic_write(target, text.encode("utf-8"))
    return target
