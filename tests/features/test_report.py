"""Line-up reports: the CSV and the self-contained HTML page (parsed, its embedded audio decoded)."""

from __future__ import annotations

import base64
import csv
import io
import wave
from html.parser import HTMLParser

import numpy as np
import pytest

from voicegui.features.lineup import LineupResult
from voicegui.features.report import export_csv, export_html
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
        self.rects = 0
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tbody":
            self.in_tbody = True
        if tag == "tr" and self.in_tbody:
            self.rows += 1
        if tag == "audio":
            self.audio.append(a.get("src", ""))
        if tag == "rect":
            self.rects += 1
        if tag == "script":
            self.scripts += 1
            if "src" in a:
                self.external.append(a["src"])
        for name in ("href", "src"):
            v = a.get(name)
            if v and not v.startswith("data:") and tag != "audio":
                self.external.append(v)

    def handle_endtag(self, tag):
        if tag == "tbody":
            self.in_tbody = False


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
    assert page.scripts == 1 and page.rects == 2  # sorting script; one bar per voice with a TTFA
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
