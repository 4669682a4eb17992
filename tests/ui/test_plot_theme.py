"""The live plots follow the theme: background, axes, titles, grid, curves and labels in the light or the dark
scheme, changed live when View > Theme (or the system's scheme) changes. A real offscreen window; what is
painted is checked, not only what was set."""

from __future__ import annotations

import asyncio

import pytest
from PySide6.QtGui import QColor

from tests.ui.test_main_window import speak_and_wait
from voicegui.ui import plot_theme, theme
from voicegui.ui.plots import LivePlots

pytestmark = [pytest.mark.audio, pytest.mark.usefixtures("system_theme")]


def lightness(colour: QColor) -> int:
    return colour.lightness()


def painted_background(plot) -> QColor:
    """The colour painted inside the plot's view near its top-left corner (no curve or label there)."""
    view = plot.getPlotItem().getViewBox().sceneBoundingRect()
    return plot.grab().toImage().pixelColor(int(view.left()) + 3, int(view.top()) + 3)


def axis_pens(plot) -> list[QColor]:
    item = plot.getPlotItem()
    return [pen.color() for name in ("left", "bottom") for pen in (item.getAxis(name).pen(),
                                                                  item.getAxis(name).textPen())]


async def test_plots_follow_the_theme_live(qtbot, window, artifacts_dir):
    await speak_and_wait(qtbot, window)  # curves, labels and a legend to recolour
    plots = window.plots
    await asyncio.sleep(0.1)
    assert theme.controller().scheme() == "light"  # offscreen: the system says nothing, light
    for plot in (plots.waveform, plots.buffer):
        assert lightness(painted_background(plot)) > 200, "a light window gets light plots"
        assert all(lightness(c) < 100 for c in axis_pens(plot)), "with dark axes and tick labels"
    light_legend = plots.buffer.legend.text()

    window.menu_actions.themes["dark"].trigger()
    await asyncio.sleep(0.1)
    dark = plot_theme.colors("dark")
    for plot in (plots.waveform, plots.buffer):
        assert lightness(painted_background(plot)) < 60, "dark: the plot background is dark"
        assert all(lightness(c) > 180 for c in axis_pens(plot)), "and its axis pens light"
        assert dark.foreground in plot.getPlotItem().titleLabel.item.toHtml()
        assert plot.grid_rgb == dark.grid
    assert plots.waveform.curve.pen().color() == QColor(dark.wave)
    assert plots.buffer.curve.pen().color() == QColor(dark.buffer)
    assert plots.buffer.max_line.pen.color() == QColor(dark.max)
    shown = [label for label in plots.buffer.labels.values() if label.isVisible()]
    assert shown and all(label.fill.color().lightness() < 60 for label in shown)
    assert dark.gate in plots.buffer.legend.text() and plots.buffer.legend.text() != light_legend
    window.resize(1280, 800)
    await asyncio.sleep(0.2)
    assert window.grab().save(str(artifacts_dir / "ui-plots-dark.png"))

    window.menu_actions.themes["light"].trigger()
    await asyncio.sleep(0.1)
    assert lightness(painted_background(plots.buffer)) > 200
    assert plots.buffer.legend.text() == light_legend


async def test_plots_made_in_a_dark_window_are_dark_and_a_deleted_one_is_let_go(qtbot):
    from shiboken6 import Shiboken

    theme.controller().set_choice("dark")
    plots = LivePlots(lambda: None)
    assert lightness(plots.buffer.backgroundBrush().color()) < 60
    Shiboken.delete(plots)
    theme.controller().set_choice("light")  # the deleted plots' follower went with them: nothing raises
    again = LivePlots(lambda: None)
    qtbot.addWidget(again)
    assert lightness(again.buffer.backgroundBrush().color()) > 200
