"""The image list (left dock): open files or a folder, see each image's state, pick one.

An image whose file is missing (moved or deleted) stays in the list, greyed, with a tooltip
saying so; selecting it shows the "Locate folder…" banner (``gui.relocate``).
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

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
    "edited": "mask edited by you",
    "accepted": "mask accepted",
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


class ImageListPanel(QtWidgets.QWidget):
    current_index_changed = QtCore.Signal(int)
    open_files_requested = QtCore.Signal()
    open_folder_requested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QtWidgets.QListWidget()
        self.list.setObjectName("imageList")
        self.list.setUniformItemSizes(True)
        self.list.currentRowChanged.connect(self._on_row)
        self.count_label = QtWidgets.QLabel("No images")
        self.count_label.setObjectName("imageCount")
        open_files = QtWidgets.QPushButton("Open images…")
        open_folder = QtWidgets.QPushButton("Open folder…")
        open_files.clicked.connect(self.open_files_requested)
        open_folder.clicked.connect(self.open_folder_requested)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(open_files)
        buttons.addWidget(open_folder)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(buttons)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.count_label)
        self._updating = False

    def set_sessions(self, sessions) -> None:
        self._updating = True
        current = self.list.currentRow()
        self.list.clear()
        for s in sessions:
            item = QtWidgets.QListWidgetItem(s.name)
            self.list.addItem(item)
            self._style(item, s)
        if 0 <= current < self.list.count():
            self.list.setCurrentRow(current)
        self._updating = False
        self._update_count(sessions)

    def update_session(self, index: int, session, sessions=None) -> None:
        item = self.list.item(index)
        if item is not None:
            self._style(item, session)
        if sessions is not None:
            self._update_count(sessions)

    def set_current(self, index: int) -> None:
        self._updating = True
        self.list.setCurrentRow(index)
        item = self.list.item(index)
        if item is not None:
            self.list.scrollToItem(item)
        self._updating = False

    def _style(self, item: QtWidgets.QListWidgetItem, session) -> None:
        status = session.status
        item.setIcon(status_icon(status))
        tip = f"{session.path}\n{STATUS_TEXT.get(status, status)}"
        if session.question:
            tip += f"\nquestion: {session.question}"
        if session.answer is not None:
            tip += f"\nanswer: {session.answer.answer}"
        if session.error:
            tip += f"\n{session.error}"
        item.setToolTip(tip)
        item.setData(QtCore.Qt.ItemDataRole.UserRole, status)
        # Greyed, but still selectable: selecting it is how the user learns what to do.
        item.setForeground(MISSING_TEXT_COLOUR if status == "missing" else self.list.palette().text())
        font = item.font()
        font.setItalic(status == "missing")
        item.setFont(font)

    def _update_count(self, sessions) -> None:
        n = len(sessions)
        done = sum(s.accepted for s in sessions)
        missing = sum(bool(getattr(s, "missing", False)) for s in sessions)
        text = f"{n} image{'s' if n != 1 else ''}, {done} accepted" if n else "No images"
        self.count_label.setText(text + (f", {missing} missing" if missing else ""))

    def _on_row(self, row: int) -> None:
        if not self._updating and row >= 0:
            self.current_index_changed.emit(row)
