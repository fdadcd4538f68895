"""The mask follows the user's edits: debounced decoder requests, latest wins, stale replies dropped.

Edits act on the selected object; every prompt change bumps that object's ``generation``. A short single-shot timer (40 ms)
collects a burst of changes (a drag sends dozens) into one request for the newest state; the
worker's one-slot mailbox drops any request still waiting when a newer one comes; and a reply
whose generation is not the session's current one is cached (undo may want it) but not shown.
"""

from __future__ import annotations

from PySide6 import QtCore

from gui.engine_thread.engine_client import EngineClient
from gui.engine_thread.input_priority import REPLY_HOLD_S
from gui.engine_thread.requests import ImageRef, Reply, Segment
from gui.workspace.session import ImageSession
from gui.workspace.workspace import Workspace

DEBOUNCE_MS = 40


class LiveSegmenter(QtCore.QObject):
    segmented = QtCore.Signal(object, bool)  # session, shown (False: stale, dropped)

    def __init__(self, client: EngineClient, workspace: Workspace, delay_ms: int = DEBOUNCE_MS) -> None:
        super().__init__()
        self.client = client
        self.workspace = workspace
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.flush)
        self._pending: ImageSession | None = None
        self.sent = 0
        self.dropped = 0
        client.reply.connect(self._on_reply)
        workspace.prompts_changed.connect(self._on_prompts)

    def _on_prompts(self, session: ImageSession) -> None:
        """Any change of a session's points or box (an edit, its undo, a drag step) that the
        decoder has not answered yet goes out, debounced."""
        if session.needs_segmentation():
            self.request(session)

    def request(self, session: ImageSession) -> None:
        """Segment ``session``'s current prompts soon (restarts the debounce timer)."""
        if self._pending is not None and self._pending is not session:
            self.flush()  # another image's edit goes out now, not lost
        self._pending = session
        self._timer.start()

    def flush(self) -> None:
        self._timer.stop()
        session, self._pending = self._pending, None
        obj = None if session is None else session.selected_object
        if session is None or session.image is None or obj is None or not obj.needs_segmentation():
            return
        ref = ImageRef(session.key, session.image.rgb, session.image.image_id)
        grid = None if session.question_map is None else tuple(session.question_map.shape)
        self.client.submit_segment(Segment(image=ref, prompts=obj.prompts, generation=obj.generation, uid=obj.uid,
                                           grid_shape=grid))
        self.sent += 1

    def _on_reply(self, reply: Reply) -> None:
        request = reply.request
        if not isinstance(request, Segment):
            return
        self.client.priority.hold(REPLY_HOLD_S)  # showing it comes before the engine's next step
        index = self.workspace.find(request.image.key)
        if index < 0:
            return
        session = self.workspace.sessions[index]
        shown = session.accept_segmentation(request.prompts, request.generation, reply.payload, uid=request.uid)
        if not shown:
            self.dropped += 1
        self.segmented.emit(session, shown)
