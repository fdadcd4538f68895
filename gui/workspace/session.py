"""One image of the window: a session is the engine's :class:`engine.annotation.ImageAnnotation`
(what one image shows and what a person made of it, written to the project at once) with a
:class:`SessionSignals` as its listener: the Qt signals for the presenter and a Qt undo stack
wrapping the engine's edits. :class:`SessionList` makes them as the list's images are shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6 import QtCore, QtGui

from engine.annotation.state import ImageAnnotation

from gui.workspace.undo import StackHistory

if TYPE_CHECKING:
    from gui.workspace.workspace import Workspace


class SessionSignals(QtCore.QObject):
    """The Qt side of one image of the list, its annotation's listener: ``changed(aspect)`` (see
    ASPECTS) for the selection and the run shown, ``object_changed(uid, what)`` for any one object,
    and the image's Qt undo stack (``session.listener.undo_stack``)."""

    changed = QtCore.Signal(str)
    object_changed = QtCore.Signal(str, str)

    def __init__(self, workspace: "Workspace") -> None:
        super().__init__()  # no parent: it goes with its image's session (the workspace keeps few)
        self.workspace = workspace
        self.session: ImageSession | None = None
        self.undo_stack = QtGui.QUndoStack(self)

    def notify(self, aspect: str) -> None:
        self.changed.emit(aspect)
        if aspect == "prompts":
            self.workspace.prompts_changed.emit(self.session)

    def notify_object(self, uid: str, what: str) -> None:
        self.object_changed.emit(uid, what)


ImageSession = ImageAnnotation  # an image of the window: the engine's annotation with SessionSignals as listener


def new_session(workspace: "Workspace", path: Path, image_id: int) -> ImageSession:
    """``path``'s annotation over the workspace's project, heard by a new :class:`SessionSignals`,
    its edits undone on that listener's undo stack."""
    signals = SessionSignals(workspace)
    session = ImageAnnotation(workspace, path, image_id, listener=signals)
    signals.session = session
    session.history = StackHistory(signals.undo_stack)  # a cancelled ask puts it back as it was
    return session


class SessionList(Sequence):
    """The workspace's images as sessions (or those of some ``rows``), made on first access (a
    list of 100,000 images makes none until they are shown). Iterating makes every session: only
    for small lists and tests."""

    def __init__(self, workspace: "Workspace", rows: list[int] | None = None) -> None:
        self._ws = workspace
        self._rows = rows

    def __len__(self) -> int:
        return len(self._ws.ids) if self._rows is None else len(self._rows)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self._ws.session_at(index if self._rows is None else self._rows[index])

    def index(self, session, start: int = 0, stop: int | None = None) -> int:  # type: ignore[override]
        row = self._ws.row_of_id.get(getattr(session, "image_id", -1), -1)
        if row < 0:
            raise ValueError("not in the workspace")
        return row
