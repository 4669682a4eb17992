"""Line-up reports: the CSV and the self-contained HTML page (parsed, its embedded audio decoded)."""

from __future__ import annotations

import base64
import csv
import dataclasses
import html
import io
import wave
from html.parser import HTMLParser

import numpy as np
import pytest

from voicegui.features.lineup import LineupResult
from voicegui.features.report import export_csv, export_html, render_html
from voicegui.stream.metrics import SessionMetrics, TtfaMarks
from voicegui.wavfile import wav_bytes

RATE = 24000


def result(index: int, voice: str, seconds: float, ttfa_s: float | None, error: str | None = None,
           fmt: str = "pcm", original: bytes | None = None) -> LineupResult:
    n = int(seconds * RATE)
    played = (0.3 * np.sin(2 * np.pi * 300 * np.arange(n) / RATE)).astype(np.float32)
    marks = TtfaMarks(started=10.0, first_sound=None if ttfa_s is None else 10.0 + ttfa_s)
    metrics = SessionMetrics(marks=marks, requested_format=fmt, detected_format=fmt if n else None,
                             bytes_received=2 * n, audio_played_s=seconds, underrun_episodes=index,
                             completed=error is None, error=error)
    if original is None:
        original = np.round(played * 32768).astype("<i2").tobytes()
    return LineupResult(index=index, label=voice, voice=voice, format=fmt, model="builtin", provider="builtin",
                        base_url="http://127.0.0.1:1/v1", metrics=metrics, error=error, original=original,
                        played=played, sample_rate=RATE)


@pytest.fixture
def results() -> list[LineupResult]:
    return [result(0, "heart", 0.5, 0.12), result(1, "espeak:en-us <b>", 0.25, 0.3),
            result(2, "broken", 0.0, None, error="The server does not know voice 'broken' & co.")]


class Page(HTMLParser):
    """Collects what the tests look at: body rows, audio sources, any external reference, svg bars."""

    def __init__(self) -> None:
        super().__init__()
        self.rows = 0
        self.in_tbody = False
        self.audio: list[str] = []
        self.external: list[str] = []
        self.images: list[str] = []  # the SVG documents inside <img src="data:image/svg+xml;base64,...">
        self.rects = 0
        self.scripts = 0
        self.table = ""  # the class of the table being read
        self.summaries: list[str] = []  # per <details> (one per voice with timings): its summary's text
        self.timed_rows: list[list[list[str]]] = []  # per <details>: its rows' cells' text
        self.word_titles: list[list[str]] = []  # per <details>: each word's title (its start)
        self.in_summary = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.table = a.get("class", "")
        if tag == "tbody":
            self.in_tbody = True
        if tag == "tr" and self.in_tbody and self.table == "sortable":
            self.rows += 1
        if tag == "tr" and self.in_tbody and self.table == "timed":
            self.timed_rows[-1].append([])
        if tag == "td" and self.in_tbody and self.table == "timed":
            self.timed_rows[-1][-1].append("")
        if tag == "span" and "title" in a and self.table == "timed":
            self.word_titles[-1].append(a["title"])
        if tag == "details":
            self.timed_rows.append([])
            self.word_titles.append([])
            self.summaries.append("")
        if tag == "summary":
            self.in_summary = True
        if tag == "audio":
            self.audio.append(a.get("src", ""))
        if tag == "img":
            mime, data = decode_data_uri(a["src"])
            assert mime == "image/svg+xml"
            self.images.append(data.decode("utf-8"))
        if tag == "script":
            self.scripts += 1
            if "src" in a:
                self.external.append(a["src"])
        for name in ("href", "src"):
            v = a.get(name)
            if v and not v.startswith("data:"):
                self.external.append(v)

    def handle_endtag(self, tag):
        if tag == "tbody":
            self.in_tbody = False
        if tag == "table":
            self.table = ""
        if tag == "summary":
            self.in_summary = False

    def handle_data(self, data):
        if self.in_summary:
            self.summaries[-1] += data
        elif self.in_tbody and self.table == "timed" and self.timed_rows[-1] and self.timed_rows[-1][-1]:
            self.timed_rows[-1][-1][-1] += data


def decode_data_uri(uri: str) -> tuple[str, bytes]:
    head, _, payload = uri.partition(",")
    assert head.startswith("data:") and head.endswith(";base64"), head[:60]
    return head[5:-7], base64.b64decode(payload)


def test_html_report_is_self_contained_and_its_audio_decodes(tmp_path, results):
    path = export_html(results, tmp_path / "r.html", title="Voices <compared>", text="Hello & goodbye.")
    page_text = path.read_text(encoding="utf-8")
    page = Page()
    page.feed(page_text)
    page.close()
    assert page.rows == 3
    assert page.external == []  # nothing to fetch: mailable as is
    assert "Content-Security-Policy" in page_text and "default-src 'none'" in page_text
    chart = page.images[0]
    assert page.scripts == 1 and chart.count("<rect") == 2  # sorting script; one bar per voice with a TTFA
    assert len(page.images) == 1 + 2  # the chart, and a waveform per voice that played something
    # User/server text is escaped, never markup.
    assert "espeak:en-us &lt;b&gt;" in page_text and "<b>" not in page_text
    assert "Voices &lt;compared&gt;" in page_text and "Hello &amp; goodbye." in page_text
    # One <audio> per voice that has audio, each a WAV of exactly what was played.
    assert len(page.audio) == 2
    for src, r in zip(page.audio, results, strict=False):
        mime, data = decode_data_uri(src)
        assert mime == "audio/wav"
        with wave.open(io.BytesIO(data)) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
            assert w.getnframes() == len(r.played)
            got = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        np.testing.assert_array_equal(got, np.round(r.played * 32768).astype("<i2"))


def test_html_report_can_embed_the_original_bytes(tmp_path):
    mp3ish = b"ID3\x03\x00" + b"\x00" * 50  # the bytes are embedded as sent; the MIME type follows the format
    wav_body = wav_bytes(np.zeros(240, dtype=np.float32), RATE)
    rs = [result(0, "a", 0.1, 0.1), result(1, "b", 0.1, 0.1, fmt="mp3", original=mp3ish),
          result(2, "c", 0.1, 0.1, fmt="wav", original=wav_body)]
    page = Page()
    page.feed(export_html(rs, tmp_path / "o.html", audio="original").read_text())
    got = [decode_data_uri(src) for src in page.audio]
    # pcm has no container a browser plays: wrapped in WAV, same samples.
    assert got[0][0] == "audio/wav"
    with wave.open(io.BytesIO(got[0][1])) as w:
        assert w.readframes(w.getnframes()) == rs[0].original
    assert got[1] == ("audio/mpeg", mp3ish)
    assert got[2] == ("audio/wav", wav_body)


def test_csv_has_a_header_and_one_row_per_voice(tmp_path, results):
    path = export_csv(results, tmp_path / "r.csv")
    rows = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
    assert len(rows) == 3
    assert [r["voice"] for r in rows] == ["heart", "espeak:en-us <b>", "broken"]
    assert float(rows[0]["ttfa_ms"]) == pytest.approx(120.0)
    assert rows[2]["ttfa_ms"] == "" and "broken" in rows[2]["error"]
    assert rows[1]["underruns"] == "1" and rows[0]["bytes"] == str(2 * int(0.5 * RATE))
    header = path.read_text().splitlines()[0].split(",")
    assert {"ttfa_ms", "duration_s", "underruns", "bytes", "error"} <= set(header)


def test_a_key_echoed_in_an_error_is_in_neither_report(tmp_path):
    """Both files are meant to be mailed (0644): a key the server echoed back must not travel with them."""
    from voicegui import crash

    key, plain = "sk-proj-ReportEchoed0123456789", "kokoro-report-5521"
    crash.register_secret(plain)
    rs = [result(0, "alloy", 0.0, None, error=f"401: Incorrect API key provided: {key}"),
          result(1, f"nova?key={plain}", 0.0, None, error=f"Bearer {plain} refused at https://x/v1?key=abc")]
    html_text = export_html(rs, tmp_path / "r.html").read_text()
    csv_text = export_csv(rs, tmp_path / "r.csv").read_text()
    for text in (html_text, csv_text):
        assert "Incorrect API key provided: [REDACTED]" in text
        assert key not in text and plain not in text and "key=abc" not in text


def svg_texts(svg: str) -> list[str]:
    import re

    return [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


def test_summary_says_fastest_most_consistent_votes_and_loudness(tmp_path):
    from voicegui.features.votes import Vote

    rs = [result(0, "heart", 1.0, 0.30), result(1, "nova", 1.0, 0.10), result(2, "echo", 1.0, 0.20)]
    for r, underruns in zip(rs, (0, 3, 0), strict=True):  # nova is the fastest, but it stuttered
        r.metrics = dataclasses.replace(r.metrics, underrun_episodes=underruns)
    rs[0].cold_ttfa_ms, rs[2].cold_ttfa_ms = 1718.0, 230.0  # heart loaded its engine; echo did not
    rs[2].played = rs[2].played * 0.1  # 20 dB quieter
    votes = [Vote("heart", "echo", "1"), Vote("echo", "heart", "2"), Vote("nova", "echo", "same"),
             Vote("alloy", "shimmer", "1")]  # the last is about voices not in this report
    page = render_html(rs, votes=votes)
    summary = page[page.index('<div class="summary">'):page.index("</div>")]
    assert "<strong>Fastest:</strong> nova, first sound after 100 ms" in summary
    assert "<strong>Most consistent:</strong> echo (0 underruns, cold and warm start within 30 ms" in summary
    assert "3 A/B votes (3 blind); most preferred heart (2 won, 0 lost, 0 same)" in summary
    assert "20.0 LU between the loudest" in summary and "the quietest (echo" in summary
    assert "alloy" not in page  # votes about other voices stay out
    # the table: warm TTFA, the cold first byte, loudness per voice
    assert 'data-v="1718.0"' in page and "Cold first byte (ms)" in page and "Loudness (LUFS)" in page
    assert "A/B votes" in page and "heart preferred over echo" in page


def test_chart_labels_fit_and_long_names_wrap_whole(tmp_path):
    long_name = "English (Great Britain, Received Pronunciation) (espeak:en-gb-x-rp)"
    rs = [result(0, long_name, 0.5, 0.1), result(1, "heart", 0.5, 0.2)]
    page = Page()
    page.feed(render_html(rs))
    chart = page.images[0]
    texts = svg_texts(chart)
    assert texts[:2] == ["English (Great Britain, Received", "Pronunciation) (espeak:en-gb-x-rp)"]
    # the label column is wider than its longest line at a generous 7 px per character: nothing clipped
    import re

    bar_x = float(re.search(r'<rect x="([\d.]+)"', chart).group(1))
    assert bar_x >= 7.0 * max(len(t) for t in texts[:3])
    first_label_x = float(re.search(r'<text x="([\d.]+)"', chart).group(1))
    assert first_label_x < bar_x  # right-aligned labels end before the bars start


def test_csv_has_cold_and_loudness(tmp_path, results):
    results[0].cold_ttfa_ms = 900.0
    rows = list(csv.DictReader(export_csv(results, tmp_path / "r.csv").open(newline="", encoding="utf-8")))
    assert rows[0]["cold_first_byte_ms"] == "900.0" and float(rows[0]["loudness_lufs"]) < 0
    assert rows[2]["loudness_lufs"] == ""  # nothing played


def bursts(*spans: tuple[float, float]) -> np.ndarray:
    """A 300 Hz tone where the spans say (seconds), silence elsewhere: speech with clear pauses."""
    t = np.arange(int(max(e for _, e in spans) * RATE) + RATE // 10) / RATE
    on = np.zeros(len(t), dtype=bool)
    for a, b in spans:
        on |= (t >= a) & (t < b)
    return (0.3 * np.sin(2 * np.pi * 300 * t) * on).astype(np.float32)


def test_report_shows_what_each_voice_said_and_when(tmp_path):
    """Per voice a <details> with its sentences' starts; a voice's own timings as they are, the others estimated
    from the pauses in what was played and marked so on every sentence; a failed voice has none."""
    from voicegui.features.timings import Timing, Timings, sentences_from_words

    text = "One, two. Three."
    words = (Timing(0.0, 0.4, 0, 4, "One,", "engine"), Timing(0.4, 0.9, 5, 9, "two.", "engine"),
             Timing(0.9, 1.4, 10, 16, "Three.", "engine"))
    told = Timings(text, words, sentences_from_words(text, words, "engine"), audio_s=1.4)
    played = bursts((0.05, 0.35), (0.6, 0.9), (1.3, 1.7))
    # hibari's shape: the engine's sentence bounds, the words inside estimated
    inner = tuple(dataclasses.replace(w, source="estimated") for w in words)
    bounds = Timings(text, inner, sentences_from_words(text, words, "engine"), audio_s=1.4)
    # a Realtime voice's: words where its transcript arrived, one reworded word estimated
    heard = (dataclasses.replace(words[0], source="server-transcript"), inner[1],
             dataclasses.replace(words[2], source="server-transcript"))
    transcript = Timings(text, heard, sentences_from_words(text, words, "server-transcript"), audio_s=1.4)
    voices = [dataclasses.replace(result(0, "espeak:en-us", 1.4, 0.1), timings=told),
              dataclasses.replace(result(1, "other <server>", 1.8, 0.2), played=played),
              result(2, "broken", 0.0, None, error="no such voice"),
              dataclasses.replace(result(3, "heart", 1.4, 0.1), timings=bounds),
              dataclasses.replace(result(4, "realtime", 1.4, 0.1), timings=transcript)]
    page = Page()
    page.feed(export_html(voices, tmp_path / "r.html", text=text).read_text(encoding="utf-8"))
    page.close()
    assert len(page.summaries) == 4
    assert page.summaries[3] == ("realtime: sentences timed by the Realtime server; words where its transcript "
                                 "arrived (may run ahead); some words estimated")
    assert page.summaries[2] == "heart: sentence bounds from the voice's engine; words inside estimated from the pauses"
    assert page.timed_rows[2] == [["0:00.00", "One, two.", "estimated"], ["0:00.90", "Three.", "estimated"]]
    assert page.summaries[0] == "espeak:en-us: timed by the voice's engine, word by word"
    assert page.timed_rows[0] == [["0:00.00", "One, two.", ""], ["0:00.90", "Three.", ""]]
    assert page.word_titles[0] == ["0.00 s", "0.40 s", "0.90 s"]
    assert page.summaries[1] == "other <server>: estimated here from the pauses in what was played"
    rows = page.timed_rows[1]
    assert [r[1] for r in rows] == ["One, two.", "Three."] and all(r[2] == "estimated" for r in rows)
    starts = [float(t.removesuffix(" s")) for t in page.word_titles[1]]
    assert starts == pytest.approx([0.05, 0.6, 1.3], abs=0.02)  # each word where its burst starts
