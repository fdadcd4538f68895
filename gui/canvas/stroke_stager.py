"""A brush or eraser stroke's heavy work off the GUI thread.

On a 12-megapixel image a stroke's release costs tens of milliseconds of array work (the swept
disc, the layers' windows before and after, the new full-size layers and final mask), and up to a
second while the engine shares the CPU. :class:`StrokeStager` does that work
(:meth:`engine.annotation.corrections.PaintStroke.stage`, from the layers as they were at the
release) on a thread of its own, one stroke at a time in the order they were drawn, and hands the
edit back (``staged``): pushing it then only swaps the new arrays in. The stroke stays drawn on the
canvas until then. An edit of the same object in between (an undo, a point edit) makes the
staged layers stale: the edit is then worked out again when it is pushed (``version``).
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from PySide6 import QtCore

from engine.annotation.corrections import PaintStroke
from engine.errors import QMaskError

log = logging.getLogger(__name__)


class StrokeStager(QtCore.QObject):
    staged = QtCore.Signal(object, object)  # (session, PaintStroke): worked out, to be pushed
    failed = QtCore.Signal(object, str)  # (session, why): a stroke that cannot be applied
    _done = QtCore.Signal(object, object, object)  # (session, edit, error or None), from the stroke thread

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qmask-stroke")
        self._queue: deque[tuple[object, PaintStroke]] = deque()
        self._busy = False
        self._closed = False
        self._done.connect(self._on_done)  # queued: emitted on the stroke thread

    @property
    def pending(self) -> bool:
        """A stroke is being worked out, or waits for its turn."""
        return self._busy or bool(self._queue)

    def submit(self, session, edit: PaintStroke) -> None:
        """Work ``edit`` (a stroke of ``session``'s object ``edit.uid``) out off the GUI thread."""
        self._queue.append((session, edit))
        self._next()

    def _next(self) -> None:
        while not self._busy and self._queue and not self._closed:
            session, edit = self._queue.popleft()
            try:  # the layers as they are now (after the strokes before it): references, no copy
                layers = session.object_state(edit.uid).corrections.layers()
                shape = session.mask_shape_of(edit.uid)
            except QMaskError as err:  # its object was deleted meanwhile
                self.failed.emit(session, str(err))
                continue
            self._busy = True
            self._thread.submit(self._stage, session, edit, layers, shape)

    def _stage(self, session, edit: PaintStroke, layers, shape) -> None:  # on the stroke thread
        try:
            edit.stage(layers, shape)
        except BaseException as err:  # noqa: BLE001 - reported on the GUI thread, never lost
            if not isinstance(err, QMaskError):
                log.exception("working out a brush stroke failed")
            self._done.emit(session, edit, err)
            return
        self._done.emit(session, edit, None)

    def _on_done(self, session, edit: PaintStroke, error) -> None:
        self._busy = False
        if self._closed:  # the window closed meanwhile: nothing is pushed any more
            return
        if error is None:
            self.staged.emit(session, edit)
        else:
            self.failed.emit(session, str(error) if isinstance(error, QMaskError) else
                             f"The stroke could not be applied ({type(error).__name__}: {error}).")
        self._next()

    def shutdown(self) -> None:
        """Stop taking strokes and wait for the one being worked out (the window closes)."""
        self._closed = True
        self._queue.clear()
        self._thread.shutdown(wait=True)
