"""Line-up reports: a CSV of the numbers and a self-contained HTML page to mail to someone without voicegui.

`export_csv(results, path)`: one header line, one row per voice (TTFA, duration, underruns, bytes, error...).
`export_html(results, path, title)`: one file with no external resources at all (a Content-Security-Policy
meta tag forbids fetching anything): a table sortable by clicking its headers (a few lines of inline JS), one
`<audio controls>` per voice with the audio inside as a `data:` URI, and a TTFA bar chart as inline SVG.
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
from voicegui.files import atomic_write
from voicegui.formats import MIME_TYPES, PCM_RATE
from voicegui.wavfile import wav_bytes

CSV_FIELDS = ("index", "voice", "label", "provider", "model", "format", "detected_format", "ttfa_ms",
              "duration_s", "underruns", "bytes", "error")

# Sortable numeric columns: (header, attribute, unit format)
_NUMERIC = (("TTFA (ms)", "ttfa_ms", "{:.0f}"), ("Duration (s)", "duration_s", "{:.2f}"),
            ("Underruns", "underruns", "{:d}"), ("Bytes", "bytes", "{:d}"))

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:70em}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.35em .6em;text-align:left}
th{background:#f0f0f0;cursor:pointer;user-select:none}th.num,td.num{text-align:right}
th[data-dir=asc]::after{content:" \\25B2"}th[data-dir=desc]::after{content:" \\25BC"}
td.err{color:#a00}blockquote{color:#444;border-left:3px solid #ccc;margin:0;padding-left:1em}
.meta{color:#666;font-size:.9em}svg text{font-size:12px;font-family:system-ui,sans-serif}
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


def export_csv(results: Sequence[Any], path: Path | str) -> Path:
    """One row per voice; empty cells for what was not measured (e.g. TTFA of a voice that failed)."""
    target = Path(path)
    rows = []
    for r in results:
        rows.append({
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


def _svg_chart(results: Sequence[Any]) -> str:
    """Horizontal TTFA bars, one per voice; a voice without TTFA shows 'n/a'."""
    bar_h, gap, label_w, chart_w = 22, 6, 180, 420
    height = len(results) * (bar_h + gap) + gap
    values = [r.ttfa_ms for r in results if r.ttfa_ms is not None]
    top = max(values) if values else 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + chart_w + 80}" height="{height}" '
             f'role="img" aria-label="Time to first audio per voice">']
    for i, r in enumerate(results):
        y = gap + i * (bar_h + gap)
        parts.append(f'<text x="{label_w - 6}" y="{y + bar_h * 0.7:.1f}" text-anchor="end">'
                     f'{html.escape(redact(r.label))}</text>')
        if r.ttfa_ms is None:
            parts.append(f'<text x="{label_w + 4}" y="{y + bar_h * 0.7:.1f}" fill="#a00">n/a</text>')
            continue
        w = max(1.0, r.ttfa_ms / top * chart_w) if top > 0 else 1.0
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="#4a7bd0">'
                     f'<title>{html.escape(redact(r.label))}: {r.ttfa_ms:.0f} ms</title></rect>')
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h * 0.7:.1f}">{r.ttfa_ms:.0f} ms</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(results: Sequence[Any], title: str = "voicegui line-up", text: str | None = None,
                audio: str = "played") -> str:
    """The report page as a string (see export_html)."""
    def esc(value: Any) -> str:
        return html.escape(redact(str(value)))

    head = ["<th>#</th>", "<th>Voice</th>", "<th>Provider / model</th>", "<th>Format</th>"]
    head += [f'<th class="num">{esc(h)}</th>' for h, _, _ in _NUMERIC]
    head += ["<th>Audio</th>", "<th>Error</th>"]
    rows = []
    for r in results:
        cells = [f'<td class="num" data-v="{r.index + 1}">{r.index + 1}</td>', f"<td>{esc(r.label)}</td>",
                 f"<td>{esc(r.provider)} / {esc(r.model)}</td>",
                 f"<td>{esc(r.format)}" + (f" (sent {esc(r.detected_format)})"
                                           if r.detected_format and r.detected_format != r.format else "")
                 + "</td>"]
        for _, attr, fmt in _NUMERIC:
            v = getattr(r, attr)
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
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1>{said}"
        f'<p class="meta">{len(results)} voices, made by voicegui on {stamp}. TTFA = time from the request to '
        "the first sound handed to the audio device. Click a column header to sort.</p>"
        f'<table class="sortable"><thead><tr>{"".join(head)}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
        f"<h2>Time to first audio</h2>{_svg_chart(results)}"
        f"<script>{_JS}</script></body></html>\n"
    )


def export_html(results: Sequence[Any], path: Path | str, title: str = "voicegui line-up",
                text: str | None = None, audio: str = "played") -> Path:
    """Write the self-contained report page to `path` (atomically)."""
    target = Path(path)
    atomic_write(target, render_html(results, title, text, audio).encode("utf-8"))
    return target
