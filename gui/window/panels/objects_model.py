"""The rows of the objects panel (``gui.window.panels.objects_panel``): :class:`ObjectRow` values, their
icons, and :class:`ObjectsModel`, which changes only the rows that differ.

Why a model: an image may hold a thousand objects (issue 23); one widget a row would cost seconds
to build and to restyle. :meth:`ObjectsModel.sync_rows` turns the rows into new ones by moving,
inserting, removing and changing rows (one ``dataChanged`` each), never by a reset, so the view
keeps its selection, current row and scroll position while the controller edits objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from PySide6 import QtCore, QtGui

COL_CLASS, COL_SOURCE, COL_PROPOSAL, COL_ACCEPT, COL_EYE, COL_REVIEW = range(6)
HEADERS = ("Object", "Source", "", "", "", "Review")
HEADER_TIPS = ("Number and class (double-click: set the class)", "Where the object came from",
               "Proposal: a question's result nobody kept yet", "Accepted for export (click to toggle)",
               "Shown on the image (click to hide or show)", "Review need: 0 = looks right, 1 = check first")
ICON_COLUMNS_WIDTH = 26
ROW_HEIGHT = 22
UID_ROLE = QtCore.Qt.ItemDataRole.UserRole
ACCEPT_COLOUR = QtGui.QColor(46, 204, 113)  # the image list's "accepted"
PROPOSAL_COLOUR = QtGui.QColor(240, 180, 40)  # its "asked"
MUTED = QtGui.QColor(120, 124, 130)


@dataclass(frozen=True)
class ObjectRow:
    """What the list shows of one object (a value: the panel compares rows to find changes)."""

    uid: str
    number: int  # shown as "#n"
    category: str | None  # None: unlabelled
    colour: tuple[int, int, int]
    source: str  # 'question', 'manual', 'import' or 'batch'
    question: str | None  # the question whose run proposed it
    accepted: bool
    proposal: bool
    hidden: bool
    review: float  # review need in [0, 1]
    reasons: tuple[str, ...] = ()


# -- icons (drawn once per kind, cached) ---------------------------------------------------------

def _pixmap(size: int = 16) -> tuple[QtGui.QPixmap, QtGui.QPainter]:
    pix = QtGui.QPixmap(size, size)
    pix.fill(QtCore.Qt.GlobalColor.transparent)
    p = QtGui.QPainter(pix)
    p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    return pix, p


@lru_cache(maxsize=512)
def swatch_icon(rgb: tuple[int, int, int]) -> QtGui.QIcon:
    pix, p = _pixmap()
    p.setPen(QtGui.QPen(QtGui.QColor(60, 64, 70), 1))
    p.setBrush(QtGui.QColor(*rgb))
    p.drawRoundedRect(QtCore.QRectF(2.5, 2.5, 11, 11), 2, 2)
    p.end()
    return QtGui.QIcon(pix)


@lru_cache(maxsize=4)
def eye_icon(shown: bool) -> QtGui.QIcon:
    pix, p = _pixmap()
    colour = QtGui.QColor(48, 52, 58) if shown else QtGui.QColor(170, 174, 180)
    p.setPen(QtGui.QPen(colour, 1.4))
    path = QtGui.QPainterPath(QtCore.QPointF(1.5, 8))
    path.quadTo(8, 1, 14.5, 8)
    path.quadTo(8, 15, 1.5, 8)
    p.drawPath(path)
    p.setBrush(colour)
    p.drawEllipse(QtCore.QPointF(8, 8), 2.2, 2.2)
    if not shown:
        p.drawLine(QtCore.QPointF(2.5, 14), QtCore.QPointF(13.5, 2))
    p.end()
    return QtGui.QIcon(pix)


@lru_cache(maxsize=4)
def check_icon(accepted: bool) -> QtGui.QIcon:
    pix, p = _pixmap()
    p.setPen(QtGui.QPen(ACCEPT_COLOUR if accepted else QtGui.QColor(150, 154, 160), 1.2))
    p.setBrush(ACCEPT_COLOUR if accepted else QtCore.Qt.BrushStyle.NoBrush)
    p.drawRoundedRect(QtCore.QRectF(2.5, 2.5, 11, 11), 2, 2)
    if accepted:
        p.setPen(QtGui.QPen(QtGui.QColor("white"), 2))
        p.drawPolyline([QtCore.QPointF(4.8, 8.2), QtCore.QPointF(7, 10.5), QtCore.QPointF(11.3, 5.5)])
    p.end()
    return QtGui.QIcon(pix)


@lru_cache(maxsize=1)
def proposal_icon() -> QtGui.QIcon:
    pix, p = _pixmap()
    p.setPen(QtCore.Qt.PenStyle.NoPen)
    p.setBrush(PROPOSAL_COLOUR)
    p.drawPolygon([QtCore.QPointF(8, 3), QtCore.QPointF(13, 8), QtCore.QPointF(8, 13), QtCore.QPointF(3, 8)])
    p.end()
    return QtGui.QIcon(pix)


def review_colour(review: float) -> QtGui.QColor:
    """Muted grey for a low need, orange-red for a high one."""
    t = min(1.0, max(0.0, float(review)))
    return QtGui.QColor(round(120 + t * (220 - 120)), round(124 + t * (90 - 124)), round(130 + t * (40 - 130)))


# -- the model ---------------------------------------------------------------------------------

class ObjectsModel(QtCore.QAbstractTableModel):
    """Rows in display order: ``rows[0]`` is the top of the drawing order."""

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.rows: list[ObjectRow] = []
        self._row_of: dict[str, int] = {}

    def rowCount(self, parent=QtCore.QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QtCore.QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(HEADERS)

    def row_of(self, uid: str) -> int | None:
        return self._row_of.get(uid)

    def headerData(self, section, orientation, role=QtCore.Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation != QtCore.Qt.Orientation.Horizontal:
            return None
        if role == QtCore.Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        if role == QtCore.Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS[section]
        return None

    def data(self, index: QtCore.QModelIndex, role: int = QtCore.Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        row, col, R = self.rows[index.row()], index.column(), QtCore.Qt.ItemDataRole
        if role == UID_ROLE:
            return row.uid
        if col == COL_CLASS:
            if role == R.DisplayRole:
                return f"#{row.number} {row.category if row.category is not None else 'unlabelled'}"
            if role == R.DecorationRole:
                return swatch_icon(tuple(row.colour))
            if role == R.ForegroundRole and row.category is None:
                return MUTED
            if role == R.FontRole and (row.category is None or row.hidden):
                font = QtGui.QFont()
                font.setItalic(True)
                return font
            if role == R.ToolTipRole:
                return (f"Object #{row.number}: {row.category or 'no class yet'}"
                        + ("\nhidden on the image" if row.hidden else "") + "\nDouble-click to set its class")
        elif col == COL_SOURCE:
            if role == R.DisplayRole:
                return row.source
            if role == R.ForegroundRole:
                return MUTED
            if role == R.ToolTipRole:
                if row.question:
                    return f"From the question “{row.question}”"
                return _SOURCE_TIPS.get(row.source, row.source)
        elif col == COL_PROPOSAL:
            if role == R.DecorationRole and row.proposal:
                return proposal_icon()
            if role == R.ToolTipRole and row.proposal:
                return "Proposal: a question's result nobody kept, edited or accepted yet (asking again replaces it)"
        elif col == COL_ACCEPT:
            if role == R.DecorationRole:
                return check_icon(row.accepted)
            if role == R.ToolTipRole:
                return "Accepted for export (click to take back)" if row.accepted else "Not accepted (click to accept)"
        elif col == COL_EYE:
            if role == R.DecorationRole:
                return eye_icon(not row.hidden)
            if role == R.ToolTipRole:
                return "Hidden (click to show)" if row.hidden else "Shown (click to hide)"
        elif col == COL_REVIEW:
            if role == R.DisplayRole:
                return f"{row.review:.2f}"
            if role == R.ForegroundRole:
                return review_colour(row.review)
            if role == R.TextAlignmentRole:
                return int(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
            if role == R.ToolTipRole:
                lines = [f"Review need {row.review:.2f} (0 = looks right, 1 = check first)"]
                return "\n".join(lines + [f"• {r}" for r in row.reasons])
        return None

    # -- changes -------------------------------------------------------------------------
    def reset_rows(self, rows: Sequence[ObjectRow]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self._reindex()
        self.endResetModel()

    def change_row(self, row: ObjectRow) -> bool:
        """Replace the row with ``row.uid`` (False when there is none)."""
        r = self._row_of.get(row.uid)
        if r is None:
            return False
        if self.rows[r] != row:
            self.rows[r] = row
            self.dataChanged.emit(self.index(r, 0), self.index(r, len(HEADERS) - 1))
        return True

    def sync_rows(self, target: Sequence[ObjectRow]) -> None:
        """Make the rows ``target`` (display order) by removing, moving, inserting and changing
        rows: persistent indexes (selection, current row) follow their objects."""
        keep = {r.uid for r in target}
        if len(keep) != len(target):
            raise ValueError("two rows with the same uid")
        root = QtCore.QModelIndex()
        i = len(self.rows) - 1
        while i >= 0:  # removals, a run of rows at a time, from the bottom
            if self.rows[i].uid in keep:
                i -= 1
                continue
            j = i
            while j > 0 and self.rows[j - 1].uid not in keep:
                j -= 1
            self.beginRemoveRows(root, j, i)
            del self.rows[j:i + 1]
            self.endRemoveRows()
            i = j - 1
        uids = [r.uid for r in self.rows]
        changed: list[int] = []
        pos = 0
        while pos < len(target):
            row = target[pos]
            if pos < len(uids) and uids[pos] == row.uid:
                pass
            elif row.uid in self._row_of and row.uid in uids[pos:]:
                j = uids.index(row.uid, pos)
                self.beginMoveRows(root, j, j, root, pos)
                self.rows.insert(pos, self.rows.pop(j))
                uids.insert(pos, uids.pop(j))
                self.endMoveRows()
            else:  # new: insert it and the new rows after it at once
                end = pos + 1
                while end < len(target) and target[end].uid not in self._row_of:
                    end += 1
                self.beginInsertRows(root, pos, end - 1)
                self.rows[pos:pos] = target[pos:end]
                uids[pos:pos] = [r.uid for r in target[pos:end]]
                self.endInsertRows()
                pos = end
                continue
            if self.rows[pos] != row:
                self.rows[pos] = row
                changed.append(pos)
            pos += 1
        self._reindex()
        for r in changed:
            self.dataChanged.emit(self.index(r, 0), self.index(r, len(HEADERS) - 1))

    def _reindex(self) -> None:
        self._row_of = {r.uid: i for i, r in enumerate(self.rows)}


_SOURCE_TIPS = {"manual": "Drawn or clicked by you", "import": "Imported with its mask",
                "batch": "Made by a batch run", "question": "Proposed by a question"}
