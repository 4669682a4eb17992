"""A voice browser fit for long voice lists (the built-in server's 133 voices, Kokoro's 50): a search box that
narrows a grouped tree, readable names, and a play button per voice.

* Grouping (`browse_rows`, pure): voices named the way voicegui's own server names them ("Heart (hibari)",
  "English (America) (espeak-ng)") are grouped by engine, and within an engine by language where a language
  has several voices; the engine is shown once, on its group, never repeated on each voice. Kokoro ids
  (af_bella, bm_george, jf_alpha) are grouped by their language letter, locale-prefixed ids (en-US-..., de_DE-...)
  by their locale; any other list stays flat, in the server's order.
* Names are elided in the middle only (the tree is narrow), the full name and the id are in each row's tooltip.
* Searching only narrows the tree: it never picks a voice. In single mode (`multiple=False`) a click on a name
  or Enter on it picks (`voice_chosen(id)`); the chosen voice stays in view and marked even when it does not
  match, and 'No voice matches "zzz"' is said under the box. In multiple mode (a line-up) each voice has a
  check box (`checked_ids()`, `checked_changed`), and checked voices stay in view while searching.
* The play button in each row's second column asks for a short sample in that voice (`preview_requested(id)`);
  the owner speaks it through the window's player. A preview never picks the voice.
* `voices_changed` fires after each `set_voices()` (the window refills the Line-up and A/B tabs' browsers from
  the Voice tab's when the provider's list arrives or changes).

The same picker serves the Voice tab (ui/provider_panel.py), each A/B side (ui/ab_panel.py) and the line-up
(ui/lineup_panel.py, multiple mode).

Server names are shown as item text (plain text) and through `plain_tooltip` (never rich text).

Threads: GUI thread only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QFont, QIcon, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLineEdit,
    QStyle,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from voicegui.server_profile import KOKORO_VOICE
from voicegui.ui.safe_text import PlainLabel, plain_tooltip

# What a preview says: short, so a click gives an impression of the voice within a second or two.
PREVIEW_TEXT = "Hello! This is how I sound."

# voicegui's own server names a voice "<name> (<engine>)": the engine is a lower-case id in the last brackets.
_ENGINE_SUFFIX = re.compile(r"^(?P<name>.*?)\s*\((?P<engine>[a-z][a-z0-9_-]*)\)$")
# Ids that start with a locale: en-US-JennyNeural, de_DE-thorsten-medium.
_LOCALE_PREFIX = re.compile(r"^(?P<locale>[a-z]{2,3}[-_][A-Z]{2})[-_].")
# Kokoro's first letter is the language (its second the gender), per Kokoro's VOICES.md.
KOKORO_LANGUAGES = {
    "a": "American English", "b": "British English", "e": "Spanish", "f": "French", "h": "Hindi",
    "i": "Italian", "j": "Japanese", "p": "Brazilian Portuguese", "z": "Mandarin Chinese",
}
_KOKORO_GENDER = {"f": "female", "m": "male"}
_ID_ROLE = Qt.ItemDataRole.UserRole
PLAY_COLUMN = 1
PLAY_GLYPH = "▶"


@dataclass(frozen=True)
class VoiceRow:
    """One voice as the browser shows it: `group` is the path of group names above it (may be empty),
    `label` its readable name, `search` what the search box matches against (id, name, groups)."""

    id: str
    name: str
    label: str
    group: tuple[str, ...]

    @property
    def search(self) -> str:
        return " ".join((self.id, self.name, self.label, *self.group)).casefold()


def _majority(voices: Sequence[tuple[str, str]], test: re.Pattern[str], on_name: bool = False) -> bool:
    hits = sum(1 for vid, name in voices if test.match(name if on_name else vid))
    return bool(voices) and hits * 2 > len(voices)


def voice_label(vid: str, name: str) -> str:
    """A voice's readable name where no group shows its engine (a combo box, a line-up row): "Heart — hibari",
    "English (America) — espeak-ng", "Bella (af_bella)", "alloy"."""
    m = _ENGINE_SUFFIX.match(name)
    if m and m["name"]:
        return f"{m['name']} — {m['engine']}"
    return vid if name.casefold() in (vid.casefold(), "") else f"{name} ({vid})"


def browse_rows(voices: Iterable[tuple[str, str]]) -> list[VoiceRow]:
    """(id, name) pairs, in the server's order, as grouped rows (see the module docstring)."""
    voices = list(voices)
    if _majority(voices, _ENGINE_SUFFIX, on_name=True):
        return _engine_rows(voices)
    if _majority(voices, KOKORO_VOICE):
        return _prefix_rows(voices, _kokoro_group)
    if _majority(voices, _LOCALE_PREFIX):
        return _prefix_rows(voices, _locale_group)
    return [VoiceRow(vid, name, voice_label(vid, name), ()) for vid, name in voices]


def _engine_rows(voices: list[tuple[str, str]]) -> list[VoiceRow]:
    by_engine: dict[str, list[tuple[str, str, str]]] = {}
    for vid, name in voices:
        m = _ENGINE_SUFFIX.match(name)
        engine, label = (m["engine"], m["name"] or vid) if m else ("other", voice_label(vid, name))
        by_engine.setdefault(engine, []).append((vid, name, label))
    rows: list[VoiceRow] = []
    for engine, members in by_engine.items():  # engines in the server's order (best first)
        language = {vid: label.split(" (", 1)[0] for vid, _n, label in members}
        counts: dict[str, int] = {}
        for lang in language.values():
            counts[lang] = counts.get(lang, 0) + 1
        # Sorted by name: 131 espeak-ng voices are found by reading down, not in the engine's own order.
        for vid, name, label in sorted(members, key=lambda m: m[2].casefold()):
            lang = language[vid]
            group = (engine, lang) if counts[lang] > 1 and len(members) > 1 else (engine,)
            rows.append(VoiceRow(vid, name, label, group))
    return rows


def _kokoro_group(vid: str) -> str | None:
    if not KOKORO_VOICE.match(vid):
        return None
    return KOKORO_LANGUAGES.get(vid[0], f"{vid[0]}_ voices")


def _locale_group(vid: str) -> str | None:
    m = _LOCALE_PREFIX.match(vid)
    return m["locale"].replace("_", "-") if m else None


def _prefix_rows(voices: list[tuple[str, str]], group_of: Callable[[str], str | None]) -> list[VoiceRow]:
    rows: list[VoiceRow] = []
    order: dict[str, int] = {}
    for vid, name in voices:
        group = group_of(vid)
        key = group or "Other"
        order.setdefault(key, len(order))
        label = voice_label(vid, name)
        if group and group_of is _kokoro_group and name.casefold() in (vid.casefold(), ""):
            gender = _KOKORO_GENDER.get(vid[1])
            label = vid[3:].capitalize() + (f" ({gender})" if gender else "")
        rows.append(VoiceRow(vid, name, label, (key,)))
    rows.sort(key=lambda r: order[r.group[0]])  # stable: the server's order within a group
    return rows


class _Tree(QTreeWidget):
    """The tree; Space previews the voice under the cursor (Enter picks it)."""

    preview_key = Signal(QTreeWidgetItem)

    def sizeHint(self) -> QSize:  # Qt's name
        # Six rows by default (Qt's default is ~10): the Voice tab then fits 1280x800 without scrolling; the
        # layout's stretch gives the tree whatever room is left.
        hint = super().sizeHint()
        return QSize(hint.width(), self.fontMetrics().lineSpacing() * 6 + 2 * self.frameWidth() + 8)

    def event(self, event: QEvent) -> bool:  # Qt's name
        # Space on a voice is this list's preview, also where the window has a Space shortcut (the A/B tab's
        # switch): claiming the override makes Qt deliver the key here instead of firing the shortcut.
        if (event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent)
                and event.key() == Qt.Key.Key_Space and event.modifiers() == Qt.KeyboardModifier.NoModifier
                and self._voice_under_cursor() is not None):
            event.accept()
            return True
        return super().event(event)

    def _voice_under_cursor(self) -> QTreeWidgetItem | None:
        item = self.currentItem()
        return item if item is not None and item.data(0, _ID_ROLE) is not None else None

    def keyPressEvent(self, event: QKeyEvent) -> None:  # Qt's name
        item = self.currentItem()
        if event.key() == Qt.Key.Key_Space and item is not None and item.data(0, _ID_ROLE) is not None:
            self.preview_key.emit(item)
            return
        super().keyPressEvent(event)


class VoicePicker(QWidget):
    """Search box, grouped voice tree and preview buttons (module docstring). `multiple`: check boxes (a
    line-up) instead of one chosen voice."""

    voice_chosen = Signal(str)
    preview_requested = Signal(str)
    checked_changed = Signal()
    voices_changed = Signal()  # set_voices() filled it (another provider, a refreshed list)

    def __init__(self, multiple: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.multiple = multiple
        self._rows: list[VoiceRow] = []
        self._items: dict[str, QTreeWidgetItem] = {}
        self._chosen = ""
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Search voices: name, language, engine or id…")
        self.filter.setClearButtonEnabled(True)
        self.note = PlainLabel()  # 'No voice matches "zzz"' / counts: said here, not only in a tooltip
        self.note.setObjectName("voiceSearchNote")
        self.note.setWordWrap(True)
        self.tree = _Tree()
        self.tree.setColumnCount(2)
        self.tree.setHeaderHidden(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        # Two group levels (engine, language) at Qt's 20 px each left little of a narrow tree (an A/B side) for
        # the names; the branch arrows need about a line's height.
        self.tree.setIndentation(max(12, self.fontMetrics().height()))
        # Moving through the list with the arrow keys must not pick: only a click or Enter does.
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(PLAY_COLUMN, QHeaderView.ResizeMode.Fixed)
        self.tree.setColumnWidth(PLAY_COLUMN, self.fontMetrics().height() + 12)
        self.tree.setMinimumHeight(self.fontMetrics().lineSpacing() * 5)
        self._chosen_icon = self.style().standardIcon(QStyle.StandardPixmap.SP_DialogApplyButton)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.filter)
        layout.addWidget(self.note)
        layout.addWidget(self.tree, 1)

        self.filter.textChanged.connect(lambda _t: self._apply_filter())
        self.filter.returnPressed.connect(self._focus_first_match)
        self.tree.itemClicked.connect(self._on_clicked)
        self.tree.activated.connect(self._on_activated)
        self.tree.preview_key.connect(self._preview_item)
        if multiple:
            self.tree.itemChanged.connect(self._on_item_changed)

    # --- filling ----------------------------------------------------------------------------------------
    def set_voices(self, voices: Iterable[tuple[str, str]], chosen: str = "",
                   checked: Iterable[str] = ()) -> None:
        """Show these (id, name) voices; `chosen` is marked (single mode), `checked` are ticked (multiple)."""
        self._rows = browse_rows(voices)
        self._chosen = chosen
        keep = set(checked)
        self.tree.blockSignals(True)
        self.tree.clear()
        self._items = {}
        groups: dict[tuple[str, ...], QTreeWidgetItem] = {}
        counts: dict[tuple[str, ...], int] = {}
        for row in self._rows:
            for depth in range(1, len(row.group) + 1):
                counts[row.group[:depth]] = counts.get(row.group[:depth], 0) + 1
        bold = QFont(self.tree.font())
        bold.setBold(True)
        for row in self._rows:
            parent: QTreeWidgetItem | None = None
            for depth in range(1, len(row.group) + 1):
                path = row.group[:depth]
                if path not in groups:
                    group = QTreeWidgetItem([f"{path[-1]} ({counts[path]})"])
                    group.setFont(0, bold)
                    group.setToolTip(0, plain_tooltip(" / ".join(path)))
                    if self.multiple:
                        group.setFlags(group.flags() | Qt.ItemFlag.ItemIsUserCheckable
                                       | Qt.ItemFlag.ItemIsAutoTristate)
                        group.setCheckState(0, Qt.CheckState.Unchecked)
                    self._add(group, parent)
                    groups[path] = group
                parent = groups[path]
            item = QTreeWidgetItem([row.label])
            item.setData(0, _ID_ROLE, row.id)
            full = row.name if row.name.casefold() == row.id.casefold() else f"{row.name}\nid: {row.id}"
            item.setToolTip(0, plain_tooltip(full))
            # A glyph, not the style's icon: that is black whatever the theme (invisible on a dark list), and
            # item text takes the palette's colour.
            item.setText(PLAY_COLUMN, PLAY_GLYPH)
            item.setTextAlignment(PLAY_COLUMN, Qt.AlignmentFlag.AlignCenter)
            item.setToolTip(PLAY_COLUMN, plain_tooltip(f"Preview: hear a short sample in {row.label}"))
            if self.multiple:
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(0, Qt.CheckState.Checked if row.id in keep else Qt.CheckState.Unchecked)
            self._add(item, parent)
            self._items[row.id] = item
        self.tree.blockSignals(False)
        self._mark_chosen()
        self._apply_filter()
        self.voices_changed.emit()

    def _add(self, item: QTreeWidgetItem, parent: QTreeWidgetItem | None) -> None:
        if parent is None:
            self.tree.addTopLevelItem(item)
        else:
            parent.addChild(item)

    # --- reading ----------------------------------------------------------------------------------------
    def chosen(self) -> str:
        return self._chosen

    def set_chosen(self, voice_id: str) -> None:
        """Mark `voice_id` as the chosen voice (it came from elsewhere: the voice field, settings); no signal."""
        if voice_id == self._chosen:
            return
        self._chosen = voice_id
        self._mark_chosen()
        self._apply_filter()

    def item_for(self, voice_id: str) -> QTreeWidgetItem | None:
        return self._items.get(voice_id)

    def visible_ids(self) -> list[str]:
        """The voices the tree shows now (a search hides the others), in tree order."""
        return [r.id for r in self._rows if not self._items[r.id].isHidden()]

    def all_ids(self) -> list[str]:
        """Every voice the browser holds (shown or hidden by the search), in tree order."""
        return [r.id for r in self._rows]

    def checked_ids(self) -> list[str]:
        """Multiple mode: the ticked voices, in tree order."""
        return [r.id for r in self._rows if self._items[r.id].checkState(0) == Qt.CheckState.Checked]

    def set_checked(self, voice_id: str, checked: bool) -> None:
        item = self._items.get(voice_id)
        if item is not None:
            item.setCheckState(0, Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    # --- behaviour --------------------------------------------------------------------------------------
    def _mark_chosen(self) -> None:
        if self.multiple:
            return
        normal = QFont(self.tree.font())
        bold = QFont(normal)
        bold.setBold(True)
        for vid, item in self._items.items():
            chosen = vid == self._chosen
            item.setFont(0, bold if chosen else normal)
            item.setIcon(0, self._chosen_icon if chosen else QIcon())
        mine = self._items.get(self._chosen)
        if mine is not None:
            self._reveal(mine)

    def _reveal(self, item: QTreeWidgetItem) -> None:
        parent = item.parent()
        while parent is not None:
            parent.setExpanded(True)
            parent = parent.parent()
        self.tree.scrollToItem(item)

    def _keep_visible(self, vid: str) -> bool:
        if self.multiple:
            return self._items[vid].checkState(0) == Qt.CheckState.Checked
        return vid == self._chosen

    def _apply_filter(self) -> None:
        needle = self.filter.text().strip().casefold()
        matches = 0
        for row in self._rows:
            hit = not needle or needle in row.search
            matches += hit
            self._items[row.id].setHidden(not (hit or self._keep_visible(row.id)))
        self._update_groups(self.tree.invisibleRootItem(), expand=bool(needle))
        total = len(self._rows)
        if not total:
            text = ""
        elif not needle:
            text = f"{total} voices" + ("" if self.multiple else "; click a name (or Enter) to choose, ▶ to hear it")
        elif matches == 0:
            text = f'No voice matches "{self.filter.text().strip()}".'
            if not self.multiple and self._chosen:
                text += f" The voice stays {self._chosen_label()}."
        else:
            text = f"{matches} of {total} voices match."
        self.note.setText(text)
        self.note.setVisible(bool(text))
        if not needle:
            item = self._items.get(self._chosen)
            if item is not None:
                self._reveal(item)

    def _chosen_label(self) -> str:
        for row in self._rows:
            if row.id == self._chosen:
                return row.label
        return self._chosen

    def _update_groups(self, parent: QTreeWidgetItem, expand: bool) -> bool:
        """Hide groups with nothing shown; open them while searching. True if `parent` shows anything."""
        any_shown = False
        for i in range(parent.childCount()):
            child = parent.child(i)
            if child is None:
                continue
            if child.data(0, _ID_ROLE) is None:  # a group
                shown = self._update_groups(child, expand)
                child.setHidden(not shown)
                if expand and shown:
                    child.setExpanded(True)
            else:
                shown = not child.isHidden()
            any_shown = any_shown or shown
        return any_shown

    def _focus_first_match(self) -> None:
        """Enter in the search box moves to the first match (it does not pick it: Enter there does)."""
        for row in self._rows:
            item = self._items[row.id]
            if not item.isHidden():
                self.tree.setCurrentItem(item)
                self._reveal(item)
                self.tree.setFocus()
                return

    def _on_clicked(self, item: QTreeWidgetItem, column: int) -> None:
        vid = item.data(0, _ID_ROLE)
        if vid is None:
            return
        if column == PLAY_COLUMN:
            self.preview_requested.emit(str(vid))
        elif not self.multiple:
            self._choose(str(vid))

    def _on_activated(self, index: QModelIndex) -> None:
        """Enter (or a double click) on a voice picks it; on the play column it only previews (the click did)."""
        item = self.tree.itemFromIndex(index)
        if item is None or index.column() == PLAY_COLUMN or item.data(0, _ID_ROLE) is None:
            return
        if self.multiple:
            checked = item.checkState(0) == Qt.CheckState.Checked
            item.setCheckState(0, Qt.CheckState.Unchecked if checked else Qt.CheckState.Checked)
        else:
            self._choose(str(item.data(0, _ID_ROLE)))

    def _preview_item(self, item: QTreeWidgetItem) -> None:
        self.preview_requested.emit(str(item.data(0, _ID_ROLE)))

    def _choose(self, vid: str) -> None:
        changed = vid != self._chosen
        self._chosen = vid
        self._mark_chosen()
        if changed:
            self.voice_chosen.emit(vid)

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column == 0 and item.data(0, _ID_ROLE) is not None:
            self.checked_changed.emit()
