"""A word-wrapped label that keeps room for all of its lines in a dialog."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets


class WrappedLabel(QtWidgets.QLabel):
    """A word-wrapped label whose minimum height is what its text takes at its width.

    A dialog's minimum size does not come from its layout's height at the dialog's width: a plain
    wrapped label whose text grows after the dialog is shown keeps one line's height, its text
    drawn over the rows above and below (the export's result over the Folder row). Asking for
    the height it needs makes the dialog grow to show all of it.
    """

    def __init__(self, text: str = "", parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setWordWrap(True)
        self.setAlignment(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop)
        self._need = 0

    def needed_height(self) -> int:
        """The height of all of its lines at its present width (0 without text)."""
        return self.heightForWidth(self.width()) if self.text() else 0

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 - Qt override
        hint = super().minimumSizeHint()
        hint.setHeight(max(hint.height(), self.needed_height()))
        return hint

    def setText(self, text: str) -> None:  # noqa: N802 - Qt API
        super().setText(text)
        self._fit()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        need = self.needed_height()
        if need != self._need:  # the layout asks again (minimumSizeHint) once told
            self._need = need
            self.updateGeometry()
