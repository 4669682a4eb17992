"""The buffer plot made for tuning: nothing drawn over anything else at any window size from 800x600 up, each
underrun a shaded span with its length, the prebuffer gate in force over time and the one that started
playback, and axes that can stay fixed from one Speak to the next.

Real window (offscreen), real built-in server slowed by its shaping, real playback on the null sink.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QRect

from tests.ui.conftest import until
from tests.ui.test_main_window import click, speak_and_wait
from voicegui.server.shaping import Shaping
from voicegui.ui.plots import MAX_SPAN_LABELS

pytestmark = pytest.mark.audio

SIZES = ((1280, 800), (800, 600))


def _texts_in_plot(plot) -> list[tuple[str, object]]:
    """Every visible piece of text (labels, legends) drawn in the plot's scene, with its scene rectangle."""
    out = []
    for it in plot.scene().items():
        if isinstance(it, (pg.TextItem, pg.LegendItem)) and it.isVisible():
            name = it.toPlainText() if isinstance(it, pg.TextItem) else "legend"
            out.append((name, it.sceneBoundingRect()))
    return out


def _window_rect(widget, window) -> QRect:
    return QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())


async def _stuttering_speak(qtbot, window, server):
    """A Speak that underruns: audio arrives at half real time, prebuffer 100 ms."""
    server.shaping = Shaping(throughput_x=0.5, write_bytes=1024)
    window.tuning.set_prebuffer(100)
    playback = await speak_and_wait(qtbot, window, 20)
    assert playback.metrics.completed and playback.metrics.underrun_episodes >= 1, playback.metrics
    await asyncio.sleep(0.1)
    return playback


async def test_nothing_overlaps_at_the_default_size_and_800x600(qtbot, window, server, artifacts_dir):
    await _stuttering_speak(qtbot, window, server)
    plot = window.plots.buffer
    for width, height in SIZES:
        window.resize(width, height)
        await asyncio.sleep(0.2)
        assert window.grab().save(str(artifacts_dir / f"buffer-plot-underruns-{width}x{height}.png"))
        area = plot.getPlotItem().getViewBox().sceneBoundingRect()
        texts = [(name, rect) for name, rect in _texts_in_plot(plot) if rect.intersects(area)]
        assert texts, "the plot should label something"
        for (a, ra), (b, rb) in itertools.combinations(texts, 2):
            assert not ra.intersects(rb), f"{a!r} overlaps {b!r} at {width}x{height}"
        # a legend inside the data area covers the curve: it must be outside it (or there is none in the scene)
        assert all(name != "legend" for name, _rect in texts), f"the legend covers the data at {width}x{height}"
        legend = plot.legend
        assert legend.isVisible(), f"the legend should show at {width}x{height}"
        assert not _window_rect(legend, window).intersects(_window_rect(plot, window))
        assert plot.legend_fits(), f"the legend is cut off at {width}x{height} ({plot.legend_text()})"


async def test_underruns_are_spans_with_their_length(qtbot, window, server):
    playback = await _stuttering_speak(qtbot, window, server)
    plot = window.plots.buffer
    starts, ends = plot.underruns.getData()
    assert len(starts) == playback.metrics.underrun_episodes
    assert np.all(ends > starts), "each underrun is a span from its start to where playback resumed"
    labels = {name: rect for name, rect in plot.label_rects().items() if name.startswith("span")}
    assert labels, "at least one span is labelled with its length"
    lengths = {round((end - start) * 1000) for start, end in zip(starts, ends, strict=True)}
    for name in labels:
        text = plot.span_labels[int(name.removeprefix("span"))].toPlainText()
        assert re.fullmatch(r"\d+ ms", text), text
        assert int(text.split()[0]) in lengths
    legend = plot.legend_text()
    assert legend["underruns"] == f"underruns {playback.metrics.underrun_episodes}"
    assert legend["silent"] == f"{playback.metrics.underrun_ms:.0f} ms silent"


async def test_the_gate_in_force_is_a_step_line_and_the_one_that_started_playback_is_marked(qtbot, window, server):
    from voicegui.ui.plots import gate_in_force

    # Auto prebuffer on a stream at about real time: the gate changes while it buffers and after.
    server.shaping = Shaping(throughput_x=1.2, write_bytes=1024)
    playback = await speak_and_wait(qtbot, window, 20)
    snap = playback.session.snapshot()
    assert snap.play_started_s is not None
    assert len(snap.history_gate_ms) == len(snap.history_t) == len(snap.history_playing)
    used = gate_in_force(snap.history_t, snap.history_gate_ms, snap.play_started_s, -1)
    # the output started when the buffer reached that gate (or once the whole stream was in)
    before = snap.history_t <= snap.play_started_s
    reached = np.any(snap.history_ms[before] >= snap.history_gate_ms[before])
    assert reached or playback.session.last_byte - snap.started <= snap.play_started_s
    plot = window.plots.buffer
    xs, ys = plot.gate_curve.getData()
    assert len(xs) >= 2 and set(np.unique(ys)) <= set(np.unique(snap.history_gate_ms))
    mx, my = plot.start_marker.getData()
    assert list(mx) == [snap.play_started_s] and list(my) == [used]
    assert f"{used:.0f} ms at the start" in plot.legend_text()["prebuffer"]
    assert plot.labels["start"].toPlainText() == f"start at {used:.0f} ms"


async def test_fixed_axes_stay_from_one_speak_to_the_next(qtbot, window, server):
    plot = window.plots.buffer
    window.plots.fixed_axes.setChecked(True)
    server.shaping = Shaping(throughput_x=1.0, write_bytes=1024)
    window.tuning.set_prebuffer(300)
    window.text_edit.setPlainText("A first, long sentence to speak. " * 3)
    await speak_and_wait(qtbot, window, 20)
    await asyncio.sleep(0.1)
    (x0, x1), (y0, y1) = plot.getPlotItem().getViewBox().viewRange()
    max_ms = window.tuning.values().max_buffer_s * 1000
    assert y1 == pytest.approx(max_ms * 1.08)
    server.shaping = Shaping()  # the next one is over much sooner
    window.tuning.set_prebuffer(0)
    await speak_and_wait(qtbot, window, 20)
    await asyncio.sleep(0.1)
    assert plot.getPlotItem().getViewBox().viewRange() == [[x0, x1], [y0, y1]]
    window.plots.fixed_axes.setChecked(False)  # back to fitting the last Speak: both axes shrink
    await asyncio.sleep(0.05)
    (_, x1_fit), (_, y1_fit) = plot.getPlotItem().getViewBox().viewRange()
    assert y1_fit < y1 and x1_fit <= x1


# played_clock: two underruns must come while it plays, within 15 s, from a 0.6x stream (missed once with a
# second worker on the cores)
@pytest.mark.played_clock
async def test_while_it_plays_with_the_simulator_on(qtbot, window, server, artifacts_dir):
    # the simulator slows the built-in voice: the status bar says so, and the live plot keeps its labels apart
    window.network.throughput_x.setValue(0.6)
    window.tuning.set_prebuffer(150)
    plot = window.plots.buffer
    for width, height in SIZES:
        window.resize(width, height)
        before = len(window.playbacks)
        click(qtbot, window.speak_button)
        await until(lambda n=before: len(window.playbacks) > n and window.session is not None
                    and window.session.snapshot().underrun_episodes >= 2, 15, "two underruns")
        await asyncio.sleep(0.4)
        assert window.network.indicator.isVisible()
        area = plot.getPlotItem().getViewBox().sceneBoundingRect()
        texts = [(name, rect) for name, rect in _texts_in_plot(plot) if rect.intersects(area)]
        for (a, ra), (b, rb) in itertools.combinations(texts, 2):
            assert not ra.intersects(rb), f"{a!r} overlaps {b!r} at {width}x{height} while playing"
        assert window.grab().save(str(artifacts_dir / f"buffer-plot-live-simulator-{width}x{height}.png"))
        await asyncio.wait_for(window.playback.done.wait(), 20)
    window.network.throughput_x.setValue(0)


async def test_hundreds_of_underruns_label_only_the_longest_that_fit(qtbot, window, server):
    playback = await _stuttering_speak(qtbot, window, server)
    snap = playback.session.snapshot()
    # a long, hopeless stream: 600 underruns of 20..80 ms over a minute, the history as the session keeps it
    starts = np.arange(600) * 0.1 + 1.0
    lengths = 0.02 + 0.06 * (np.arange(600) % 7) / 6
    t = np.arange(0, 62, 0.01)
    playing = np.ones(len(t))
    for start, length in zip(starts, lengths, strict=True):
        playing[(t > start) & (t < start + length)] = 0
    many = dataclasses.replace(snap, history_t=t, history_ms=np.full(len(t), 50.0),
                               history_gate_ms=np.full(len(t), 100.0), history_playing=playing, underrun_t=starts,
                               underrun_episodes=600)
    plot = window.plots.buffer
    plot.update_from(many)
    await asyncio.sleep(0.1)  # painted: a text item's scene rectangle is known once it has been
    shown = {name: rect for name, rect in plot.label_rects().items() if name.startswith("span")}
    assert 0 < len(plot.span_labels) <= MAX_SPAN_LABELS and 0 < len(shown) <= MAX_SPAN_LABELS
    # the longest ones first: 80 ms (their ends are on the history's 10 ms grid), none of the shorter ones
    assert all(int(plot.span_labels[int(n[4:])].toPlainText().split()[0]) >= 80 for n in shown)
    for (a, ra), (b, rb) in itertools.combinations(plot.label_rects().items(), 2):
        assert not ra.intersects(rb), f"{a} overlaps {b}"
