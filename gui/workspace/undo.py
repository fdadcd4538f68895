"""The Qt side of undo: each image's QUndoStack (in the workspace's QUndoGroup, so undo history
survives navigating between images) holds the engine's edits (:mod:`engine.annotation.edits`)
wrapped in :class:`QtEdit`. The edits themselves, and their do/undo, are plain Python; the
memory they keep is bounded per image as the engine's History bounds it (:func:`keep_within_budget`)."""

from __future__ import annotations

from PySide6 import QtGui

from engine.annotation.edits import UNDO_BUDGET_BYTES, Edit, steps_over_budget


class QtEdit(QtGui.QUndoCommand):
    """A QUndoCommand around one engine edit; merging follows the edit's own ``merge``."""

    ID = 1001

    def __init__(self, edit: Edit, applied: bool = False) -> None:
        super().__init__(edit.text)
        self.edit = edit
        # Put back on a rebuilt stack (see StackHistory): the stack's next redo (or undo) call is
        # bookkeeping, the edit's state is already there; and it does not merge with its neighbour.
        self.replaying = applied
        self.merges = not applied

    def id(self) -> int:  # noqa: A003 - Qt API
        return self.ID if self.merges else -1

    def mergeWith(self, other: QtGui.QUndoCommand) -> bool:  # noqa: N802 - Qt API
        if not isinstance(other, QtEdit) or not self.edit.merge(other.edit):
            return False
        self.setText(self.edit.text)
        return True

    def redo(self) -> None:
        if self.replaying:
            self.replaying = False
        else:
            self.edit.do()

    def undo(self) -> None:
        if self.replaying:
            self.replaying = False
        else:
            self.edit.undo()


class StackHistory:
    """A QUndoStack seen as the engine's history (``snapshot``/``restore``, as
    :class:`engine.annotation.edits.History`): an image's annotation puts its undo history back
    when an ask is cancelled (:mod:`engine.annotation.last_complete`)."""

    def __init__(self, stack: QtGui.QUndoStack) -> None:
        self.stack = stack

    def snapshot(self) -> tuple[tuple[Edit, ...], int]:
        stack = self.stack
        return tuple(stack.command(i).edit for i in range(stack.count())), stack.index()

    def restore(self, snapshot: tuple[tuple[Edit, ...], int]) -> None:
        """The stack holds ``snapshot``'s edits again, none of them done or undone (Qt cannot drop
        a stack's top steps without undoing them: the stack is rebuilt)."""
        edits, index = snapshot
        stack = self.stack
        stack.clear()
        commands = [QtEdit(edit, applied=True) for edit in edits]
        for command in commands:
            stack.push(command)
        for command in commands[index:]:  # the steps that were undone: undone again, as bookkeeping
            command.replaying = True
        stack.setIndex(index)
        for command in commands:
            command.merges = True


def keep_within_budget(stack: QtGui.QUndoStack, budget: int | None = UNDO_BUDGET_BYTES) -> int:
    """Drop the stack's oldest steps while the arrays its edits keep for undo exceed ``budget``
    bytes (as :class:`engine.annotation.edits.History` does); returns how many were dropped."""
    history = StackHistory(stack)
    edits, index = history.snapshot()
    drop = min(steps_over_budget([edit.nbytes for edit in edits], budget), index)
    if drop:
        history.restore((edits[drop:], index - drop))
    return drop
