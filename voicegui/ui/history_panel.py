"""History panel: every Speak as a table row (newest first), replay from the local cache, save, delete, drag out.

The data is a `HistoryStore` (index + bounded audio cache, see voicegui/features/history.py). This panel shows
its entries, emits ``replay_requested(entry_id)`` on a double-click (MainWindow plays the cached bytes through
the same SpeakSession path with `SpeakOptions(source=replay_source(...))`: same plots, no request), offers a
context menu (Replay, Save original bytes…, Save played WAV…, Export captions…, Delete), and hands a row
dragged out of the table to the drop target as a file (a temporary copy of the original bytes, written with
`save_original`).
The cache-size spin box sets the store's bound (Settings.history_max_mb); lowering it evicts at once.

Entries are written by the window Player's history hook (features/history.history_hook), in a worker thread,
so a multi-MB body never stalls the GUI/loop thread; this panel only reads and edits them.

Threads: widgets on the GUI thread only (= the qasync loop thread). Store calls that write or decode files
(add, save_original, save_played_wav, save_captions) go to worker threads; the store's own lock serialises them. Cheap
reads (entries, delete, set_max_bytes) run on the GUI thread. The drag's temporary file is written on the
GUI thread because Qt asks for the MIME data synchronously when the drag starts (a local copy of at most a
few MB).
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from qasync import asyncSlot

from voicegui.decode.errors import DecodeError
from voicegui.features.captions import CaptionError
from voicegui.features.history import HistoryEntry, HistoryError, HistoryStore
from voicegui.formats import EXTENSIONS
from voicegui.settings import Settings
from voicegui.ui.safe_text import plain_tooltip

log = logging.getLogger(__name__)

MB = 1024 * 1024
ID_ROLE = Qt.ItemDataRole.UserRole + 1  # the entry id, stored on every row's first cell

# (header, tooltip) per column; the values come from _row_values. The measurements come first: the tab is
# narrow, and TTFA/underruns are what a row is read for.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("Time", "When the Speak started (local time)"),
    ("Voice", ""),
    ("Format", "Requested format (and what the server sent, if different)"),
    ("TTFA", "Time from the request to the first sound"),
    ("Underruns", "Underrun episodes"),
    ("Duration", "Audio played"),
    ("Bytes", "Response bytes received"),
    ("Audio", "Whether the original bytes are still in the cache"),
    ("Provider", ""),
    ("Model", ""),
    ("Chunk", "Chunk size in bytes (empty: as bytes arrive)"),
    ("Prebuffer", "Prebuffer setting in ms (auto: adaptive)"),
    ("Max buffer", "Maximum buffer in seconds"),
    ("Text", ""),
)


def _row_values(e: HistoryEntry) -> list[tuple[str, Any]]:
    """(shown text, sort key) per column."""
    fmt = e.format if not e.detected_format or e.detected_format == e.format else f"{e.format} → {e.detected_format}"
    audio = "evicted" if e.evicted else ("cached" if e.audio_bytes else "none")
    if e.error:
        audio = "error"
    return [
        (time.strftime("%H:%M:%S", time.localtime(e.time)), e.time),
        (e.voice, e.voice),
        (fmt, fmt),
        ("—" if e.ttfa_ms is None else f"{e.ttfa_ms:.0f} ms", e.ttfa_ms if e.ttfa_ms is not None else 1e12),
        (str(e.underruns), e.underruns),
        (f"{e.duration_s:.2f} s", e.duration_s),
        (f"{e.bytes:,}", e.bytes),
        (audio, audio),
        (e.provider, e.provider),
        (e.model, e.model),
        ("" if e.chunk_bytes is None else str(e.chunk_bytes), e.chunk_bytes or 0),
        ("auto" if e.prebuffer_ms is None else f"{e.prebuffer_ms:.0f} ms", e.prebuffer_ms or -1.0),
        ("" if e.max_buffer_s is None else f"{e.max_buffer_s:g} s", e.max_buffer_s or 0.0),
        (e.text.replace("\n", " ")[:80], e.text),
    ]


class _SortItem(QTableWidgetItem):
    """A cell that sorts by its key (numbers as numbers), not by its text."""

    def __init__(self, text: str, key: Any) -> None:
        super().__init__(text)
        self.key = key

    def __lt__(self, other: QTableWidgetItem) -> bool:
        other_key = getattr(other, "key", other.text())
        try:
            return bool(self.key < other_key)  # a numpy comparison gives numpy.bool, which Qt refuses
        except TypeError:  # mixed types in one column (should not happen): fall back to the text
            return self.text() < other.text()


def suggested_name(entry: HistoryEntry, suffix: str | None = None) -> str:
    """A file name for an entry's audio, e.g. voicegui-alloy-20261125-190405.mp3 (no path separators)."""
    voice = re.sub(r"[^A-Za-z0-9_.+-]+", "_", entry.voice) or "voice"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(entry.time))
    ext = suffix or EXTENSIONS.get(entry.format, "bin")
    return f"voicegui-{voice}-{stamp}.{ext}"


class HistoryTable(QTableWidget):
    """The table; dragging rows out gives the drop target files (the original bytes as sent)."""

    def __init__(self, panel: HistoryPanel) -> None:
        super().__init__(0, len(COLUMNS))
        self._panel = panel

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, items: Sequence[QTableWidgetItem]) -> QMimeData:
        mime = QMimeData()
        ids = []
        for item in items:
            first = self.item(item.row(), 0)
            entry_id = first.data(ID_ROLE) if first else None
            if entry_id and entry_id not in ids:
                ids.append(entry_id)
        urls = [QUrl.fromLocalFile(str(p)) for p in (self._panel.drag_file(i) for i in ids) if p is not None]
        mime.setUrls(urls)
        return mime


class HistoryPanel(QWidget):
    """The history table, its actions and the cache-size setting. See the module docstring."""

    replay_requested = Signal(str)  # entry id
    error = Signal(str)  # a message for the window's banner
    max_mb_changed = Signal(float)

    def __init__(self, store: HistoryStore, max_mb: float = 200.0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self._drag_dir: tempfile.TemporaryDirectory[str] | None = None

        self.table = HistoryTable(self)
        self.table.setHorizontalHeaderLabels([c for c, _ in COLUMNS])
        for i, (_, tip) in enumerate(COLUMNS):
            column = self.table.horizontalHeaderItem(i)
            if tip and column is not None:
                column.setToolTip(tip)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setDragEnabled(True)
        self.table.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().lineSpacing() + 8)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)  # newest first until the user sorts otherwise
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.cellDoubleClicked.connect(self._on_double_click)
        self.table.setToolTip("Double-click a row to replay it from the cache (no new request); right-click for "
                              "more; drag a row out to get its audio file.")

        self.replay_button = QPushButton("Re&play")
        self.replay_button.setToolTip("Play the selected Speak again from the local cache (no request)")
        self.replay_button.clicked.connect(self._replay_selected)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self._delete_selected)
        self.max_mb = QDoubleSpinBox()
        self.max_mb.setRange(0.0, 100_000.0)
        self.max_mb.setDecimals(1)
        self.max_mb.setSuffix(" MB")
        self.max_mb.setToolTip("Cached audio beyond this is evicted, oldest first (the measurements stay). "
                               "0: keep no audio.")
        self.max_mb.setValue(max_mb)
        self.max_mb.setKeyboardTracking(False)  # evict once the number is typed, not at every digit
        self.max_mb.valueChanged.connect(self._on_max_mb)
        cache_label = QLabel("Cache si&ze:")
        cache_label.setBuddy(self.max_mb)
        self.usage = QLabel()
        self.usage.setEnabled(False)  # dimmed: information
        # Its text can be long: it must not widen the tab (and so narrow the plots) — it is cut instead.
        self.usage.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.usage.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

        bar = QHBoxLayout()
        bar.addWidget(self.replay_button)
        bar.addWidget(self.delete_button)
        bar.addWidget(self.usage, 1)
        bar.addWidget(cache_label)
        bar.addWidget(self.max_mb)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.table, 1)
        layout.addLayout(bar)
        self._apply_max_mb(max_mb)
        self.reload()

    # --- data -------------------------------------------------------------------------------------------
    def reload(self) -> None:
        """Rebuild the table from the store, newest first; keeps the selection by entry id."""
        selected = set(self.selected_ids())
        entries = list(reversed(self.store.entries()))
        self.table.setSortingEnabled(False)  # sorting while filling scrambles the rows being filled
        self.table.setRowCount(len(entries))
        for row, e in enumerate(entries):
            for col, (text, key) in enumerate(_row_values(e)):
                item = _SortItem(text, key)
                if isinstance(key, (int, float)) and col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if col == 0:
                    item.setData(ID_ROLE, e.id)
                    item.setToolTip(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.time)))
                if e.error:
                    item.setToolTip(plain_tooltip(e.error))  # from the history file: as text
                self.table.setItem(row, col, item)
        self.table.setSortingEnabled(True)
        self.table.clearSelection()
        for row in range(self.table.rowCount()):
            if self.entry_id(row) in selected:
                self.table.selectRow(row)
        self._update_usage()

    def entry_id(self, row: int) -> str | None:
        item = self.table.item(row, 0)
        return None if item is None else item.data(ID_ROLE)

    def row_of(self, entry_id: str) -> int:
        for row in range(self.table.rowCount()):
            if self.entry_id(row) == entry_id:
                return row
        return -1

    def selected_ids(self) -> list[str]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [i for i in (self.entry_id(r) for r in rows) if i]

    def _update_usage(self) -> None:
        used = self.store.total_bytes() / MB
        # Short: it shares a row with the buttons and the cache size in a narrow tab; the tooltip says more.
        self.usage.setText(f"{used:.1f} MB used")
        self.usage.setToolTip(f"{self.table.rowCount()} Speaks in the history, {used:.1f} MB of audio cached")

    # --- cache bound ------------------------------------------------------------------------------------
    def _apply_max_mb(self, mb: float) -> None:
        self.store.set_max_bytes(int(mb * MB))

    def _on_max_mb(self, mb: float) -> None:
        self._apply_max_mb(mb)
        self.reload()
        self.max_mb_changed.emit(mb)

    # --- actions ----------------------------------------------------------------------------------------
    def _on_double_click(self, row: int, _col: int) -> None:
        entry_id = self.entry_id(row)
        if entry_id:
            self.replay_requested.emit(entry_id)

    def _replay_selected(self) -> None:
        ids = self.selected_ids()
        if ids:
            self.replay_requested.emit(ids[0])

    def _delete_selected(self) -> None:
        for entry_id in self.selected_ids():
            self.delete(entry_id)

    def delete(self, entry_id: str) -> None:
        try:
            self.store.delete(entry_id)
        except (HistoryError, OSError) as exc:
            self.error.emit(f"Could not delete: {exc}")
        self.reload()

    def _context_menu(self, pos: QPoint) -> None:
        row = self.table.rowAt(pos.y())
        entry_id = self.entry_id(row) if row >= 0 else None
        if not entry_id:
            return
        if entry_id not in self.selected_ids():
            self.table.selectRow(row)
        menu = self.build_menu(entry_id)
        menu.exec(self.table.viewport().mapToGlobal(pos))

    def build_menu(self, entry_id: str) -> QMenu:
        """The context menu of one row (public so tests can trigger its actions without a popup)."""
        entry = self.store.get(entry_id)
        cached = entry.audio_bytes > 0 and not entry.evicted
        menu = QMenu(self)
        replay = QAction("&Replay", menu)
        replay.triggered.connect(lambda: self.replay_requested.emit(entry_id))
        save_orig = QAction("Save &original bytes…", menu)
        save_orig.triggered.connect(lambda: self._ask_save(entry_id, played=False))
        save_wav = QAction("Save played &WAV…", menu)
        save_wav.triggered.connect(lambda: self._ask_save(entry_id, played=True))
        captions = QAction("Export &captions (SRT/WebVTT)…", menu)
        captions.triggered.connect(lambda: self._ask_captions(entry_id))
        delete = QAction("&Delete", menu)
        delete.triggered.connect(lambda: self.delete(entry_id))
        for action in (replay, save_orig, save_wav, captions):
            action.setEnabled(cached)
        menu.addActions([replay, save_orig, save_wav, captions])
        menu.addSeparator()
        menu.addAction(delete)
        return menu

    @asyncSlot()
    async def _ask_save(self, entry_id: str, played: bool) -> None:
        entry = self.store.get(entry_id)
        name = suggested_name(entry, "wav" if played else None)
        what = "Save played audio as WAV" if played else "Save the original bytes"
        path, _ = QFileDialog.getSaveFileName(self, what, str(Path.home() / name))
        if path:
            await self.save(entry_id, Path(path), played)

    async def save(self, entry_id: str, path: Path, played: bool = False) -> bool:
        """Write the entry's original bytes (or a WAV of the decoded audio) in a worker thread; errors go to
        the banner. True on success."""
        func = self.store.save_played_wav if played else self.store.save_original
        try:
            await asyncio.to_thread(func, entry_id, path)
        except (HistoryError, DecodeError, OSError) as exc:
            self.error.emit(f"Could not save {path.name}: {exc}")
            return False
        return True

    @asyncSlot()
    async def _ask_captions(self, entry_id: str) -> None:
        entry = self.store.get(entry_id)
        path, chosen = QFileDialog.getSaveFileName(self, "Export captions", str(Path.home() / suggested_name(
            entry, "srt")), "SubRip captions (*.srt);;WebVTT captions (*.vtt)")
        if path:
            target = Path(path)
            if target.suffix.lower() not in (".srt", ".vtt"):  # the filter chosen decides a missing extension
                target = target.with_name(target.name + (".vtt" if "vtt" in chosen else ".srt"))
            await self.save_captions(entry_id, target)

    async def save_captions(self, entry_id: str, path: Path) -> bool:
        """Write the entry's captions (SRT or WebVTT by `path`'s extension; timings the server or engine gave,
        else estimated from the cached audio and marked so) in a worker thread; errors go to the banner."""
        try:
            await asyncio.to_thread(self.store.save_captions, entry_id, path)
        except (HistoryError, DecodeError, CaptionError, OSError) as exc:
            self.error.emit(f"Could not export captions to {path.name}: {exc}")
            return False
        return True

    # --- drag out ---------------------------------------------------------------------------------------
    def drag_file(self, entry_id: str) -> Path | None:
        """A temporary file holding the entry's original bytes, for a drag to another program."""
        try:
            entry = self.store.get(entry_id)
            if self._drag_dir is None:
                self._drag_dir = tempfile.TemporaryDirectory(prefix="voicegui-drag-")
            return self.store.save_original(entry_id, Path(self._drag_dir.name) / suggested_name(entry))
        except (HistoryError, OSError) as exc:
            self.error.emit(f"Cannot drag that row out: {exc}")
            return None

    def store_into(self, s: Settings) -> None:
        s.history_max_mb = float(self.max_mb.value())

    def close_panel(self) -> None:
        """The window closes: remove the drag copies (drop targets have copied them by now)."""
        if self._drag_dir is not None:
            self._drag_dir.cleanup()
            self._drag_dir = None
