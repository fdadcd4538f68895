"""Pick a class for the selected objects: a list of the project's classes that narrows as you type.

Keyboard first, because labelling a thousand objects is done by key: the filter box has the
focus; typing narrows the list (case-insensitive substring), Up/Down move in it, Enter picks the
highlighted class (once you type, the class of that name, else the first match), a digit 1-9
typed into the empty box picks that class at once (the numbering of ``gui.window.class_keys``), and Esc
cancels. A name not in the list is offered as ``New class "…"`` (picked like any other). The
mouse works too: a click picks.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6 import QtCore, QtGui, QtWidgets

from engine.project.records import Category, clean_label

from gui.window.class_keys import MAX_KEYS, digit_of_text
from gui.window.panels.objects_model import swatch_icon

NAME_ROLE = QtCore.Qt.ItemDataRole.UserRole  # the class name an item picks
NEW_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1  # True on the "New class" item
FIGURE_SPACE = "\u2007"  # as wide as a digit: names past the ninth line up with the numbered ones


class ClassPicker(QtWidgets.QDialog):
    """See the module doc. After ``exec()`` (or ``accept()``): :meth:`picked` and :attr:`is_new`."""

    def __init__(self, classes: Sequence[Category], current: str | None = None,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Class")
        self._picked: str | None = None
        self.is_new = False
        self.filter_edit = QtWidgets.QLineEdit()
        self.filter_edit.setObjectName("classFilter")
        self.filter_edit.setPlaceholderText("Type to find or add a class; 1-9 pick at once")
        self.filter_edit.setClearButtonEnabled(True)
        self.list = QtWidgets.QListWidget()
        self.list.setObjectName("classList")
        self.list.setUniformItemSizes(True)
        self.list.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)  # typing stays in the filter box
        ordered = sorted(classes, key=lambda c: c.id)
        for i, c in enumerate(ordered):
            digit = str(i + 1) if i < MAX_KEYS else FIGURE_SPACE
            item = QtWidgets.QListWidgetItem(swatch_icon(tuple(c.rgb)), f"{digit}   {c.name}")
            item.setData(NAME_ROLE, c.name)
            item.setToolTip(f"{c.name} (key {i + 1})" if i < MAX_KEYS else c.name)
            self.list.addItem(item)
        self.new_item = QtWidgets.QListWidgetItem("")
        self.new_item.setData(NEW_ROLE, True)
        font = self.new_item.font()
        font.setItalic(True)
        self.new_item.setFont(font)
        self.list.addItem(self.new_item)
        self.new_item.setHidden(True)
        hint = QtWidgets.QLabel("Enter picks · Esc cancels")
        hint.setObjectName("sectionLabel")
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.filter_edit)
        layout.addWidget(self.list, 1)
        layout.addWidget(hint)
        self.filter_edit.textChanged.connect(self._on_filter)
        self.filter_edit.installEventFilter(self)
        self.filter_edit.returnPressed.connect(self._pick_current)
        self.list.itemClicked.connect(self._pick)
        self.resize(300, 360)
        names = [c.name for c in ordered]
        self.list.setCurrentRow(names.index(current) if current in names else 0 if names else -1)
        self.filter_edit.setFocus()

    @staticmethod
    def pick(parent: QtWidgets.QWidget | None, classes: Sequence[Category], current: str | None) -> str | None:
        """The class the person picks (a new name when they typed one), None when they cancel."""
        dialog = ClassPicker(classes, current, parent)
        try:
            return dialog.picked() if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted else None
        finally:
            dialog.deleteLater()

    def picked(self) -> str | None:
        """The picked class name (None until one is picked)."""
        return self._picked

    def visible_names(self) -> list[str]:
        """The classes the list shows now, in order (the "New class" item not counted)."""
        return [self.list.item(r).data(NAME_ROLE) for r in range(self.list.count() - 1)
                if not self.list.item(r).isHidden()]

    # -- input -------------------------------------------------------------------------------
    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 - Qt API
        if obj is self.filter_edit and event.type() == QtCore.QEvent.Type.KeyPress:
            key = event.key()
            if key in (QtCore.Qt.Key.Key_Up, QtCore.Qt.Key.Key_Down):
                self._step(-1 if key == QtCore.Qt.Key.Key_Up else 1)
                return True
            digit = digit_of_text(event.text())
            plain = event.modifiers() in (QtCore.Qt.KeyboardModifier.NoModifier,
                                          QtCore.Qt.KeyboardModifier.KeypadModifier)
            if digit is not None and plain and not self.filter_edit.text() and digit < self.list.count():
                self._pick(self.list.item(digit - 1))
                return True
        return super().eventFilter(obj, event)

    def _on_filter(self, text: str) -> None:
        needle = clean_label(text).casefold()
        first = exact = None
        for r in range(self.list.count() - 1):
            item = self.list.item(r)
            name = item.data(NAME_ROLE)
            shown = needle in name.casefold()
            item.setHidden(not shown)
            if exact is None and name.casefold() == needle:
                exact = item
            if shown and first is None:
                first = item
        name = clean_label(text)
        self.new_item.setData(NAME_ROLE, name)
        self.new_item.setText(f"New class “{name}”")
        self.new_item.setToolTip(f"Add “{name}” to the project's classes and pick it")
        self.new_item.setHidden(not name or exact is not None)
        best = exact or first or (None if self.new_item.isHidden() else self.new_item)
        self.list.setCurrentRow(-1 if best is None else self.list.row(best))

    def _step(self, step: int) -> None:
        rows = [r for r in range(self.list.count()) if not self.list.item(r).isHidden()]
        if not rows:
            return
        r = self.list.currentRow()
        at = rows.index(r) + step if r in rows else 0
        self.list.setCurrentRow(rows[max(0, min(len(rows) - 1, at))])

    def _pick_current(self) -> None:
        item = self.list.currentItem()
        if item is not None and not item.isHidden():
            self._pick(item)

    def _pick(self, item: QtWidgets.QListWidgetItem) -> None:
        self._picked = item.data(NAME_ROLE)
        self.is_new = bool(item.data(NEW_ROLE))
        self.accept()

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:  # noqa: N802 - Qt API
        if event.key() in (QtCore.Qt.Key.Key_Return, QtCore.Qt.Key.Key_Enter):
            self._pick_current()  # (no default button: Enter always picks)
            return
        super().keyPressEvent(event)
