"""The window's side of the engine thread: :class:`EngineClient` sends requests to the
:class:`~gui.engine_thread.worker.EngineWorker` in its QThread and relays its signals; image files are read
on a thread of their own (no model needed), so the shown image never waits for model work.
"""

from __future__ import annotations

import logging
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from PySide6 import QtCore

from engine.errors import QMaskError, describe_error

from gui.engine_thread import gui_thread_gc
from gui.engine_thread.requests import Failed, Finished, OpenImage, Reply, Request, Segment
from gui.engine_thread.worker import EngineWorker, PipelineFactory, default_pipeline_factory

log = logging.getLogger(__name__)


class EngineClient(QtCore.QObject):
    """The GUI thread's handle on the engine thread."""

    progress = QtCore.Signal(object)
    reply = QtCore.Signal(object)
    finished = QtCore.Signal(object)
    failed = QtCore.Signal(object)
    cancelled = QtCore.Signal(object)
    busy_changed = QtCore.Signal(bool)  # any request running or queued, background work too
    user_busy_changed = QtCore.Signal(bool)  # a request the user asked for (not background work)
    _send = QtCore.Signal()
    _wake = QtCore.Signal()

    def __init__(self, pipeline_factory: PipelineFactory = default_pipeline_factory,
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._next_id = 0
        self._open: dict[int, bool] = {}  # long requests sent and not yet ended -> background
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qmask-read")  # image files
        self.thread = QtCore.QThread()
        self.thread.setObjectName("qmask-engine")
        self.worker = EngineWorker(pipeline_factory)
        self.worker.moveToThread(self.thread)
        self.thread.finished.connect(self.worker.deleteLater)
        self._send.connect(self.worker.run_next)  # queued: different threads
        self._wake.connect(self.worker.service_mailbox)
        self.worker.progress.connect(self.progress)
        self.worker.reply.connect(self.reply)
        self.worker.finished.connect(self._on_end)
        self.worker.failed.connect(self._on_end)
        self.worker.cancelled.connect(self._on_end)
        self.worker.finished.connect(self.finished)
        self.worker.failed.connect(self.failed)
        self.worker.cancelled.connect(self.cancelled)
        # Python code runs in the engine thread from now on: cycles holding Qt objects must not be
        # collected there (see gui.engine_thread.gui_thread_gc). Released when the thread has stopped.
        gui_thread_gc.hold()
        self._gc_held = True
        # The engine waits between its steps while this (the GUI) thread handles events.
        self.priority = self.worker.input
        self._dispatcher = QtCore.QAbstractEventDispatcher.instance(QtCore.QThread.currentThread())
        if self._dispatcher is not None:
            self._dispatcher.awake.connect(self.priority.gui_awake)
            self._dispatcher.aboutToBlock.connect(self.priority.gui_idle)
        self.thread.start()

    @property
    def busy(self) -> bool:
        return bool(self._open)

    @property
    def user_busy(self) -> bool:
        """A request the user asked for is running or queued (background work is not counted:
        it never keeps the user from asking)."""
        return not all(self._open.values())

    def _stamp(self, request: Request) -> Request:
        self._next_id += 1
        return replace(request, request_id=self._next_id)

    def submit(self, request: Request) -> Request:
        """Queue a request; returns it with its ``request_id``. Replies come as signals.

        Reading an image needs no model: it runs on its own thread, so the image the user
        switched to shows at once, whatever the engine thread is doing."""
        if isinstance(request, Segment):
            return self.submit_segment(request)
        request = self._stamp(request)
        was_busy, was_user_busy = self.busy, self.user_busy
        self._open[request.request_id] = request.background
        if not was_busy:
            self.busy_changed.emit(True)
        if not was_user_busy and self.user_busy:
            self.user_busy_changed.emit(True)
        if isinstance(request, OpenImage):
            self._reader.submit(self._read_image, request)
            return request
        self.worker.enqueue(request)
        self._send.emit()
        return request

    def _read_image(self, request: OpenImage) -> None:
        """On the reader thread; the worker's signals carry the outcome to the GUI thread."""
        from engine.imaging.images import load_image

        start = time.perf_counter()
        try:
            image = load_image(request.path)
        except BaseException as err:  # noqa: BLE001 - the reader must survive anything
            kind, message, role = describe_error(err)
            self.worker.failed.emit(Failed(request, kind, message, role,
                                           "" if isinstance(err, QMaskError) else traceback.format_exc()))
            return
        self.worker.reply.emit(Reply(request, image))
        self.worker.finished.emit(Finished(request, time.perf_counter() - start))

    def show(self, key: str | None) -> None:
        """The window shows the image ``key`` now: questions about other images give way."""
        self.worker.note_shown(key)

    def submit_segment(self, request: Segment) -> Segment:
        request = self._stamp(request)
        self.worker.post_segment(request)
        self._wake.emit()
        return request

    def note_input(self) -> None:
        """The user clicked, dragged or zoomed on the canvas just now (gui.engine_thread.input_priority)."""
        self.priority.touch()

    def cancel(self) -> None:
        """Cancel everything sent so far (running and queued long jobs; a file being read finishes)."""
        self.worker.cancel_up_to(self._next_id)

    def _on_end(self, message) -> None:
        if message.request.request_id in self._open:
            was_user_busy = self.user_busy
            del self._open[message.request.request_id]
            if was_user_busy and not self.user_busy:
                self.user_busy_changed.emit(False)
            if not self._open:
                self.busy_changed.emit(False)

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Cancel, release the pipeline in its thread, stop the thread. True when it stopped."""
        self._reader.shutdown(wait=True, cancel_futures=True)
        if self._dispatcher is not None:  # this thread now waits for the engine: no giving way
            self._dispatcher.awake.disconnect(self.priority.gui_awake)
            self._dispatcher.aboutToBlock.disconnect(self.priority.gui_idle)
            self._dispatcher = None
        self.priority.enabled = False
        self.priority.wake()
        if self.thread.isRunning():
            self.cancel()
            QtCore.QMetaObject.invokeMethod(self.worker, "close", QtCore.Qt.ConnectionType.QueuedConnection)
            if not self.thread.wait(timeout_ms):  # pragma: no cover - a model call that ignores cancel for 30 s
                log.warning("the engine thread did not stop in %d ms", timeout_ms)
                return False  # still running Python: keep collecting on the GUI thread only
        if self._gc_held:
            self._gc_held = False
            gui_thread_gc.release()
        return True
