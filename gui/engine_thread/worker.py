"""The engine thread: one long-lived QThread owns the Pipeline, its models and caches.

:class:`EngineWorker` is a QObject moved to that thread; the Pipeline is created inside it
(on :class:`~gui.engine_thread.requests.LoadModels`) and only ever used there. The
:class:`~gui.engine_thread.engine_client.EngineClient` lives on the GUI thread: it stamps request ids, queues
requests to the worker through a queued signal, and re-emits the worker's replies as signals on
the GUI thread (image files are read on a thread of their own).

What keeps the window responsive while the engine works:

- **Cancel**: ``EngineClient.cancel`` marks every request issued so far as cancelled. The
  pipeline's ``cancel`` callback checks that mark between steps, and queued requests of that
  age are skipped. Thread-safe because it only writes one integer under a lock.
- **The user's requests first**: requests wait in the worker's own queue (:meth:`EngineWorker.enqueue`,
  filled at once from the GUI thread), and the next one run is the oldest the user asked for;
  background work (:attr:`~gui.engine_thread.requests.Request.background`) runs only when none waits.
- **Background encoding**: :class:`~gui.engine_thread.requests.EncodeImage` (sent when an image is shown) and
  :class:`~gui.engine_thread.requests.EncodeNext` give way between encoder blocks as soon as a request of the
  user waits, or one about another image is sent: their cancel check also asks
  :meth:`EngineWorker.superseded`, which sees every request the client has sent, queued or not.
  What they finished stays cached, and the prefetcher sends them again when the engine is idle.
- **The shown image first**: a question about an image the window no longer shows stops between
  blocks (:meth:`EngineWorker.left_behind`); what it had finished was already sent and is kept.
- **Live segmentation**: decoder requests do not queue behind a long job. They go into a
  one-slot mailbox (the newest replaces an older one: stale edits are never decoded) that the
  worker empties when idle *and* between the steps of a long job of the same image (from the
  progress callback), so the mask follows the user's edits while captions are being written;
  when the image is already encoded, also between the blocks of an encoder or of the answer
  model (from the cancel check), so a click waits ~0.1 s, not for the whole model call.
- **The GUI thread first**: between those steps a long job also waits while the GUI thread
  handles events (a click, its mask, a paint: :class:`~gui.engine_thread.input_priority.InputPriority`), so
  the GUI has the GIL and the cores to itself for that moment.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque
from typing import Any, Callable

from PySide6 import QtCore

from engine.annotation.candidates import prepare_candidates
from engine.annotation.pipeline_protocol import PipelineProtocol
from engine.errors import CancelledError, ModelMissingError, QMaskError, describe_error

from gui.engine_thread.requests import (Answer, Ask, Cancelled, EncodeImage, EncodeNext, Failed, Finished, LoadModels, OpenImage,
                       Progress, Reply, Request, Segment)
from gui.engine_thread.input_priority import InputPriority
from gui.engine_thread.worker_jobs import EngineJobs

log = logging.getLogger(__name__)

PipelineFactory = Callable[[Any, "str | None"], PipelineProtocol]


def default_pipeline_factory(settings, models_dir) -> PipelineProtocol:
    from engine.annotation.pipeline import Pipeline

    return Pipeline.from_settings(settings, models_dir=models_dir)


class EngineWorker(QtCore.QObject):
    """Lives in the engine thread. Slots run there; signals are delivered queued to the GUI.
    What each request does is in :mod:`gui.engine_thread.worker_jobs`."""

    progress = QtCore.Signal(object)  # Progress
    reply = QtCore.Signal(object)  # Reply
    finished = QtCore.Signal(object)  # Finished
    failed = QtCore.Signal(object)  # Failed
    cancelled = QtCore.Signal(object)  # Cancelled

    def __init__(self, pipeline_factory: PipelineFactory = default_pipeline_factory) -> None:
        super().__init__()
        self.factory = pipeline_factory
        self.pipeline: PipelineProtocol | None = None
        self.image_id: str | None = None  # the image the pipeline holds now
        self._lock = threading.Lock()
        self._cancel_below = 0  # requests with id <= this are cancelled
        self._mailbox: Segment | None = None
        self._queue: list[Request] = []  # sent, not started: the user's run first (run_next)
        self._current: Request | None = None
        self._shown_key: str | None = None  # the image the window shows: questions about others give way
        # (request_id, image_id or None) of the latest requests sent, for superseded()
        self._sent: deque[tuple[int, str | None]] = deque(maxlen=64)
        self.input = InputPriority()  # the GUI thread's work comes before a long job's next step
        self.gave_way_s = 0.0  # seconds this thread waited for the GUI thread (the click bench)
        self.jobs = EngineJobs(self)  # what each request does

    # ------------------------------------------------------------------ called from the GUI thread
    def cancel_up_to(self, request_id: int) -> None:
        with self._lock:
            self._cancel_below = max(self._cancel_below, request_id)

    def note_shown(self, key: str | None) -> None:
        """The window now shows the image ``key``: a question still running or waiting about
        another image stops between blocks (its results so far were sent and are kept)."""
        with self._lock:
            self._shown_key = key

    def note_sent(self, request: Request) -> None:
        """The client sent ``request`` (it may wait in the queue for a while)."""
        with self._lock:
            self._sent.append((request.request_id, _image_id(request)))

    def enqueue(self, request: Request) -> None:
        """Queue ``request`` (any thread); :meth:`run_next` runs it, once per request queued.
        A background job running now gives way at its next check if ``request`` is the user's."""
        with self._lock:
            self._queue.append(request)
        self.note_sent(request)
        if not request.background:
            self.input.wake()  # a job giving way to the GUI (InputPriority.give_way) looks again now

    def post_segment(self, request: Segment) -> None:
        with self._lock:
            self._mailbox = request  # latest wins: an older, undecoded edit is dropped here
        self.input.wake()  # a job waiting for the GUI (InputPriority.give_way) decodes it now

    # ------------------------------------------------------------------ worker thread
    def _is_cancelled(self, request: Request) -> bool:
        with self._lock:
            return request.cancellable and request.request_id <= self._cancel_below

    def superseded(self, request: Request) -> bool:
        """A background request that must give way: a request the user asked for waits in the
        queue, a later request about another image (or no image: opening a file, loading models)
        made it moot, or it holds the pipeline while a click on another image waits (the click's
        image could not be decoded until it ended)."""
        if not request.background:
            return False
        mine = _image_id(request)
        with self._lock:
            if any(not queued.background for queued in self._queue):
                return True
            waiting = self._mailbox is not None and self._mailbox.image.image_id != mine
            return waiting or any(rid > request.request_id and other != mine for rid, other in self._sent)

    def left_behind(self, request: Request) -> bool:
        """A question (Ask, Answer) about an image the window no longer shows."""
        if not isinstance(request, (Ask, Answer)):
            return False
        with self._lock:
            return self._shown_key is not None and request.image.key != self._shown_key

    def _gave_way(self, request: Request) -> bool:
        """Stopped for newer work, not by the user's Cancel: nothing to tell."""
        return self.superseded(request) or self.left_behind(request)

    def _should_stop(self, request: Request) -> bool:
        return self._is_cancelled(request) or self.superseded(request) or self.left_behind(request)

    def handle(self, request: Request) -> None:
        """Queue ``request`` and run the next one (synchronously, in the calling thread)."""
        self.enqueue(request)
        self.run_next()

    @QtCore.Slot()
    def run_next(self) -> None:
        """Run the oldest queued request the user asked for, else the oldest background one."""
        with self._lock:
            if not self._queue:
                return
            index = next((i for i, r in enumerate(self._queue) if not r.background), 0)
            request = self._queue.pop(index)
        self._run(request)

    def _run(self, request: Request) -> None:
        if isinstance(request, Segment):
            self.service_mailbox()
            return
        self.service_mailbox()
        if self._should_stop(request):
            self.cancelled.emit(Cancelled(request, superseded=self._gave_way(request)))
            return
        self._current = request
        start = time.perf_counter()
        try:
            if isinstance(request, LoadModels):
                self.jobs.load_models(request)
            elif isinstance(request, OpenImage):
                self.jobs.open_image(request)
            elif isinstance(request, (EncodeImage, EncodeNext)):
                self.jobs.encode(request)
            elif isinstance(request, Ask):
                self.jobs.ask(request)
            elif isinstance(request, Answer):
                self.jobs.answer(request)
            else:
                raise TypeError(f"unknown request {type(request).__name__}")
        except CancelledError:
            self.cancelled.emit(Cancelled(request, superseded=self._gave_way(request)))
        except BaseException as err:  # noqa: BLE001 - the thread must survive anything
            kind, message, role = describe_error(err)
            details = "" if isinstance(err, QMaskError) else traceback.format_exc()
            if details:
                log.error("engine request %s failed:\n%s", type(request).__name__, details)
            self.failed.emit(Failed(request, kind, message, role, details))
        else:
            self.finished.emit(Finished(request, time.perf_counter() - start))
        finally:
            self._current = None
        self.service_mailbox()

    @QtCore.Slot()
    def service_mailbox(self) -> None:
        """Decode the newest pending edit, if any (idle, or between steps of a long job)."""
        with self._lock:
            request, self._mailbox = self._mailbox, None
        if request is None:
            return
        if self.pipeline is None:  # models still loading (or failed): keep the edit for later
            with self._lock:
                if self._mailbox is None:
                    self._mailbox = request
            return
        current = self._current
        if current is not None and getattr(current, "image", None) is not None \
                and current.image.image_id != request.image.image_id:
            # A long job holds another image: decoding now would switch the pipeline's image
            # under it. Put the edit back; it runs when that job ends.
            with self._lock:
                if self._mailbox is None:
                    self._mailbox = request
            return
        try:
            self.use_image(request.image)
            result = prepare_candidates(self.pipeline.segment(request.prompts.points, box=request.prompts.box),
                                        request.grid_shape)
        except BaseException as err:  # noqa: BLE001
            kind, message, role = describe_error(err)
            self.failed.emit(Failed(request, kind, message, role,
                                    "" if isinstance(err, QMaskError) else traceback.format_exc()))
            return
        self.reply.emit(Reply(request, result))
        self.finished.emit(Finished(request, getattr(result, "seconds", 0.0)))

    @QtCore.Slot()
    def close(self) -> None:
        """Release the pipeline's models (in their own thread) and stop the thread's event loop."""
        self.release()
        QtCore.QThread.currentThread().quit()

    def release(self) -> None:
        """Release the pipeline's models and cached embeddings."""
        if self.pipeline is not None:
            try:
                self.pipeline.close()
            except Exception:  # noqa: BLE001 - shutting down: never keep the thread alive for this
                log.exception("closing the pipeline failed")
        self.pipeline = None
        self.image_id = None

    # ------------------------------------------------------------------ jobs
    def callbacks(self, request: Request):
        def progress(stage: str, fraction: float) -> None:
            self.progress.emit(Progress(request.request_id, stage, float(fraction)))
            self.service_mailbox()

        def stop() -> bool:  # asked between steps, and before each block of a long model call
            self._serve_cheap_edit()
            # While the GUI handles input, wait here (GIL and cores free), decoding edits as they
            # come; an edit that this job must finish first (its encoder) ends the wait.
            self.gave_way_s += self.input.give_way(self._serve_cheap_edit, self._edit_waiting)
            return self._should_stop(request)

        return progress, stop

    def _serve_cheap_edit(self) -> None:
        """Decode a pending edit now if that needs only EfficientSAM's decoder (its image is the
        pipeline's and already encoded): between the blocks of an encoder or of the answer model,
        a click is served in ~0.1 s instead of after the whole call. Encoding is left to the
        stage boundaries (``progress``), never nested inside another encoder."""
        with self._lock:
            pending = self._mailbox
        pipe = self.pipeline
        if pending is None or pipe is None or pipe.image_id != pending.image.image_id:
            return
        if pipe.is_encoded("efficient_sam"):
            self.service_mailbox()

    def _edit_waiting(self) -> bool:
        with self._lock:
            return self._mailbox is not None

    def need_pipeline(self) -> PipelineProtocol:
        if self.pipeline is None:
            raise ModelMissingError("The models are not loaded: Engine > Load models loads them (Engine > Models… "
                                    "shows which are installed and where).")
        return self.pipeline

    def use_image(self, image) -> None:
        pipe = self.need_pipeline()
        if self.image_id != image.image_id:
            pipe.set_image(image.rgb, image_id=image.image_id)
            self.image_id = image.image_id


def _image_id(request: Request) -> str | None:
    """The image a request is about; None for those about no image (opening a file, models)."""
    image = getattr(request, "image", None)
    return None if image is None else image.image_id
