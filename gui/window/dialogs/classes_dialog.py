"""Define the project's class list: add, rename, recolour, or load classes from a dataset's file.

The dialog edits a copy (a list of ``Category`` values) and reports what the person did as
operations, :meth:`ClassesDialog.changes`, for the controller to apply to the project in order:
``renames`` first (each ``Project.rename_category(old, new)``; they are the person's own steps,
each valid when made, so they stay valid in order), then ``Project.set_classes(added)``, then
``Project.set_category_color(name, rgb)`` for each of ``colours`` (by the final names). A class
the project has cannot be removed here (its objects refer to it).

Names are cleaned as the project stores them (``clean_label``) and must stay unique; a rename to
an empty or taken name is refused with a message and the old name kept. A new class shows the
colour its id will likely get (the project assigns ids) until one is chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from engine.errors import InputError
from engine.project.class_lists import read_class_list
from engine.project.records import Category, clean_label, palette_color

from gui.window.panels.objects_model import swatch_icon

ENTRY_ROLE = QtCore.Qt.ItemDataRole.UserRole  # an item's index into the dialog's entries
CLASS_FILES = "Class lists (*.txt *.yaml *.yml *.json);;All files (*)"


@dataclass(frozen=True)
class ClassChanges:
    """What the dialog changed; see the module doc for the order to apply it in."""

    added: tuple[str, ...] = ()
    renames: tuple[tuple[str, str], ...] = ()  # (old name, new name), in the order made
    colours: tuple[tuple[str, tuple[int, int, int]], ...] = ()  # (final name, rgb)

    def __bool__(self) -> bool:
        return bool(self.added or self.renames or self.colours)


@dataclass
class _Entry:
    name: str
    colour: tuple[int, int, int] | None  # None: the palette's colour for its id
    category: Category | None = None  # the project's class it was (None: added here)
    shown_id: int = 0  # the id its default colour is drawn for

    @property
    def rgb(self) -> tuple[int, int, int]:
        return self.colour if self.colour is not None else palette_color(self.shown_id)


class ClassesDialog(QtWidgets.QDialog):
    """See the module doc. ``choose_colour`` and ``choose_file`` open the standard dialogs; tests
    replace them."""

    def __init__(self, classes: Sequence[Category], parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Classes")
        ordered = sorted(classes, key=lambda c: c.id)
        self._entries = [_Entry(c.name, c.color, c, c.id) for c in ordered]
        self._next_id = max((c.id for c in ordered), default=0) + 1
        self._renames: list[tuple[str, str, int]] = []  # (old, new, entry index)
        self._updating = False
        self.list = QtWidgets.QListWidget()
        self.list.setObjectName("classesList")
        self.list.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.EditKeyPressed
                                  | QtWidgets.QAbstractItemView.EditTrigger.DoubleClicked)
        for i in range(len(self._entries)):
            self._add_item(i)
        self.list.itemChanged.connect(self._on_item_changed)
        self.message = QtWidgets.QLabel("")
        self.message.setObjectName("staleLabel")
        self.message.setWordWrap(True)
        self.add_button = QtWidgets.QPushButton("Add")
        self.rename_button = QtWidgets.QPushButton("Rename")
        self.colour_button = QtWidgets.QPushButton("Colour…")
        self.load_button = QtWidgets.QPushButton("Load from file…")
        self.add_button.setToolTip("Add a class (type its name, Enter)")
        self.rename_button.setToolTip("Rename the selected class (F2); its objects follow")
        self.load_button.setToolTip("Add the classes of a classes.txt, a YOLO data.yaml or a COCO JSON")
        for b, slot in ((self.add_button, self.add_class), (self.rename_button, self.rename_current),
                        (self.colour_button, self.recolour_current), (self.load_button, self._load)):
            b.setAutoDefault(False)
            b.clicked.connect(slot)
        buttons = QtWidgets.QVBoxLayout()
        for b in (self.add_button, self.rename_button, self.colour_button, self.load_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        box = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                         | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        self.ok_button = box.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.list, 1)
        row.addLayout(buttons)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(row, 1)
        layout.addWidget(self.message)
        layout.addWidget(box)
        self.list.currentRowChanged.connect(lambda _r: self._update_buttons())
        self.list.setCurrentRow(0 if self._entries else -1)
        self._update_buttons()
        self.resize(420, 380)

    # -- results -----------------------------------------------------------------------------
    def names(self) -> list[str]:
        """The class list as it is now, in order (the project's classes first, then the new)."""
        return [e.name for e in self._entries]

    def changes(self) -> ClassChanges:
        """What to apply to the project (see the module doc)."""
        added = tuple(e.name for e in self._entries if e.category is None)
        colours = tuple((e.name, e.colour) for e in self._entries if e.colour is not None and (
            e.category is None or e.colour != e.category.color))
        return ClassChanges(added, tuple((old, new) for old, new, _ in self._renames), colours)

    # -- commands ----------------------------------------------------------------------------
    def add_class(self) -> None:
        """A new class with a free name, its name open for typing."""
        n = len(self._entries) + 1
        while f"class {n}" in self.names():
            n += 1
        self._entries.append(_Entry(f"class {n}", None, None, self._next_id))
        self._next_id += 1
        item = self._add_item(len(self._entries) - 1)
        self.list.setCurrentItem(item)
        self.list.editItem(item)

    def rename_current(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.list.editItem(item)

    def recolour_current(self) -> None:
        item = self.list.currentItem()
        if item is None:
            return
        entry = self._entries[item.data(ENTRY_ROLE)]
        colour = self.choose_colour(QtGui.QColor(*entry.rgb))
        if colour is not None and colour.isValid():
            entry.colour = (colour.red(), colour.green(), colour.blue())
            self._show(item)

    def load_file(self, path: str | Path) -> int:
        """Add the classes listed in ``path`` that the list lacks; how many were added (the
        message says so, or why the file could not be read)."""
        try:
            names = read_class_list(path)
        except InputError as err:
            self.message.setText(str(err))
            return 0
        new = [n for n in names if n not in self.names()]
        for name in new:
            self._entries.append(_Entry(name, None, None, self._next_id))
            self._next_id += 1
            self._add_item(len(self._entries) - 1)
        have = len(names) - len(new)
        self.message.setText(f"{len(new)} class{'es' if len(new) != 1 else ''} added from {Path(path).name}"
                             + (f" ({have} already in the list)" if have else "") + ".")
        return len(new)

    def choose_colour(self, initial: QtGui.QColor) -> QtGui.QColor | None:
        colour = QtWidgets.QColorDialog.getColor(initial, self, "Class colour")
        return colour if colour.isValid() else None

    def choose_file(self) -> str | None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Load classes", "", CLASS_FILES)
        return path or None

    # -- internals ---------------------------------------------------------------------------
    def _load(self) -> None:
        path = self.choose_file()
        if path:
            self.load_file(path)

    def _add_item(self, index: int) -> QtWidgets.QListWidgetItem:
        item = QtWidgets.QListWidgetItem()
        item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsEditable)
        item.setData(ENTRY_ROLE, index)
        self.list.addItem(item)
        self._show(item)
        return item

    def _show(self, item: QtWidgets.QListWidgetItem) -> None:
        entry = self._entries[item.data(ENTRY_ROLE)]
        self._updating = True
        try:
            item.setText(entry.name)
            item.setIcon(swatch_icon(entry.rgb))
            item.setToolTip(entry.name if entry.category is not None else f"{entry.name} (new)")
        finally:
            self._updating = False

    def _on_item_changed(self, item: QtWidgets.QListWidgetItem) -> None:
        if self._updating:
            return
        index = item.data(ENTRY_ROLE)
        entry = self._entries[index]
        new = clean_label(item.text())
        if new == entry.name:
            self._show(item)  # (spaces cleaned away)
            return
        if not new or new in self.names():
            self.message.setText(f"There is a class called “{new}” already." if new else "A class needs a name.")
            self._show(item)
            return
        if entry.category is not None:
            if self._renames and self._renames[-1][2] == index:  # this class again: one step
                old = self._renames.pop()[0]
            else:
                old = entry.name
            if old != new:
                self._renames.append((old, new, index))
        entry.name = new
        self.message.setText("")
        self._show(item)

    def _update_buttons(self) -> None:
        has = self.list.currentItem() is not None
        self.rename_button.setEnabled(has)
        self.colour_button.setEnabled(has)
