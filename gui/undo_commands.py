"""The Qt side of undo: each image's QUndoStack (in the workspace's QUndoGroup, so undo history
survives navigating between images) holds the engine's edits (:mod:`engine.annotation.edits`)
wrapped in :class:`QtEdit`. The edits themselves, and their do/undo, are plain Python."""

from __future__ import annotations

from PySide6 import QtGui

from engine.annotation.edits import Edit


class QtEdit(QtGui.QUndoCommand):
    """A QUndoCommand around one engine edit; merging follows the edit's own ``merge``."""

    ID = 1001

    def __init__(self, edit: Edit) -> None:
        super().__init__(edit.text)
        self.edit = edit

    def id(self) -> int:  # noqa: A003 - Qt API
        return self.ID

    def mergeWith(self, other: QtGui.QUndoCommand) -> bool:  # noqa: N802 - Qt API
        if not isinstance(other, QtEdit) or not self.edit.merge(other.edit):
            return False
        self.setText(self.edit.text)
        return True

    def redo(self) -> None:
        self.edit.do()

    def undo(self) -> None:
        self.edit.undo()
