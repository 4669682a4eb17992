"""Line-up panel: one text spoken by several voices in turn, the speaking voice highlighted, results compared.

The user ticks voices in the voice browser (ui/voice_picker.py in multiple mode, the same picker as on the
Voice tab: search that never ticks or unticks anything, voices grouped by engine and language with readable
names, ▶ to hear one through the window's player); each ticked voice joins the line-up list under it, in the
order ticked (drag or Up/Down to change it; double-click the Format cell to give one voice its own format;
unticking it there or in the browser takes it out). The user picks a text (presets: the built-in
PRESETS plus the user's own, saved with `save_presets`), and presses Run. A `Lineup` (voicegui/features/
lineup.py) plays the voices one after another through the window's Player, whose history hook records each;
the window's plots follow the player, so they show the voice speaking now. Results land in a sortable
table (warm TTFA, the warm-up's cold first byte, duration, underruns, bytes); "Export…" writes the
self-contained HTML report and a CSV next to it (voicegui/features/report.py) in a worker thread, with
the A/B tab's votes about these voices (voicegui/features/votes.py). Each voice is warmed by a short
untimed request before it is measured (features/lineup.py), so the first voice's TTFA is not its engine's
loading time. "Match loudness" turns voices louder than -23 LUFS down to it (measured on the warm-up).

The browser's search narrows it (ticked voices stay shown: they are the line-up). The ticked voices, their
order and formats, and the search text are remembered per provider (voicegui/features/lineup_selection.py)
each time they change, and restored when the list is first filled from that provider, so a line-up survives a
restart. A remembered voice the provider does not list (a list-less server, a typed Kokoro blend) stays in
the line-up list though the browser cannot show it. Long labels are elided in the middle, so the
distinguishing end stays visible.

`PlayerHost` is what the panel needs from the window (MainWindow implements it): the Player (only one thing
plays at a time: starting a voice silences anything else, and anything else started ends the line-up), the
request/knobs of the next Speak, the voice list, the preview, and the status line/banner.

Threads: GUI thread only (= the qasync loop thread). `Lineup.run()` runs as an async slot on that loop, so
its on_start/on_done callbacks may touch widgets directly. Report encoding (a few MB of base64) runs via
asyncio.to_thread on finished, immutable results.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QBoxLayout,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)
from qasync import asyncSlot

from voicegui.features.lineup import Lineup, LineupEntry, LineupResult, Target, load_presets, save_presets
from voicegui.features.lineup_selection import Selection, load_selection, save_selection
from voicegui.features.report import export_csv, export_html
from voicegui.features.votes import load_votes
from voicegui.formats import FORMATS
from voicegui.stream.player import Player
from voicegui.stream.session import SpeakOptions, SpeakSession
from voicegui.ui.safe_text import PlainLabel, plain_tooltip, shown
from voicegui.ui.voice_picker import VoicePicker

log = logging.getLogger(__name__)

DEFAULT_FORMAT = "default"  # Format cell meaning "the format chosen on the Voice tab"
VOICE_ROLE = Qt.ItemDataRole.UserRole + 1
SPEAKING_ROLE = Qt.ItemDataRole.UserRole + 2  # True on the row of the voice speaking now
HIGHLIGHT = QColor("#ffe8a3")  # the speaking voice's row: warm, readable with dark text


class PlayerHost(Protocol):
    """What the line-up and A/B panels need from the window (MainWindow implements it)."""

    player: Player  # the window's one Player: whatever a panel plays stops what else played

    def speak_options(self, voice: str | None = None, fmt: str | None = None,
                      text: str | None = None) -> SpeakOptions:
        """The next Speak's request and knobs (voice/format/text overridable); ValueError with a message."""
        ...

    def provider_label(self) -> str: ...

    def voice_choices(self) -> list[tuple[str, str]]:
        """(voice id, label) of the current provider's voices."""
        ...

    def voice_names(self) -> list[tuple[str, str]]:
        """(voice id, the server's name) of the same voices: what a VoicePicker groups."""
        ...

    def preview(self, voice: str) -> object:
        """Speak a short sample in `voice` through the player (a voice browser's ▶)."""
        ...

    def current_text(self) -> str: ...

    def show_error(self, message: str) -> None: ...

    def set_status(self, text: str) -> None: ...

    def is_closing(self) -> bool: ...


class FormatDelegate(QStyledItemDelegate):
    """The Format cell is edited with a combo box: "default" or one of the six formats."""

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem,
                     index: QModelIndex | QPersistentModelIndex) -> QWidget:
        combo = QComboBox(parent)
        combo.addItems([DEFAULT_FORMAT, *FORMATS])
        return combo

    def setEditorData(self, editor: QWidget, index: QModelIndex | QPersistentModelIndex) -> None:
        assert isinstance(editor, QComboBox)
        editor.setCurrentText(str(index.data() or DEFAULT_FORMAT))

    def setModelData(self, editor: QWidget, model: Any,
                     index: QModelIndex | QPersistentModelIndex) -> None:
        assert isinstance(editor, QComboBox)
        model.setData(index, editor.currentText())


def _small_button(text: str, tip: str) -> QToolButton:
    """A text button only as wide as its text."""
    button = QToolButton()
    button.setText(text)
    button.setToolTip(tip)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    return button


class _NumItem(QTableWidgetItem):
    """A results cell sorting by number (missing values last), showing formatted text."""

    def __init__(self, text: str, key: float | None) -> None:
        super().__init__(text)
        self.key = float("inf") if key is None else float(key)  # numpy scalars would give numpy.bool
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        return bool(self.key < getattr(other, "key", float("inf")))  # Qt wants a real bool


RESULT_COLUMNS = ("#", "Voice", "Format", "TTFA", "Cold", "Duration", "Underruns", "Bytes", "Error")


class LineupPanel(QWidget):
    """See the module docstring. ``started(index)`` fires after the row of voice `index` is highlighted."""

    started = Signal(int)
    finished = Signal()
    running_changed = Signal(bool)  # the line-up started (True) or ended (False): the window's Stop follows it

    def __init__(self, host: PlayerHost, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self.lineup: Lineup | None = None
        self.results: list[LineupResult] = []
        self._run_items: list[QTreeWidgetItem] = []  # tree item per line-up entry, in run order
        self._ended: SpeakSession | None = None  # the last finished voice's session (not "current" any more)
        self._done = asyncio.Event()
        self._done.set()
        self._text_used = ""
        self._restoring = False  # the list is being rebuilt: its changes are not the user's selection
        self._restored_for: str | None = None  # provider whose remembered selection was applied
        self._labels: dict[str, str] = {}  # voice id -> readable label, for the line-up list
        self._ticks_pending = False  # the browser's ticks changed and the line-up list has not followed yet

        # --- voices: the browser to tick them in, the line-up list to order them and give them formats ---
        self.picker = VoicePicker(multiple=True)
        self.picker.checked_changed.connect(self._on_picker_ticks)
        self.picker.preview_requested.connect(self.host.preview)
        self.filter = self.picker.filter  # remembered with the selection
        self.voices = QTreeWidget()
        self.voices.setHeaderLabels(["Line-up, in order", "Format"])
        self.voices.setRootIsDecorated(False)
        self.voices.setUniformRowHeights(True)
        self.voices.setItemDelegateForColumn(1, FormatDelegate(self.voices))
        self.voices.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)  # see _on_item_double_click
        self.voices.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.voices.setToolTip("The ticked voices, spoken in this order: drag (or Up/Down) to change it; "
                               "double-click a Format cell to give one voice its own format; untick to take "
                               "a voice out.")
        self.voices.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.voices.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.voices.itemDoubleClicked.connect(self._on_item_double_click)
        # 133 voices from one provider share a prefix ("English ..."): keep both ends of a long label visible.
        self.voices.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        # The Voice column stretches and elides: a horizontal scroll bar would only take a row's height.
        self.voices.header().setStretchLastSection(False)
        self.voices.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.voices.itemChanged.connect(self._on_item_changed)
        self.voices.model().rowsInserted.connect(self._on_rows_moved)  # a drag inside the list
        self.filter.textChanged.connect(self._on_filter)
        # Tool buttons, not push buttons: push buttons are at least ~80 px each in most styles, and this tab
        # shares the window's width with the plots.
        self.up_button = _small_button("Up", "Move the selected voice up")
        self.down_button = _small_button("Down", "Move the selected voice down")
        self.refresh_button = _small_button("Reload", "")
        self.refresh_button.setToolTip("Fill the list from the voices of the provider on the Voice tab")
        self.up_button.clicked.connect(lambda: self._move(-1))
        self.down_button.clicked.connect(lambda: self._move(1))
        self.refresh_button.clicked.connect(self.reload_voices)
        order = QHBoxLayout()
        order.addWidget(self.up_button)
        order.addWidget(self.down_button)
        order.addStretch(1)
        order.addWidget(self.refresh_button)
        voices_box = QGroupBox("Voi&ces")
        # Browser and line-up list side by side: the tab is narrow, and one above the other left each ~4 rows.
        vlayout = QHBoxLayout(voices_box)
        vlayout.addWidget(self.picker, 3)
        order_column = QVBoxLayout()
        order_column.addWidget(self.voices, 1)
        order_column.addLayout(order)
        vlayout.addLayout(order_column, 2)
        self._voices_row, self._order_column = vlayout, order_column  # one above the other when narrow

        # --- text ---
        self.presets = load_presets()
        self.preset = QComboBox()
        self.preset.setToolTip("Texts that test the same hard parts for every voice")
        self.text = QPlainTextEdit()
        self.text.setTabChangesFocus(True)
        self.text.setPlaceholderText("The text every voice speaks")
        # Short labels: the tab shares the window's width with the plots (tooltips say the rest).
        self.save_preset_button = _small_button("Save…", "Save this text as a preset")
        self.delete_preset_button = _small_button("Delete", "Delete the chosen preset")
        self.preset.currentTextChanged.connect(self._on_preset)
        self.save_preset_button.clicked.connect(self._ask_save_preset)
        self.delete_preset_button.clicked.connect(self._delete_preset)
        prow = QHBoxLayout()
        prow.addWidget(self.preset, 1)
        prow.addWidget(self.save_preset_button)
        prow.addWidget(self.delete_preset_button)
        text_box = QGroupBox("Te&xt")
        tlayout = QVBoxLayout(text_box)
        tlayout.addLayout(prow)
        tlayout.addWidget(self.text, 1)
        self._fill_presets(next(iter(self.presets), None))

        # --- run ---
        self.run_button = QPushButton("R&un")
        self.run_button.setToolTip("Speak the text with every checked voice, in order")
        self.run_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.stop_button = QPushButton("Stop")
        self.stop_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaStop))
        self.stop_button.setEnabled(False)
        self.export_button = QPushButton("&Export…")
        self.export_button.setToolTip("A self-contained HTML page (audio inside) and a CSV of the numbers")
        self.export_button.setEnabled(False)
        self.match_loudness = QCheckBox("Match loudness")
        self.match_loudness.setToolTip("Turn each voice louder than -23 LUFS down to it (measured on its warm-up "
                                       "sentence), so the louder voice does not sound better for being louder")
        self.status = PlainLabel()  # voice names from the server, file paths
        self.status.setWordWrap(True)
        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.stop)
        self.export_button.clicked.connect(self._ask_export)
        actions = QHBoxLayout()
        actions.addWidget(self.run_button)
        actions.addWidget(self.stop_button)
        actions.addStretch(1)
        actions.addWidget(self.export_button)

        # --- results ---
        self.results_table = QTableWidget(0, len(RESULT_COLUMNS))
        self.results_table.setHorizontalHeaderLabels(list(RESULT_COLUMNS))
        for col, tip in ((3, "Time to first audio, measured after a short untimed warm-up request"),
                         (4, "First byte of that warm-up request: includes the engine loading the voice")):
            header_item = self.results_table.horizontalHeaderItem(col)
            if header_item is not None:
                header_item.setToolTip(tip)
        self.results_table.verticalHeader().hide()
        self.results_table.verticalHeader().setDefaultSectionSize(self.fontMetrics().lineSpacing() + 8)
        self.results_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.results_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.results_table.horizontalHeader().setStretchLastSection(True)
        self.results_table.setSortingEnabled(True)
        self.results_table.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # run order until the user sorts

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(voices_box, 3)  # the voice browser needs the room more than the text does
        top_layout.addWidget(text_box, 1)
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addLayout(actions)
        bottom_layout.addWidget(self.match_loudness)  # its own line: beside the buttons it was cut at 800x600
        bottom_layout.addWidget(self.status)
        bottom_layout.addWidget(self.results_table, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setChildrenCollapsible(False)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        # Room for a few results and two lines of text even in the short right pane; the splitter gives the rest.
        self.results_table.setMinimumHeight(self.fontMetrics().lineSpacing() * 6)
        self.text.setMinimumHeight(self.fontMetrics().lineSpacing() * 2 + 12)
        # In a short window (800x600) the tab is shorter than the panel: it scrolls rather than squeezing the
        # voice browser to a row or two (and rather than making the window taller than the screen).
        content = QWidget()
        inner = QVBoxLayout(content)
        inner.setContentsMargins(6, 6, 6, 6)
        inner.addWidget(split)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        # Side by side where the browser keeps ~34 characters of a name beside the list and its buttons; at
        # 800x600 (a ~370 px tab) one above the other, so nothing is cut off at the right.
        wanted = self.fontMetrics().averageCharWidth() * 34 + self._order_column.minimumSize().width() + 48
        self._voices_row.setDirection(QBoxLayout.Direction.LeftToRight if event.size().width() >= wanted
                                      else QBoxLayout.Direction.TopToBottom)

    # --- voices ---------------------------------------------------------------------------------------
    def reload_voices(self) -> None:
        """Refill from the provider's voices; ticked voices, their order and formats are kept. The first fill
        for a provider (and the first after switching to it) restores what was remembered for it."""
        if self.is_running():
            return  # the highlighted rows belong to the running line-up
        provider = self.host.provider_label()
        labels = dict(self.host.voice_choices())
        if self._restored_for != provider:
            remembered = self._load_selection(provider)
            # A remembered voice the provider no longer lists is dropped (a list-less server keeps them all).
            order = [v for v in remembered.voices if not labels or v in labels]
            formats = {v: f for v, f in remembered.formats.items() if v in order}
            self._restored_for = provider
            search = remembered.filter
        else:
            entries = self.checked_entries()
            order, formats = [e.voice for e in entries], {e.voice: e.format for e in entries if e.format}
            search = self.filter.text()
        self._labels = labels
        self._restoring = True
        try:
            self.filter.setText(search)
            self.picker.set_voices(self.host.voice_names(), checked=order)
            self._fill_order(order, formats)
        finally:
            self._restoring = False

    def _fill_order(self, order: list[str], formats: dict[str, str]) -> None:
        """The line-up list: exactly `order`, with these formats (the others: the Voice tab's)."""
        self.voices.clear()
        for vid in order:
            self.voices.addTopLevelItem(self._order_item(vid, formats.get(vid)))

    def _order_item(self, vid: str, fmt: str | None) -> QTreeWidgetItem:
        label = self._labels.get(vid, vid)
        item = QTreeWidgetItem([label, fmt or DEFAULT_FORMAT])
        item.setData(0, VOICE_ROLE, vid)
        item.setToolTip(0, plain_tooltip(f"{label}\nid: {vid}"))
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEditable
                      | Qt.ItemFlag.ItemIsDragEnabled)
        item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsDropEnabled)  # a drop goes between rows
        item.setCheckState(0, Qt.CheckState.Checked)
        return item

    def _on_picker_ticks(self) -> None:
        """A voice ticked in the browser joins the end of the line-up; one unticked there leaves it. Ticking a
        group (espeak-ng's 131 voices) is one change per voice: they are taken over once, on the next turn of
        the loop, or before anything reads the line-up (checked_entries)."""
        if self._restoring or self._ticks_pending:
            return
        self._ticks_pending = True
        QTimer.singleShot(0, self, self._sync_ticks)

    def _sync_ticks(self) -> None:
        if not self._ticks_pending:
            return
        self._ticks_pending = False
        ticked = self.picker.checked_ids()
        listed = set(self.picker.all_ids())
        self._restoring = True
        try:
            for item in self._items():
                vid = str(item.data(0, VOICE_ROLE))
                if vid in listed and vid not in ticked:
                    self.voices.takeTopLevelItem(self.voices.indexOfTopLevelItem(item))
            present = {str(i.data(0, VOICE_ROLE)) for i in self._items()}
            for vid in ticked:
                if vid not in present:
                    self.voices.addTopLevelItem(self._order_item(vid, None))
        finally:
            self._restoring = False
        self.remember_selection()

    # --- remembered selection and filter ----------------------------------------------------------------
    def _load_selection(self, provider: str) -> Selection:
        try:
            return load_selection(provider)
        except OSError as exc:  # e.g. the config directory is not readable
            self.host.show_error(f"Could not read the remembered line-up voices: {exc}")
            return Selection()

    def remember_selection(self) -> None:
        """Store the ticked voices (in order), their formats and the filter for the current provider."""
        if self._restoring or self._restored_for is None:
            return  # nothing the user chose yet (the list was never filled)
        entries = self.checked_entries()
        selection = Selection([e.voice for e in entries], {e.voice: e.format for e in entries if e.format},
                              self.filter.text())
        try:
            save_selection(self._restored_for, selection)  # a few hundred bytes: fine on the GUI thread
        except OSError as exc:
            self.host.show_error(f"Could not remember the line-up voices: {exc} (the line-up itself is not "
                                 "affected; check that the config directory is writable)")

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._restoring:
            return
        if column == 0 and item.checkState(0) != Qt.CheckState.Checked:
            # Unticked in the line-up list: out of the line-up, and unticked in the browser too.
            vid = str(item.data(0, VOICE_ROLE))
            self._restoring = True
            try:
                self.voices.takeTopLevelItem(self.voices.indexOfTopLevelItem(item))
                self.picker.set_checked(vid, False)
            finally:
                self._restoring = False
        self.remember_selection()

    def _on_rows_moved(self, *args: Any) -> None:
        if not self._restoring:
            self.remember_selection()

    def _on_filter(self, _text: str) -> None:
        if not self._restoring:
            self.remember_selection()

    def visible_voices(self) -> list[str]:
        """The voice ids the browser shows now (its search applied), in its order."""
        return self.picker.visible_ids()

    def set_checked(self, voices: list[str], formats: dict[str, str] | None = None) -> None:
        """Tick exactly `voices`, in that order, with these formats (tests, restoring a line-up)."""
        self._restoring = True
        try:
            for vid in self.picker.all_ids():
                self.picker.set_checked(vid, vid in voices)
            self._fill_order(list(dict.fromkeys(voices)), formats or {})
        finally:
            self._restoring = False
        self.remember_selection()

    def checked_entries(self) -> list[LineupEntry]:
        self._sync_ticks()  # ticks in the browser not taken over yet (see _on_picker_ticks)
        entries = []
        for item in self._checked_items():
            fmt = item.text(1)
            entries.append(LineupEntry(voice=str(item.data(0, VOICE_ROLE)),
                                       format=None if fmt in ("", DEFAULT_FORMAT) else fmt,
                                       label=item.text(0)))
        return entries

    def _items(self) -> list[QTreeWidgetItem]:
        items = (self.voices.topLevelItem(i) for i in range(self.voices.topLevelItemCount()))
        return [i for i in items if i is not None]

    def _checked_items(self) -> list[QTreeWidgetItem]:
        return [i for i in self._items() if i.checkState(0) == Qt.CheckState.Checked]

    def _on_item_double_click(self, item: QTreeWidgetItem, column: int) -> None:
        if column == 1 and not self.is_running():
            self.voices.editItem(item, 1)

    def _move(self, step: int) -> None:
        item = self.voices.currentItem()
        if item is None or self.is_running():
            return
        row = self.voices.indexOfTopLevelItem(item)
        new = row + step
        if 0 <= new < self.voices.topLevelItemCount():
            self.voices.takeTopLevelItem(row)
            self.voices.insertTopLevelItem(new, item)
            self.voices.setCurrentItem(item)
            self.remember_selection()

    def highlighted_voice(self) -> str | None:
        """The voice id of the highlighted (speaking) row, or None."""
        for item in self._run_items:
            if item.data(0, SPEAKING_ROLE):
                return str(item.data(0, VOICE_ROLE))
        return None

    def _highlight(self, index: int | None) -> None:
        for i, item in enumerate(self._run_items):
            on = i == index
            item.setData(0, SPEAKING_ROLE, on)
            font = QFont(item.font(0))
            font.setBold(on)
            for col in range(2):
                item.setBackground(col, QBrush(HIGHLIGHT) if on else QBrush())
                item.setForeground(col, QBrush(QColor("#222222")) if on else QBrush())
                item.setFont(col, font)
            item.setIcon(0, self.style().standardIcon(QStyle.StandardPixmap.SP_MediaVolume) if on else QIcon())
            if on:
                self.voices.scrollToItem(item)

    # --- presets --------------------------------------------------------------------------------------
    def _fill_presets(self, select: str | None) -> None:
        self.preset.blockSignals(True)
        self.preset.clear()
        self.preset.addItems(list(self.presets))
        self.preset.blockSignals(False)
        if select in self.presets:
            self.preset.setCurrentText(select)
            self.text.setPlainText(self.presets[select])

    def _on_preset(self, name: str) -> None:
        if name in self.presets:
            self.text.setPlainText(self.presets[name])

    def _ask_save_preset(self) -> None:
        name, ok = QInputDialog.getText(self, "Save preset", "Name of this text:", text=self.preset.currentText())
        if ok and name.strip():
            self.save_preset(name.strip())

    def save_preset(self, name: str) -> None:
        """Store the text shown as preset `name` (new or replaced) in the user's presets file."""
        text = self.text.toPlainText()
        if not text.strip():
            self.host.show_error("A preset needs some text.")
            return
        self.presets[name] = text
        self._write_presets(name)

    def _delete_preset(self) -> None:
        name = self.preset.currentText()
        if name in self.presets:
            del self.presets[name]
            self._write_presets(next(iter(self.presets), None))

    def _write_presets(self, select: str | None) -> None:
        try:
            save_presets(self.presets)  # a few hundred bytes: fine on the GUI thread
        except OSError as exc:
            self.host.show_error(f"Could not save the presets: {exc}")
        self._fill_presets(select)

    # --- run ------------------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return not self._done.is_set()

    def current_session(self) -> SpeakSession | None:
        """The voice speaking now (the plots follow it); None between voices."""
        cur = None if self.lineup is None else self.lineup.current
        return None if cur is self._ended else cur

    @asyncSlot()
    async def run(self) -> None:
        """Speak the text with every checked voice in order."""
        if self.is_running() or self.host.is_closing():
            return
        entries = self.checked_entries()
        text = self.text.toPlainText()
        if not entries:
            self.host.show_error("Check at least one voice for the line-up.")
            return
        if not text.strip():
            self.host.show_error("Type or choose a text for the line-up.")
            return
        try:
            base = self.host.speak_options(text=text)
        except ValueError as exc:
            self.host.show_error(str(exc))
            return
        self._done.clear()
        self._set_running(True)
        self.running_changed.emit(True)
        try:
            req = base.request
            target = Target(req.base_url, req.api_key, req.model, self.host.provider_label())
            # Through the window's player: each voice stops whatever else plays, and anything else started
            # (a Speak, A/B, Stop) ends the line-up. The player's history hook records every voice.
            self.lineup = Lineup(text, entries, target, response_format=req.response_format, speed=req.speed,
                                 instructions=req.instructions, chunk_bytes=req.chunk_bytes,
                                 prebuffer_ms=base.prebuffer_ms, max_buffer_s=base.max_buffer_s,
                                 output=base.output, on_start=self._on_start, on_done=self._on_done,
                                 player=self.host.player, match_loudness=self.match_loudness.isChecked(),
                                 extra_body=req.extra_body, stream_field_auto=req.stream_field_auto,
                                 stream_format=req.stream_format)
            self._run_items = self._checked_items()
            self._ended = None
            self._text_used = text
            self.results = []
            self.results_table.setSortingEnabled(False)
            self.results_table.setRowCount(0)
            self.results_table.setSortingEnabled(True)
            self.results = await self.lineup.run()
            stopped = self.lineup.stopped
            self.status.setText(f"Stopped after {len(self.results)} of {len(entries)} voices." if stopped
                                else f"Done: {len(self.results)} voices.")
            self.host.set_status(f"Line-up: {self.status.text()}")
        except ValueError as exc:  # Lineup refuses a bad format/entry up front
            self.host.show_error(str(exc))
        except Exception as exc:  # a bug: shown, not raised into Qt's event loop
            log.exception("line-up failed unexpectedly")
            self.host.show_error(f"Internal error in the line-up: {exc}")
        finally:
            self._highlight(None)
            self._set_running(False)
            self._done.set()
            self.running_changed.emit(False)
            self.finished.emit()

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.export_button.setEnabled(not running and bool(self.results))
        for w in (self.up_button, self.down_button, self.refresh_button, self.picker):
            w.setEnabled(not running)  # the rows of the running line-up are highlighted: they stay as they are
        self.voices.setDragEnabled(not running)

    def _on_start(self, index: int) -> None:
        self._highlight(index)
        entry = self.lineup.entries[index] if self.lineup else None
        total = len(self.lineup.entries) if self.lineup else 0
        self.status.setText(f"Speaking {index + 1} of {total}: {entry.label if entry else ''}")
        self.host.set_status(f"Line-up: speaking {index + 1} of {total}: {entry.label if entry else ''}")
        self.started.emit(index)

    def _on_done(self, index: int, result: LineupResult) -> None:
        if self.lineup is not None:
            self._ended = self.lineup.current
        self.results.append(result)
        self._add_result_row(result)

    def _add_result_row(self, r: LineupResult) -> None:
        table = self.results_table
        table.setSortingEnabled(False)
        row = table.rowCount()
        table.insertRow(row)
        fmt = (r.format if not r.detected_format or r.detected_format == r.format
               else f"{r.format} → {r.detected_format}")
        cells: list[QTableWidgetItem] = [
            _NumItem(str(r.index + 1), r.index),
            QTableWidgetItem(shown(r.label)),
            QTableWidgetItem(fmt),
            _NumItem("—" if r.ttfa_ms is None else f"{r.ttfa_ms:.0f} ms", r.ttfa_ms),
            _NumItem("—" if r.cold_ttfa_ms is None else f"{r.cold_ttfa_ms:.0f} ms", r.cold_ttfa_ms),
            _NumItem(f"{r.duration_s:.2f} s", r.duration_s),
            _NumItem(str(r.underruns), r.underruns),
            _NumItem(f"{r.bytes:,}", r.bytes),
            QTableWidgetItem(shown(r.error or "")),
        ]
        for col, item in enumerate(cells):
            if r.error:
                item.setForeground(QBrush(QColor("#b71c1c")))
                item.setToolTip(plain_tooltip(r.error))
            table.setItem(row, col, item)
        table.setSortingEnabled(True)

    @asyncSlot()
    async def stop(self) -> None:
        await self.stop_and_wait()

    async def stop_and_wait(self) -> None:
        """Silence the line-up, skip its other voices and wait until it has ended (its device closed)."""
        if self.lineup is not None and self.is_running():
            self.lineup.stop()
        await self._done.wait()

    # --- report ---------------------------------------------------------------------------------------
    @asyncSlot()
    async def _ask_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export line-up report", str(Path.home() / "lineup.html"),
                                              "HTML report (*.html)")
        if path:
            await self.export_report(Path(path))

    async def export_report(self, path: Path) -> Path | None:
        """Write the HTML report to `path` and the CSV next to it (same name, .csv) in a worker thread."""
        results = list(self.results)
        if not results:
            self.host.show_error("Run a line-up first: there is nothing to report.")
            return None
        if path.suffix.lower() not in (".html", ".htm"):
            path = path.with_suffix(".html")
        text = self._text_used
        self.export_button.setEnabled(False)
        try:
            await asyncio.to_thread(_write_reports, results, path, text)
        except OSError as exc:
            self.host.show_error(f"Could not write the report: {exc}")
            return None
        finally:
            self.export_button.setEnabled(bool(self.results) and not self.is_running())
        self.status.setText(f"Report written to {path} (and {path.with_suffix('.csv').name}).")
        return path


def _write_reports(results: list[LineupResult], path: Path, text: str) -> None:
    export_html(results, path, text=text, votes=load_votes())  # the A/B tab's votes about these voices
    export_csv(results, path.with_suffix(".csv"))
