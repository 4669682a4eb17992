"""The live plots' colours in the light and the dark scheme, and the plots following the theme as it changes.

pyqtgraph draws with its own colours (a black background, grey axes), not the Qt palette, so without this the
plots stayed black in a light window, and their pastel curves would glare on white. `PLOT_COLORS` holds one
table per scheme (ui/theme.py says which is in effect): background, axes and titles, grid, each curve, the
labels inside the buffer plot and the colours of its legend (a QLabel under the plots, on the window's own
background). `follow(plots)` applies the scheme in effect to a `LivePlots` and again each time
`theme.controller().changed` fires, so a switch in View > Theme, or of the system's scheme, recolours the
plots live; plots.py calls it once. `legend_html` is the legend's text in the scheme's colours.

The plots are reached through the attributes in `Plots` (a Protocol): this module does not import plots.py,
which imports it.

Threads: GUI thread only.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Protocol

from PySide6.QtCore import QObject, Qt

from voicegui.ui import theme
from voicegui.ui.plot_items import Polyline, Spans
from voicegui.ui.pyqtgraph_import import pg

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class PlotColors:
    """One scheme's plot colours ("#rrggbb" strings, or RGB tuples where an alpha is added)."""

    background: str
    foreground: str  # axes, tick labels, axis labels, titles
    grid: RGB  # drawn at GridPlot.GRID_ALPHA
    wave: str
    buffer: str
    gate: str  # the prebuffer gate's step line, the start marker and their labels
    max: str  # the max-buffer line and its label
    play: str  # the line where playback started
    underrun: RGB  # shaded spans
    span_label: str
    label_fill: tuple[int, int, int, int]  # behind the labels inside the plot
    marker_fill: str


PLOT_COLORS = {
    # Deeper tones on white: the pastels of the dark scheme are unreadable there.
    "light": PlotColors(background="#ffffff", foreground="#3a3a3a", grid=(0, 0, 0), wave="#0277bd",
                        buffer="#2e7d32", gate="#e65100", max="#c62828", play="#424242", underrun=(229, 57, 53),
                        span_label="#b71c1c", label_fill=(255, 255, 255, 200), marker_fill="#ffffff"),
    # The dark palette's base colour (theme.dark_palette), light text.
    "dark": PlotColors(background="#1e1e20", foreground="#d0d0d0", grid=(255, 255, 255), wave="#4fc3f7",
                       buffer="#81c784", gate="#ffb74d", max="#e57373", play="#ffffff", underrun=(239, 83, 80),
                       span_label="#ef9a9a", label_fill=(0, 0, 0, 150), marker_fill="#000000"),
}


def colors(scheme: str) -> PlotColors:
    """The table for "light" or "dark" (anything else is a programming error: KeyError)."""
    return PLOT_COLORS[scheme]


def current() -> PlotColors:
    """The table of the scheme in effect now."""
    return colors(theme.controller().scheme())


class Plot(Protocol):
    """What every plot (plots.GridPlot) offers: a pyqtgraph PlotWidget with its grid colour."""

    grid_rgb: RGB
    curve: Polyline

    def getPlotItem(self) -> Any: ...  # pyqtgraph's name

    def setBackground(self, background: Any) -> None: ...  # pyqtgraph's name

    def resetCachedContent(self) -> None: ...  # Qt's name: the grid is in the cached background


class BufferLike(Plot, Protocol):
    """What plots.BufferPlot offers besides."""

    colors: PlotColors
    gate_curve: Polyline
    underruns: Spans
    max_line: Any
    play_line: Any
    start_marker: Any
    labels: dict[str, Any]
    span_labels: list[Any]
    legend: Any

    def legend_text(self) -> dict[str, str]: ...


class Plots(Protocol):
    """plots.LivePlots as far as colours go."""

    @property
    def waveform(self) -> Plot: ...

    @property
    def buffer(self) -> BufferLike: ...


def legend_html(texts: dict[str, str], c: PlotColors) -> str:
    """The buffer plot's legend (prebuffer, max, underruns) with line samples in the plot's colours."""
    underruns = texts["underruns"] + (f", {texts['silent']}" if texts.get("silent") else "")
    parts = [(c.gate, "╌╌", texts["prebuffer"]), (c.max, "╌╌", texts["max"]),
             ("#{:02x}{:02x}{:02x}".format(*c.underrun), "■", underruns)]
    return "&nbsp;&nbsp; ".join(f'<span style="color:{color}">{mark}</span>&nbsp;{html.escape(text)}'
                                for color, mark, text in parts)


def _style_axes(plot: Plot, c: PlotColors) -> None:
    plot.setBackground(c.background)
    item = plot.getPlotItem()
    for name in ("left", "bottom"):
        axis = item.getAxis(name)
        axis.setPen(c.foreground)
        axis.setTextPen(c.foreground)
        axis.update()  # cached as a pixmap (plots._quiet_plot): drawn again in the new colours
    title = item.titleLabel
    title.setText(title.text, color=c.foreground)
    plot.grid_rgb = c.grid
    plot.resetCachedContent()


def apply(plots: Plots, c: PlotColors) -> None:
    """Recolour both plots (and the legend) now."""
    wave, buf = plots.waveform, plots.buffer
    for plot in (wave, buf):
        _style_axes(plot, c)
    wave.curve.set_pen(pg.mkPen(c.wave, width=1))
    buf.colors = c
    buf.curve.set_pen(pg.mkPen(c.buffer, width=1))
    buf.gate_curve.set_pen(pg.mkPen(c.gate, width=1, style=Qt.PenStyle.DashLine))
    buf.underruns.set_colors(pg.mkBrush(*c.underrun, 70), pg.mkPen(*c.underrun, 160, width=1))
    buf.max_line.setPen(pg.mkPen(c.max, width=1, style=Qt.PenStyle.DashLine))
    buf.play_line.setPen(pg.mkPen(c.play, width=1, style=Qt.PenStyle.DotLine))
    buf.start_marker.setPen(pg.mkPen(c.gate))
    buf.start_marker.setBrush(pg.mkBrush(c.marker_fill))
    label_colors = {"start": c.gate, "max": c.max, "gate": c.gate}
    for name, label in buf.labels.items():
        _style_label(label, label_colors.get(name, c.foreground), c)
    for label in buf.span_labels:
        _style_label(label, c.span_label, c)
    texts = buf.legend_text()
    if texts:
        buf.legend.setText(legend_html(texts, c))


def _style_label(label: Any, color: str, c: PlotColors) -> None:
    label.setColor(color)
    label.fill = pg.mkBrush(*c.label_fill)
    label.update()


class _Follower(QObject):
    """Recolours its parent's plots when the scheme changes; a child of the plots' widget, so the connection
    to the application-wide controller ends when the plots are deleted (a closed window)."""

    def __init__(self, plots: Plots, parent: QObject) -> None:
        super().__init__(parent)
        self._plots = plots

    def recolour(self, scheme: str) -> None:
        apply(self._plots, colors(scheme))


def follow(plots: Plots) -> None:
    """Colour `plots` (a QWidget) for the scheme in effect, and again whenever it changes, while they live."""
    if not isinstance(plots, QObject):
        raise TypeError("plot_theme.follow() needs the plots' QWidget")
    apply(plots, current())
    theme.controller().changed.connect(_Follower(plots, plots).recolour)
