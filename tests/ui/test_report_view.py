"""The line-up report as a stakeholder sees it: a real line-up of the built-in offline voices (heart loads its
engine on the first request: the warm-up must keep that out of the TTFA), exported with A/B votes, rendered by
Qt's QTextDocument at 1280 and 800 px wide into test-artifacts/report-*.png, and its summary checked."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtGui import QColor, QImage, QPainter, QTextDocument

from voicegui.features.lineup import Lineup, LineupEntry, Target
from voicegui.features.report import render_html
from voicegui.features.votes import Vote

pytestmark = [pytest.mark.audio,
              pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")]

ENTRIES = [LineupEntry("heart", label="Heart (American English, hibari) (heart)"),
           LineupEntry("espeak:en-us", format="mp3", label="English (America) (espeak:en-us)"),
           LineupEntry("espeak:en-gb-x-rp",
                       label="English (Great Britain, Received Pronunciation) (espeak:en-gb-x-rp)")]


def render(page: str, width: int):
    doc = QTextDocument()
    doc.setHtml(page)
    doc.setTextWidth(width)
    image = QImage(width, int(doc.size().height()) + 1, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    doc.drawContents(painter)
    painter.end()
    return doc, image


async def test_report_of_a_real_lineup_reads_at_a_glance(qapp, artifacts_dir):
    from voicegui.server.embedded import BuiltinServer

    with BuiltinServer(lazy=True) as srv:
        target = Target(srv.base_url, srv.token, srv.default_model, "builtin")
        results = await Lineup("Hello there, this is a line-up of voices.", ENTRIES, target).run()
    assert all(r.ok for r in results), [r.error for r in results]
    heart = results[0]
    assert heart.cold_ttfa_ms is not None and heart.ttfa_ms is not None
    votes = [Vote("heart", "espeak:en-us / mp3", "1"), Vote("espeak:en-us / mp3", "heart", "2"),
             Vote("heart", "espeak:en-gb-x-rp", "same")]
    page = render_html(results, title="Offline voices", text="Hello there, this is a line-up of voices.",
                       votes=votes)
    for width in (1280, 800):
        doc, image = render(page, width)
        assert image.save(str(artifacts_dir / f"report-{width}.png"))
    plain = doc.toPlainText()
    assert "Fastest:" in plain and "Most consistent:" in plain
    assert "most preferred heart (2 won, 0 lost, 1 same)" in plain
    assert "LU between the loudest" in plain
    for entry in ENTRIES:
        assert entry.label in plain  # the table has every full name
