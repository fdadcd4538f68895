"""The objects of the current image (a dock): one row an object, top of the drawing order first.

A table over :class:`~gui.window.panels.objects_model.ObjectsModel` (fast for a thousand rows; see
there), a summary line above it and the object commands below. The panel only asks: a click on
an eye or a check, Delete, a double-click on the class and the buttons emit requests; the
controller changes the project and gives the rows back with :meth:`ObjectsPanel.update_rows`,
which changes only what differs (the selection, current row and scroll position stay). No
signal is emitted while rows or the current object are being set by the controller.

Rows are given in drawing order, bottom first (as ``ImageRecord.objects`` and ``LabelMap``
keep them) and shown top first.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6 import QtCore, QtWidgets

from gui.window.panels.objects_model import (COL_ACCEPT, COL_CLASS, COL_EYE, COL_PROPOSAL, COL_REVIEW, COL_SOURCE,
                            ICON_COLUMNS_WIDTH, ROW_HEIGHT, UID_ROLE, ObjectRow, ObjectsModel)

__all__ = ["ObjectRow", "ObjectsPanel"]

Event = QtCore.QEvent.Type


class ObjectsPanel(QtWidgets.QWidget):
    """See the module doc. ``uid`` values are the objects' uids (str)."""

    current_changed = QtCore.Signal(object)  # uid or None
    hidden_toggled = QtCore.Signal(str, bool)  # uid, hide it (True) or show it
    accept_toggled = QtCore.Signal(str, bool)  # uid, accept it (True) or take it back
    delete_requested = QtCore.Signal(list)  # uids
    keep_requested = QtCore.Signal(list)  # uids (proposals to keep)
    merge_requested = QtCore.Signal(list)  # uids, two or more
    order_requested = QtCore.Signal(str, int)  # uid, +1 bring forward / -1 send backward
    class_requested = QtCore.Signal(list)  # uids to give a class
    new_object_requested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._updating = False
        self.model = ObjectsModel(self)
        self.summary = QtWidgets.QLabel("No objects")
        self.summary.setObjectName("objectsSummary")
        self.view = QtWidgets.QTableView()
        self.view.setObjectName("objectsList")
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setShowGrid(False)
        self.view.setWordWrap(False)
        self.view.setAlternatingRowColors(True)
        self.view.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        rows = self.view.verticalHeader()
        rows.hide()
        rows.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Fixed)  # no row is measured
        rows.setDefaultSectionSize(ROW_HEIGHT)
        header = self.view.horizontalHeader()
        header.setMinimumSectionSize(ICON_COLUMNS_WIDTH)
        header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(COL_CLASS, QtWidgets.QHeaderView.ResizeMode.Stretch)
        header.setHighlightSections(False)
        for col, width in ((COL_SOURCE, 66), (COL_PROPOSAL, ICON_COLUMNS_WIDTH), (COL_ACCEPT, ICON_COLUMNS_WIDTH),
                           (COL_EYE, ICON_COLUMNS_WIDTH), (COL_REVIEW, 52)):
            header.resizeSection(col, width)
        self.view.viewport().installEventFilter(self)
        self.view.installEventFilter(self)
        self.view.doubleClicked.connect(self._on_double_click)
        self.view.selectionModel().currentRowChanged.connect(self._on_current)
        self.view.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())

        def button(text: str, tip: str, slot) -> QtWidgets.QToolButton:
            b = QtWidgets.QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.setAutoRaise(False)
            b.clicked.connect(slot)
            return b

        self.new_button = button("New", "Start a new object (O): click on the image to make its mask",
                                 self.new_object_requested.emit)
        self.class_button = button("Class…", "Set the class of the selected objects (or double-click a class)",
                                   lambda: self._request(self.class_requested))
        self.keep_button = button("Keep", "Keep the selected proposals (asking again will not replace them)",
                                  lambda: self._request(self.keep_requested))
        self.merge_button = button("Merge", "Merge the selected objects into one",
                                   lambda: self._request(self.merge_requested))
        self.forward_button = button("▲", "Bring the current object forward (drawn over the one above it)",
                                     lambda: self._order(+1))
        self.backward_button = button("▼", "Send the current object backward", lambda: self._order(-1))
        self.delete_button = button("Delete", "Delete the selected objects (Delete)",
                                    lambda: self._request(self.delete_requested))
        commands = QtWidgets.QGridLayout()
        commands.setContentsMargins(0, 0, 0, 0)
        commands.setSpacing(3)
        for i, b in enumerate((self.new_button, self.class_button, self.keep_button, self.merge_button,
                               self.forward_button, self.backward_button, self.delete_button)):
            b.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
            commands.addWidget(b, 0, i)  # one row: the dock shares its side with the image list
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        layout.addWidget(self.view, 1)
        layout.addLayout(commands)
        self._update_buttons()

    # -- rows from the controller ------------------------------------------------------------
    def set_rows(self, rows: Sequence[ObjectRow]) -> None:
        """A new image's objects, drawing order bottom first: the list starts afresh (no current)."""
        self._updating = True
        try:
            self.model.reset_rows(list(reversed(rows)))
        finally:
            self._updating = False
        self._refresh()

    def update_rows(self, rows: Sequence[ObjectRow]) -> None:
        """The image's objects now, all of them, drawing order bottom first: only rows that differ
        change (moved, inserted, removed, or redrawn), and the selection stays with its objects.
        When the current object is gone the list has none (the controller sets it)."""
        current = self.current()
        self._updating = True
        try:
            self.model.sync_rows(list(reversed(rows)))
            if current is not None and self.model.row_of(current) is None:
                self.view.selectionModel().setCurrentIndex(QtCore.QModelIndex(),
                                                           QtCore.QItemSelectionModel.SelectionFlag.NoUpdate)
        finally:
            self._updating = False
        self._refresh()

    def update_row(self, row: ObjectRow) -> None:
        """One object changed (same place in the order)."""
        if self.model.change_row(row):
            self._refresh()

    def set_current(self, uid: str | None) -> None:
        """Select ``uid`` alone and make it current (None: nothing), without emitting."""
        sm = self.view.selectionModel()
        r = None if uid is None else self.model.row_of(uid)
        self._updating = True
        try:
            if r is None:
                sm.clearSelection()
                sm.setCurrentIndex(QtCore.QModelIndex(), QtCore.QItemSelectionModel.SelectionFlag.NoUpdate)
            else:
                flags = (QtCore.QItemSelectionModel.SelectionFlag.ClearAndSelect
                         | QtCore.QItemSelectionModel.SelectionFlag.Rows)
                sm.setCurrentIndex(self.model.index(r, COL_CLASS), flags)
                self.view.scrollTo(self.model.index(r, COL_CLASS))
        finally:
            self._updating = False
        self._update_buttons()

    def current(self) -> str | None:
        index = self.view.selectionModel().currentIndex()
        return index.data(UID_ROLE) if index.isValid() else None

    def selected_uids(self) -> list[str]:
        """The selected objects' uids, in list order (top of the drawing order first)."""
        return [self.model.rows[r].uid for r in self._selected_rows()]

    def _selected_rows(self) -> list[int]:
        return sorted(i.row() for i in self.view.selectionModel().selectedRows())

    # -- input -------------------------------------------------------------------------------
    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 - Qt API
        if obj is self.view.viewport() and event.type() in (Event.MouseButtonPress, Event.MouseButtonDblClick):
            index = self.view.indexAt(event.position().toPoint())
            if (index.isValid() and index.column() in (COL_EYE, COL_ACCEPT)
                    and event.button() == QtCore.Qt.MouseButton.LeftButton):
                row = self.model.rows[index.row()]
                if index.column() == COL_EYE:
                    self.hidden_toggled.emit(row.uid, not row.hidden)
                else:
                    self.accept_toggled.emit(row.uid, not row.accepted)
                return True  # a toggle, not a selection: the current object stays
        elif obj is self.view and event.type() == Event.KeyPress:
            if event.key() in (QtCore.Qt.Key.Key_Delete, QtCore.Qt.Key.Key_Backspace) and self.selected_uids():
                self._request(self.delete_requested)
                return True
        return super().eventFilter(obj, event)

    def _on_double_click(self, index: QtCore.QModelIndex) -> None:
        if index.column() != COL_CLASS:
            return
        uids = self.selected_uids()
        uid = self.model.rows[index.row()].uid
        self.class_requested.emit(uids if uid in uids else [uid])

    def _on_current(self, current: QtCore.QModelIndex, _previous: QtCore.QModelIndex) -> None:
        self._update_buttons()
        if not self._updating:
            self.current_changed.emit(current.data(UID_ROLE) if current.isValid() else None)

    def _request(self, signal) -> None:
        uids = self.selected_uids()
        if uids:
            signal.emit(uids)

    def _order(self, step: int) -> None:
        uid = self.current()
        if uid is not None:
            self.order_requested.emit(uid, step)

    # -- display -----------------------------------------------------------------------------
    def _refresh(self) -> None:
        rows = self.model.rows
        if not rows:
            self.summary.setText("No objects")
        else:
            accepted = sum(r.accepted for r in rows)
            proposals = sum(r.proposal for r in rows)
            self.summary.setText(f"{len(rows)} object{'s' if len(rows) != 1 else ''}, {accepted} accepted, "
                                 f"{proposals} proposal{'s' if proposals != 1 else ''}")
        self._update_buttons()

    def _update_buttons(self) -> None:
        if self._updating:  # (rows are changing: done once they are in)
            return
        uids = self._selected_rows()
        r = self.view.selectionModel().currentIndex().row()
        proposals = any(self.model.rows[i].proposal for i in uids)
        self.class_button.setEnabled(bool(uids))
        self.delete_button.setEnabled(bool(uids))
        self.keep_button.setEnabled(proposals)
        self.merge_button.setEnabled(len(uids) >= 2)
        self.forward_button.setEnabled(r > 0)  # row 0 is the top of the drawing order
        self.backward_button.setEnabled(0 <= r < len(self.model.rows) - 1)

