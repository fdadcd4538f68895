"""The image list (left dock): open files or a folder, see each image's state, pick one.

An image whose file is missing (moved or deleted) stays in the list, greyed, with a tooltip
saying so; selecting it shows the "Locate folder…" banner (``gui.control.relocate``). Each row shows its
review need at the right (what "Review need first" sorts by); its tooltip says what the need is
made of (its most doubtful object's reasons, ``engine.project.review``), so the analyst can tell
why an image is first.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from engine.project.review import most_in_need

REVIEW_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1  # the row's review need (float), None when none is due

STATUS_COLOURS = {
    "new": QtGui.QColor(120, 124, 130),
    "asked": QtGui.QColor(240, 180, 40),
    "answered": QtGui.QColor(80, 160, 255),
    "edited": QtGui.QColor(170, 120, 255),
    "accepted": QtGui.QColor(46, 204, 113),
    "failed": QtGui.QColor(231, 76, 60),
    "missing": QtGui.QColor(200, 202, 206),
}
MISSING_TEXT_COLOUR = QtGui.QColor(150, 152, 156)
STATUS_TEXT = {
    "new": "not asked yet",
    "asked": "asked, no answer yet",
    "answered": "answered",
    "edited": "objects made or edited by you",
    "accepted": "done: every object accepted",
    "failed": "cannot be read",
    "missing": "not found: the file was moved or deleted (use “Locate folder…” in the banner)",
}


def status_icon(status: str, size: int = 12) -> QtGui.QIcon:
    pix = QtGui.QPixmap(size, size)
    pix.fill(QtCore.Qt.GlobalColor.transparent)
    p = QtGui.QPainter(pix)
    p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    p.setBrush(STATUS_COLOURS.get(status, STATUS_COLOURS["new"]))
    p.setPen(QtCore.Qt.PenStyle.NoPen)
    p.drawEllipse(1, 1, size - 2, size - 2)
    p.end()
    return QtGui.QIcon(pix)


class ImageListModel(QtCore.QAbstractListModel):
    """The workspace's images as list rows, read from the project as they are shown.

    A row shows the live session when the image has one (it was shown or worked on), else the
    project's summary of the image (:class:`engine.project.ImageRow`: name, state, latest
    question and answer), fetched a page at a time; no question record is read for the list.
    """

    PAGE = 128

    def __init__(self, workspace=None, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self._rows: dict[int, object] = {}  # image id -> ImageRow
        self._missing: dict[int, bool] = {}

    def set_workspace(self, workspace) -> None:
        self.beginResetModel()
        self.workspace = workspace
        self._rows.clear()
        self._missing.clear()
        self.endResetModel()

    def reset(self) -> None:
        self.beginResetModel()
        self._rows.clear()
        self.endResetModel()

    def refresh_rows(self, rows: list[int]) -> None:
        for r in rows:
            if 0 <= r < len(self.workspace.ids):
                self._rows.pop(self.workspace.ids[r], None)
                index = self.index(r)
                self.dataChanged.emit(index, index)

    def rowCount(self, parent=QtCore.QModelIndex()) -> int:  # noqa: N802 (Qt's name)
        return 0 if parent.isValid() or self.workspace is None else len(self.workspace.ids)

    def _summary(self, row: int):
        ws = self.workspace
        image_id = ws.ids[row]
        if image_id not in self._rows:
            start = row - row % self.PAGE
            page = [i for i in ws.ids[start:start + self.PAGE] if i not in self._rows]
            found = ws._read(lambda: ws.project.image_rows(page), {})
            self._rows.update(found)
            for i in page:
                p = ws.paths[ws.row_of_id[i]]
                self._missing[i] = not p.is_file()
        return self._rows.get(image_id), self._missing.get(image_id, False)

    def review(self, row: int) -> float | None:
        """The row's review need as the project keeps it (its most doubtful object's); None when it
        has no object, or every object is accepted."""
        ws = self.workspace
        session = ws.session_for(ws.ids[row])
        summary, _ = self._summary(row)
        done = session.done if session is not None else summary is not None and summary.accepted
        return None if summary is None or not summary.objects or done else float(summary.review)

    def review_text(self, row: int) -> str:
        """The tooltip's part on the review need: the reasons of the object most in need (read from
        the image's objects, only when the tooltip is asked for)."""
        if self.review(row) is None:
            return ""
        ws = self.workspace
        image_id = ws.ids[row]
        image = ws._read(lambda: ws.project.get_image(image_id, records=True), None)
        if image is None:
            return ""
        obj = most_in_need(image.objects)
        if obj is None or not obj.reasons:
            return ""
        what = obj.category or "an unlabelled object"
        lines = [f"from {what}" + (f" (“{obj.question}”)" if obj.question else "") + ":"]
        lines += [f"  • {reason}" for reason in obj.reasons]
        return "\n" + "\n".join(lines)

    def row_view(self, row: int) -> tuple[str, str, str]:
        """(name, status, tooltip) of a row."""
        ws = self.workspace
        session = ws.session_for(ws.ids[row])
        summary, missing = self._summary(row)
        if session is not None:  # the live state of an image that was shown or worked on
            answer = None if session.answer is None else session.answer.answer
            return session.name, session.status, _tooltip(session.path, session.status, session.question, answer,
                                                          session.error, summary, session.done,
                                                          (len(session.objects),
                                                           sum(o.record.accepted for o in session.objects.values())))
        path = ws.paths[row]
        if summary is None:
            return path.name, "missing" if missing else "new", str(path)
        status = "missing" if missing else summary.state
        return path.name, status, _tooltip(path, status, summary.question, summary.answer, summary.error,
                                           summary, summary.accepted, (summary.objects, summary.accepted_objects))

    def data(self, index: QtCore.QModelIndex, role: int = QtCore.Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or self.workspace is None or index.row() >= len(self.workspace.ids):
            return None
        R = QtCore.Qt.ItemDataRole
        if role == REVIEW_ROLE:
            return self.review(index.row())
        if role not in (R.DisplayRole, R.DecorationRole, R.ToolTipRole, R.UserRole, R.ForegroundRole, R.FontRole):
            return None
        name, status, tip = self.row_view(index.row())
        if role == R.DisplayRole:
            return name
        if role == R.DecorationRole:
            return status_icon(status)
        if role == R.ToolTipRole:
            return tip + self.review_text(index.row())
        if role == R.UserRole:
            return status
        if role == R.ForegroundRole:
            return MISSING_TEXT_COLOUR if status == "missing" else None
        font = QtGui.QFont()
        font.setItalic(status == "missing")
        return font


def _tooltip(path, status: str, question: str | None, answer: str | None, error: str | None, summary,
             accepted: bool, objects: tuple[int, int] = (0, 0)) -> str:
    """A row's tooltip: file, state, objects (accepted of all), latest question and answer, error,
    and the review need the list is sorted by (engine.project.review; from the store's summary)."""
    tip = f"{path}\n{STATUS_TEXT.get(status, status)}"
    if objects[0]:
        tip += f"\n{objects[0]} object{'s' if objects[0] != 1 else ''}, {objects[1]} accepted"
    if question:
        tip += f"\nquestion: {question}"
    if answer is not None:
        tip += f"\nanswer: {answer}"
    if error:
        tip += f"\n{error}"
    if summary is not None and summary.objects and not accepted:
        tip += f"\nreview need: {summary.review:.2f} (0 = looks right, 1 = check first)"
    return tip


class ReviewDelegate(QtWidgets.QStyledItemDelegate):
    """Draws a row's review need at its right edge, muted (the name is elided before it)."""

    def paint(self, painter: QtGui.QPainter, option: QtWidgets.QStyleOptionViewItem,
              index: QtCore.QModelIndex) -> None:
        value = index.data(REVIEW_ROLE)
        if value is None:
            super().paint(painter, option, index)
            return
        text = f"{value:.2f}"
        width = option.fontMetrics.horizontalAdvance(text) + 10
        named = QtWidgets.QStyleOptionViewItem(option)
        named.rect = option.rect.adjusted(0, 0, -width, 0)
        super().paint(painter, named, index)
        painter.save()
        painter.setPen(option.palette.color(QtGui.QPalette.ColorRole.PlaceholderText))
        painter.drawText(option.rect.adjusted(0, 0, -4, 0),
                         int(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter), text)
        painter.restore()


class _RowItem:
    """One row of the view, read like a QListWidgetItem (text, toolTip, data)."""

    def __init__(self, model: ImageListModel, row: int) -> None:
        self._index = model.index(row)

    def text(self) -> str:
        return self._index.data(QtCore.Qt.ItemDataRole.DisplayRole)

    def toolTip(self) -> str:  # noqa: N802 (Qt's name)
        return self._index.data(QtCore.Qt.ItemDataRole.ToolTipRole)

    def data(self, role: int):
        return self._index.data(role)

    def foreground(self) -> QtGui.QBrush:
        return QtGui.QBrush(self._index.data(QtCore.Qt.ItemDataRole.ForegroundRole) or QtGui.QColor())


class ImageListView(QtWidgets.QListView):
    """A list view with the few QListWidget calls the app and its tests use."""

    def count(self) -> int:
        return self.model().rowCount()

    def item(self, row: int) -> _RowItem | None:
        return _RowItem(self.model(), row) if 0 <= row < self.count() else None

    def currentRow(self) -> int:  # noqa: N802 (Qt's name)
        return self.currentIndex().row()

    def setCurrentRow(self, row: int) -> None:  # noqa: N802 (Qt's name)
        self.setCurrentIndex(self.model().index(row))


SORT_ORDERS = (("review", "Review need first"), ("name", "Name"), ("state", "Status"), ("added", "Order added"))


class ImageListPanel(QtWidgets.QWidget):
    current_index_changed = QtCore.Signal(int)
    open_files_requested = QtCore.Signal()
    open_folder_requested = QtCore.Signal()
    sort_requested = QtCore.Signal(str)  # one of engine.project.ORDERS

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ImageListModel(parent=self)
        self.list = ImageListView()
        self.list.setObjectName("imageList")
        self.list.setUniformItemSizes(True)
        # Laid out a batch of rows at a time between events: at once, showing the current row of
        # a 100,000-image list blocked the window 160 ms (Qt lays out every row first).
        self.list.setLayoutMode(QtWidgets.QListView.LayoutMode.Batched)
        self.list.setBatchSize(2000)
        self.list.setModel(self.model)
        self.list.setItemDelegate(ReviewDelegate(self.list))
        self.list.selectionModel().currentRowChanged.connect(lambda cur, _prev: self._on_row(cur.row()))
        self.count_label = QtWidgets.QLabel("No images")
        self.count_label.setObjectName("imageCount")
        open_files = QtWidgets.QPushButton("Open images…")
        open_folder = QtWidgets.QPushButton("Open folder…")
        open_files.clicked.connect(self.open_files_requested)
        open_folder.clicked.connect(self.open_folder_requested)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(open_files)
        buttons.addWidget(open_folder)
        self.sort_box = QtWidgets.QComboBox()
        self.sort_box.setObjectName("imageSort")
        self.sort_box.setToolTip("Order of the list (read from the project's indexes: instant on large projects)")
        for order, text in SORT_ORDERS:
            self.sort_box.addItem(f"Sort: {text}", order)
        self.sort_box.activated.connect(lambda i: self.sort_requested.emit(self.sort_box.itemData(i)))
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(buttons)
        layout.addWidget(self.sort_box)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.count_label)
        self._updating = False
        # Rows change in bursts (another process wrote 3,000 images): the count follows once a burst.
        self._count_soon = QtCore.QTimer(self)
        self._count_soon.setSingleShot(True)
        self._count_soon.setInterval(0)
        self._count_soon.timeout.connect(self.update_count)

    def set_workspace(self, workspace) -> None:
        """The list shows ``workspace``'s images (rows read as they are shown)."""
        self._updating = True
        current = self.list.currentRow()
        if self.model.workspace is not workspace:
            self.model.set_workspace(workspace)
        else:
            self.model.reset()
        if 0 <= current < self.list.count():
            self.list.setCurrentRow(current)
        self._updating = False
        self.update_count()

    def update_rows(self, rows: list[int]) -> None:
        self.model.refresh_rows(rows)
        self._count_soon.start()

    def set_current(self, index: int) -> None:
        self._updating = True
        self.list.setCurrentRow(index)
        self.list.scrollTo(self.model.index(index))
        self._updating = False

    def update_count(self) -> None:
        """"N images, K done[, M missing]" (done: every object accepted, as shown; missing among
        those seen)."""
        self._count_soon.stop()
        ws = self.model.workspace
        n = 0 if ws is None else len(ws.ids)
        if not n:
            self.count_label.setText("No images")
            return
        done = ws.done_count()
        missing = len(ws.missing_sessions())
        text = f"{n} image{'s' if n != 1 else ''}, {done} done"
        self.count_label.setText(text + (f", {missing} missing" if missing else ""))

    def _on_row(self, row: int) -> None:
        if not self._updating and row >= 0:
            self.current_index_changed.emit(row)
