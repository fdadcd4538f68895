"""Undo commands for every edit of an image: prompts, candidate choice, alpha, label, acceptance.

Each image has its own QUndoStack (in the workspace's QUndoGroup), so undo history survives
navigating between images. A command holds the values before and after and calls one setter
of the target; the target (the controller) updates the session and starts whatever must be
recomputed (the decoder for prompts, the fusion for alpha). ``redo`` runs when a command is
pushed, so pushing *is* applying.
"""

from __future__ import annotations

from typing import Protocol

from PySide6 import QtGui

from .prompt_state import PromptState


class EditTarget(Protocol):
    def apply_prompts(self, session, prompts: PromptState, chosen: int) -> None: ...

    def apply_choice(self, session, index: int) -> None: ...

    def apply_alpha(self, session, alpha: float) -> None: ...

    def apply_label(self, session, label: str) -> None: ...

    def apply_accepted(self, session, accepted: bool) -> None: ...


class PromptsCommand(QtGui.QUndoCommand):
    """Points or box changed (add, remove, move, box, clear, reset, automatic points)."""

    def __init__(self, target: EditTarget, session, before: PromptState, after: PromptState, text: str,
                 chosen_before: int = 0) -> None:
        super().__init__(text)
        self.target, self.session = target, session
        self.before, self.after = before, after
        self.chosen_before = chosen_before

    def redo(self) -> None:
        self.target.apply_prompts(self.session, self.after, 0)

    def undo(self) -> None:
        self.target.apply_prompts(self.session, self.before, self.chosen_before)


class ChooseCandidateCommand(QtGui.QUndoCommand):
    def __init__(self, target: EditTarget, session, before: int, after: int) -> None:
        super().__init__(f"Choose mask {after + 1}")
        self.target, self.session, self.before, self.after = target, session, before, after

    def redo(self) -> None:
        self.target.apply_choice(self.session, self.after)

    def undo(self) -> None:
        self.target.apply_choice(self.session, self.before)


class AlphaCommand(QtGui.QUndoCommand):
    """Fusion alpha. The steps of one slider drag (same ``gesture``) merge into one command."""

    ID = 1001

    def __init__(self, target: EditTarget, session, before: float, after: float, gesture: int) -> None:
        super().__init__(f"Fusion alpha {after:.2f}")
        self.target, self.session = target, session
        self.before, self.after, self.gesture = before, after, gesture

    def id(self) -> int:  # noqa: A003 - Qt API
        return self.ID

    def mergeWith(self, other: QtGui.QUndoCommand) -> bool:  # noqa: N802 - Qt API
        if not isinstance(other, AlphaCommand) or other.session is not self.session or other.gesture != self.gesture:
            return False
        self.after = other.after
        self.setText(f"Fusion alpha {self.after:.2f}")
        return True

    def redo(self) -> None:
        self.target.apply_alpha(self.session, self.after)

    def undo(self) -> None:
        self.target.apply_alpha(self.session, self.before)


class LabelCommand(QtGui.QUndoCommand):
    def __init__(self, target: EditTarget, session, before: str, after: str) -> None:
        super().__init__(f"Label '{after}'" if after else "Clear label")
        self.target, self.session, self.before, self.after = target, session, before, after

    def redo(self) -> None:
        self.target.apply_label(self.session, self.after)

    def undo(self) -> None:
        self.target.apply_label(self.session, self.before)


class AcceptCommand(QtGui.QUndoCommand):
    def __init__(self, target: EditTarget, session, accepted: bool) -> None:
        super().__init__("Accept mask" if accepted else "Un-accept mask")
        self.target, self.session, self.accepted = target, session, accepted

    def redo(self) -> None:
        self.target.apply_accepted(self.session, self.accepted)

    def undo(self) -> None:
        self.target.apply_accepted(self.session, not self.accepted)
