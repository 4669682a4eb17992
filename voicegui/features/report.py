"""Line-up reports: a CSV of the numbers and a self-contained HTML page to mail to someone without voicegui.

`export_csv(results, path)`: one header line, one row per voice (TTFA, duration, underruns, bytes, error,
then the cold first byte and the loudness).
`export_html(results, path, title, votes=...)`: one file with no external resources at all (a
Content-Security-Policy meta tag forbids fetching anything), laid out for a stakeholder who reads it at a
glance: a summary at the top (fastest, most consistent, A/B votes, loudness spread), a horizontal TTFA bar
chart whose label column is as wide as the longest voice name (names longer than `LABEL_MAX_CHARS` wrap onto
a second line, never clipped), then a table sortable by clicking its headers (a few lines of inline JS) with
per voice its warm TTFA, the cold first byte of its warm-up (features/lineup.py: loading included), its
loudness (EBU R128 integrated, features/loudness.py), a small waveform and an `<audio controls>` with the
audio inside as a `data:` URI, and the A/B votes about these voices (features/votes.py) with a tally. The
chart and the waveforms are SVG images in `data:` URIs (`<img>`), so they show in browsers and in Qt's
QTextDocument alike, and scripts in them never run.

Under the table, "What each voice said, and when": per voice a collapsible `<details>` with its sentences and
their start times (m:ss.ss on the voice's own audio; each word's start in its tooltip), and where the times come
from: the voice's server or engine (`LineupResult.timings`, features/lineup.py), or, when it gave none, estimated
here from the pauses in what was played (features/timings.estimate; needs the `text`), marked "estimated" on
every sentence whose times are.

"Most consistent" is the voice with the fewest underruns, ties broken by the smallest gap between its cold and
warm TTFA (how much its start depends on the engine being warm); the summary says so.
The audio is a 16-bit WAV of what was played (`audio="played"`, default: what the listener heard, playable
everywhere) or the response body as the server sent it (`audio="original"`, smaller for mp3/opus/aac), with
its own MIME type; raw pcm has no container browsers play, so it is wrapped in a WAV header.

Results are `voicegui.features.lineup.LineupResult`s (anything with the same attributes works). Every text from
the user or a server (voice names, text, errors) is HTML-escaped, and redacted (voicegui.crash.redact) in the
HTML and the CSV alike: both are meant to be mailed, and a server may echo the key in its error message.

Threads: plain blocking functions over finished results; call them from any thread (the window should use a
worker for long line-ups: encoding the audio is a few MB of base64). Qt-free.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voicegui.crash import redact
from voicegui.features.loudness import measure
from voicegui.features.timings import Timing, Timings, estimate
from voicegui.features.votes import Vote, tally, votes_about
from voicegui.files import atomic_write
from voicegui.formats import MIME_TYPES, PCM_RATE
from voicegui.wavfile import wav_bytes

CSV_FIELDS = ("index", "voice", "label", "provider", "model", "format", "detected_format", "ttfa_ms",
              "duration_s", "underruns", "bytes", "error", "cold_first_byte_ms", "loudness_lufs")

LABEL_MAX_CHARS = 34  # a chart label longer than this wraps onto a second line
_CHAR_W = 7.0  # px per character of the chart's 12 px sans-serif text (a generous average)

# Sortable numeric columns: (header, tooltip, value(result, loudness), unit format)
_NUMERIC: tuple[tuple[str, str, str, str], ...] = (
    ("TTFA warm (ms)", "time from the request to the first sound, the engine warmed up first", "ttfa_ms", "{:.0f}"),
    ("Cold first byte (ms)", "first byte of the untimed warm-up request: includes loading the voice",
     "cold_ttfa_ms", "{:.0f}"),
    ("Loudness (LUFS)", "EBU R128 integrated loudness as sent (before any loudness matching)", "lufs", "{:.1f}"),
    ("Gain (dB)", "loudness matching: how much the voice was turned down to play at -23 LUFS", "gain_db",
     "{:+.1f}"),
    ("Duration (s)", "", "duration_s", "{:.2f}"), ("Underruns", "", "underruns", "{:d}"),
    ("Bytes", "", "bytes", "{:d}"))

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:70em}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.35em .6em;text-align:left}
th{background:#f0f0f0;cursor:pointer;user-select:none}th.num,td.num{text-align:right}
th[data-dir=asc]::after{content:" \\25B2"}th[data-dir=desc]::after{content:" \\25BC"}
td.err{color:#a00}blockquote{color:#444;border-left:3px solid #ccc;margin:0;padding-left:1em}
.meta{color:#666;font-size:.9em}svg text{font-size:12px;font-family:system-ui,sans-serif}
.summary{background:#f5f8ff;border:1px solid #c9d6f0;padding:.6em 1em;margin:1em 0}
.summary li{margin:.2em 0}.wave{display:block;margin-top:.2em}
details{margin:.4em 0}summary{cursor:pointer}table.timed{margin:.4em 0 .8em 1em}
"""

# Sort by a cell's data-v (numbers, missing values last) or its text; click again to reverse.
_JS = """
document.querySelectorAll("table.sortable th").forEach(function(th,col){th.addEventListener("click",function(){
var tb=th.closest("table").tBodies[0],rows=Array.from(tb.rows),dir=th.dataset.dir==="asc"?"desc":"asc";
th.closest("tr").querySelectorAll("th").forEach(function(h){delete h.dataset.dir});th.dataset.dir=dir;
function key(r){var c=r.cells[col];
return c.dataset.v!==undefined?(c.dataset.v===""?null:parseFloat(c.dataset.v)):c.textContent}
rows.sort(function(a,b){var x=key(a),y=key(b);if(x===y)return 0;if(x===null)return 1;if(y===null)return -1;
var r=(typeof x==="number"&&typeof y==="number")?x-y:String(x).localeCompare(String(y));return dir==="asc"?r:-r});
rows.forEach(function(r){tb.appendChild(r)})})});
"""


def _cell(value: Any) -> str:
    return "" if value is None else redact(str(value))


def _lufs(result: Any) -> float | None:
    """The voice's loudness as the server sent it: what was played, less the line-up's matching gain."""
    lufs = measure(result.played, result.sample_rate).lufs if len(result.played) else None
    return None if lufs is None else lufs - getattr(result, "gain_db", 0.0)


def _cold(result: Any) -> float | None:
    return getattr(result, "cold_ttfa_ms", None)


def export_csv(results: Sequence[Any], path: Path | str) -> Path:
    """One row per voice; empty cells for what was not measured (e.g. TTFA of a voice that failed)."""
    target = Path(path)
    rows = []
    for r in results:
        lufs = _lufs(r)
        rows.append({
            "cold_first_byte_ms": _cell(_cold(r)), "loudness_lufs": "" if lufs is None else f"{lufs:.1f}",
            "index": r.index, "voice": _cell(r.voice), "label": _cell(r.label), "provider": _cell(r.provider),
            "model": _cell(r.model), "format": r.format, "detected_format": _cell(r.detected_format),
            "ttfa_ms": _cell(r.ttfa_ms),
            "duration_s": r.duration_s, "underruns": r.underruns, "bytes": r.bytes, "error": _cell(r.error),
        })
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(target, buf.getvalue().encode("utf-8"))
    return target


def audio_data_uri(result: Any, audio: str = "played") -> str | None:
    """The voice's audio as a data: URI (see the module docstring), or None when there is none."""
    if audio not in ("played", "original"):
        raise ValueError("audio must be 'played' or 'original'")
    if audio == "original" and result.original:
        fmt = result.detected_format or result.format
        if fmt == "pcm":
            # Browsers play no raw pcm: the same samples in a WAV container (24 kHz s16le mono, as sent).
            pcm = np.frombuffer(result.original[: len(result.original) // 2 * 2], dtype="<i2")
            data, mime = wav_bytes(pcm.astype(np.float32) / 32768.0, PCM_RATE), "audio/wav"
        else:
            data, mime = bytes(result.original), MIME_TYPES.get(fmt, "application/octet-stream")
    elif len(result.played):
        data, mime = wav_bytes(result.played, result.sample_rate), "audio/wav"
    else:
        return None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _svg_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _label_lines(label: str) -> list[str]:
    """One or two lines of at most LABEL_MAX_CHARS, cut at a space when there is one (a third line's worth is
    elided with an ellipsis in the middle of the second; the table has the full name)."""
    if len(label) <= LABEL_MAX_CHARS:
        return [label]
    cut = label.rfind(" ", 0, LABEL_MAX_CHARS + 1)
    cut = cut if cut > 0 else LABEL_MAX_CHARS
    first, rest = label[:cut].rstrip(), label[cut:].strip()
    if len(rest) > LABEL_MAX_CHARS:
        keep = LABEL_MAX_CHARS - 1
        rest = rest[: keep // 2] + "…" + rest[-(keep - keep // 2):]
    return [first, rest]


def _svg_chart(results: Sequence[Any]) -> str:
    """Horizontal warm-TTFA bars, one per voice, labels in a column as wide as the longest (wrapped past
    LABEL_MAX_CHARS); a voice without TTFA shows 'n/a'; the cold first byte is written after the bar."""
    labels = [_label_lines(redact(str(r.label))) for r in results]
    widest = max((len(line) for lines in labels for line in lines), default=4)
    label_w = int(widest * _CHAR_W) + 16
    bar_h, gap, chart_w, tail_w = 22, 8, 360, 190
    rows_h = [max(bar_h, 15 * len(lines) + 6) for lines in labels]
    height = sum(rows_h) + gap * (len(results) + 1)
    values = [r.ttfa_ms for r in results if r.ttfa_ms is not None]
    top = max(values) if values else 1.0
    width = label_w + chart_w + tail_w
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="Time to first audio per voice">'
             '<style>text{font-size:12px;font-family:DejaVu Sans,Verdana,sans-serif;fill:#222}</style>']
    y = gap
    for r, lines, row_h in zip(results, labels, rows_h, strict=True):
        mid = y + row_h / 2
        first_y = mid + 4 - 7.5 * (len(lines) - 1)
        for k, line in enumerate(lines):
            parts.append(f'<text x="{label_w - 8}" y="{first_y + 15 * k:.1f}" text-anchor="end">'
                         f'{html.escape(line)}</text>')
        cold = _cold(r)
        cold_note = "" if cold is None else f" (cold {cold:.0f})"
        if r.ttfa_ms is None:
            parts.append(f'<text x="{label_w + 4}" y="{mid + 4:.1f}" style="fill:#a00">n/a</text>')
        else:
            w = max(1.0, r.ttfa_ms / top * chart_w) if top > 0 else 1.0
            parts.append(f'<rect x="{label_w}" y="{mid - bar_h / 2:.1f}" width="{w:.1f}" height="{bar_h}" '
                         f'fill="#4a7bd0"><title>{html.escape(redact(str(r.label)))}: {r.ttfa_ms:.0f} ms'
                         '</title></rect>')
            parts.append(f'<text x="{label_w + w + 6:.1f}" y="{mid + 4:.1f}">{r.ttfa_ms:.0f} ms{cold_note}</text>')
        y += row_h + gap
    parts.append("</svg>")
    return "".join(parts)


def _svg_waveform(result: Any, width: int = 160, height: int = 28) -> str:
    """A small min/max envelope of what was played (empty box when nothing was)."""
    audio = np.asarray(result.played, dtype=np.float32)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><rect width="{width}" height="{height}" fill="#f4f4f4"/>']
    if len(audio):
        buckets = np.array_split(audio, min(width, len(audio)))
        half = height / 2
        top = " ".join(f"{i * width / len(buckets):.1f},{half - float(b.max()) * half:.1f}"
                       for i, b in enumerate(buckets))
        bottom = " ".join(f"{i * width / len(buckets):.1f},{half - float(b.min()) * half:.1f}"
                          for i, b in reversed(list(enumerate(buckets))))
        parts.append(f'<polygon points="{top} {bottom}" fill="#4a7bd0"/>')
    parts.append("</svg>")
    return "".join(parts)


def _summary(results: Sequence[Any], lufs: list[float | None], votes: Sequence[Vote]) -> str:
    """The few lines a stakeholder reads first."""
    def esc(value: Any) -> str:
        return html.escape(redact(str(value)))

    items = []
    timed = [r for r in results if r.ok and r.ttfa_ms is not None]
    if timed:
        fast = min(timed, key=lambda r: r.ttfa_ms)
        items.append(f"<li><strong>Fastest:</strong> {esc(fast.label)}, first sound after {fast.ttfa_ms:.0f} ms "
                     "(warm engine).</li>")

        def steadiness(r: Any) -> tuple[int, float]:
            cold = _cold(r)
            return r.underruns, abs(cold - r.ttfa_ms) if cold is not None else float("inf")

        steady = min(timed, key=steadiness)
        cold = _cold(steady)
        gap = "" if cold is None else f", cold and warm start within {abs(cold - steady.ttfa_ms):.0f} ms"
        items.append(f"<li><strong>Most consistent:</strong> {esc(steady.label)} ({steady.underruns} underruns{gap}; "
                     "fewest underruns, then the smallest cold/warm gap).</li>")
    failed = [r for r in results if not r.ok]
    if failed:
        items.append(f"<li><strong>Failed:</strong> {', '.join(esc(r.label) for r in failed)} (see the table).</li>")
    if votes:
        board = sorted(tally(votes).items(), key=lambda kv: (-kv[1].wins, kv[1].losses))
        best, t = board[0]
        blind = sum(1 for v in votes if v.blind)
        items.append(f"<li><strong>Votes:</strong> {len(votes)} A/B votes ({blind} blind); most preferred {esc(best)} "
                     f"({t.wins} won, {t.losses} lost, {t.same} same).</li>")
    else:
        items.append("<li><strong>Votes:</strong> none yet (the A/B tab's blind test records them).</li>")
    measured = [(r, v) for r, v in zip(results, lufs, strict=True) if v is not None]
    if len(measured) > 1:
        loud = max(measured, key=lambda rv: rv[1])
        quiet = min(measured, key=lambda rv: rv[1])
        items.append(f"<li><strong>Loudness:</strong> {loud[1] - quiet[1]:.1f} LU between the loudest "
                     f"({esc(loud[0].label)}, {loud[1]:.1f} LUFS) and the quietest ({esc(quiet[0].label)}, "
                     f"{quiet[1]:.1f} LUFS); a louder voice tends to be preferred.</li>")
    return f'<div class="summary"><ul>{"".join(items)}</ul></div>'


def _votes_section(votes: Sequence[Vote]) -> str:
    if not votes:
        return ""

    def esc(value: Any) -> str:
        return html.escape(redact(str(value)))

    rows = "".join(f'<tr><td>{esc(label)}</td><td class="num">{t.wins}</td><td class="num">{t.losses}</td>'
                   f'<td class="num">{t.same}</td></tr>'
                   for label, t in sorted(tally(votes).items(), key=lambda kv: (-kv[1].wins, kv[1].losses)))
    items = "".join(f"<li>{esc(v.at)}: {esc(v.sentence())}"
                    + ("" if v.blind else " (voted after the reveal)")
                    + (", loudness-matched" if v.matched else "") + "</li>" for v in votes[-20:])
    return ("<h2>A/B votes</h2><table><thead><tr><th>Voice</th><th class=\"num\">Preferred</th>"
            "<th class=\"num\">Not preferred</th><th class=\"num\">Same</th></tr></thead>"
            f"<tbody>{rows}</tbody></table><ul>{items}</ul>")


def timings_of(result: Any, text: str | None) -> Timings | None:
    """The voice's timings: its server's (result.timings), else estimated from what was played (only for a voice
    that played the whole text), else None."""
    given = getattr(result, "timings", None)
    if given is not None:
        return given
    metrics = result.metrics
    if not text or not result.ok or metrics is None or not metrics.completed or not len(result.played):
        return None
    return estimate(text, np.asarray(result.played, dtype=np.float32), result.sample_rate)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60.0)
    return f"{int(minutes)}:{rest:05.2f}"


def _how(timings: Timings) -> str:
    """Where a voice's times come from, in a few words."""
    sources = {t.source for t in (*timings.words, *timings.sentences)}
    if sources == {"estimated"}:
        return "estimated here from the pauses in what was played"
    if "server-transcript" in sources:
        # The Realtime API's text comes untimed and usually ahead of the voice: say so, as the window does.
        some = "; some words estimated" if "estimated" in sources else ""
        return f"sentences timed by the Realtime server; words where its transcript arrived (may run ahead){some}"
    if "estimated" in sources:
        return "sentence bounds from the voice's engine; words inside estimated from the pauses"
    if sources == {"server"}:
        return "timed by the server"
    return "timed by the voice's engine, word by word"


def _sentence_row(sentence: Timing, words: Sequence[Timing]) -> str:
    def esc(value: Any) -> str:
        return html.escape(redact(str(value)))

    inside = [w for w in words if w.char_start >= sentence.char_start and w.char_end <= sentence.char_end]
    said = " ".join(f'<span title="{w.start_s:.2f} s">{esc(w.text)}</span>' for w in inside) or esc(sentence.text)
    estimated = sentence.source == "estimated" or any(w.source == "estimated" for w in inside)
    mark = '<td class="meta">estimated</td>' if estimated else '<td class="meta"></td>'
    return (f'<tr><td class="num" data-v="{sentence.start_s:.3f}">{_clock(sentence.start_s)}</td>'
            f"<td>{said}</td>{mark}</tr>")


def _timings_section(results: Sequence[Any], text: str | None) -> str:
    """Per voice, its sentences with their start times (module docstring); '' when no voice has any."""
    def esc(value: Any) -> str:
        return html.escape(redact(str(value)))

    blocks = []
    for r in results:
        timings = timings_of(r, text)
        if timings is None or not timings.sentences:
            continue
        rows = "".join(_sentence_row(s, timings.words) for s in timings.sentences)
        blocks.append(f'<details><summary><strong>{esc(r.label)}</strong>: {esc(_how(timings))}</summary>'
                      '<table class="timed"><thead><tr><th class="num">Starts at</th><th>Sentence (hover a word for '
                      f"its start)</th><th></th></tr></thead><tbody>{rows}</tbody></table></details>")
    if not blocks:
        return ""
    return ('<h2>What each voice said, and when</h2><p class="meta">Each sentence\'s start on the voice\'s own audio '
            '(minutes:seconds). "estimated" marks times worked out from the pauses in the audio, not told by the '
            f"voice's server.</p>{''.join(blocks)}")


def render_html(results: Sequence[Any], title: str = "voicegui line-up", text: str | None = None,
                audio: str = "played", votes: Sequence[Vote] = ()) -> str:
    """The report page as a string (see export_html). Only the votes about two of these voices are shown."""
    def esc(value: Any) -> str:
        return html.escape(redact(str(value)))

    lufs = [_lufs(r) for r in results]
    names = {str(r.voice) for r in results} | {f"{r.voice} / {r.format}" for r in results}
    votes = votes_about(votes, names)
    # Provider, model and format go under the voice's name (one column less: the page reads on a narrow screen).
    head = ["<th>#</th>", "<th>Voice</th>"]
    matched = any(getattr(r, "gain_db", 0.0) for r in results)
    numeric = [c for c in _NUMERIC if c[2] != "gain_db" or matched]  # the Gain column only when matched
    head += [f'<th class="num" title="{esc(tip)}">{esc(h)}</th>' for h, tip, _, _ in numeric]
    head += ["<th>Audio</th>", "<th>Error</th>"]
    rows = []
    for r, loud in zip(results, lufs, strict=True):
        wave = (f'<br><img class="wave" alt="waveform" src="{_svg_uri(_svg_waveform(r))}">'
                if len(r.played) else "")
        sent = f" (sent {esc(r.detected_format)})" if r.detected_format and r.detected_format != r.format else ""
        about = f'<br><span class="meta">{esc(r.provider)} / {esc(r.model)} · {esc(r.format)}{sent}</span>'
        cells = [f'<td class="num" data-v="{r.index + 1}">{r.index + 1}</td>',
                 f"<td>{esc(r.label)}{about}{wave}</td>"]
        for _, _, attr, fmt in numeric:
            v = loud if attr == "lufs" else getattr(r, attr, None)
            cells.append(f'<td class="num" data-v="{"" if v is None else v}">'
                         f'{"n/a" if v is None else esc(fmt.format(v))}</td>')
        uri = audio_data_uri(r, audio)
        cells.append(f'<td><audio controls preload="none" src="{uri}"></audio></td>' if uri else "<td>none</td>")
        cells.append(f'<td class="err">{esc(r.error)}</td>' if r.error else "<td></td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    stamp = time.strftime("%Y-%m-%d %H:%M")
    said = f"<blockquote>{esc(text)}</blockquote>" if text else ""
    # default-src 'none': the page may fetch nothing; media only from data: URIs; inline style and script only.
    csp = ("default-src 'none'; media-src data:; img-src data:; style-src 'unsafe-inline'; "
           "script-src 'unsafe-inline'")
    chart = f'<p><img alt="Time to first audio per voice" src="{_svg_uri(_svg_chart(results))}"></p>'
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1>{said}"
        f"{_summary(results, lufs, votes)}"
        f"<h2>Time to first audio (warm)</h2>{chart}"
        f'<p class="meta">{len(results)} voices, made by voicegui on {stamp}. TTFA = time from the request to '
        "the first sound handed to the audio device, measured after a short untimed warm-up request per voice; "
        "cold = the first byte of that warm-up (it includes loading the voice). Click a column header to sort."
        "</p>"
        f'<table class="sortable"><thead><tr>{"".join(head)}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
        f"{_timings_section(results, text)}"
        f"{_votes_section(votes)}"
        f"<script>{_JS}</script></body></html>\n"
    )


def export_html(results: Sequence[Any], path: Path | str, title: str = "voicegui line-up",
                text: str | None = None, audio: str = "played", votes: Sequence[Vote] = ()) -> Path:
    """Write the self-contained report page to `path` (atomically)."""
    target = Path(path)
    atomic_write(target, render_html(results, title, text, audio, votes).encode("utf-8"))
    return target
