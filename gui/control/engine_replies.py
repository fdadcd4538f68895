"""The engine's replies, each put into the session of the image it is about.

The controller's (:class:`~gui.control.controller.Controller`) part that the engine client's
signals (reply, progress, failed, cancelled, finished) reach (:mod:`gui.control.wiring`). A reply is matched to its image by key and image
id, so one for an image the user has left still lands in that image's state, and one for an
image read again (or a question since replaced) is dropped. An Ask that is cancelled or fails
puts its image back to its last complete state (:mod:`engine.annotation.last_complete`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from engine.imaging.images import LoadedImage
from engine.results import AnswerResult, CaptionsResult, HeatmapResult

from gui.engine_thread.requests import Answer, Ask, Cancelled, Failed, Finished, LoadModels, Notice, OpenImage, Progress, Reply, Segment
from gui.workspace.session import ImageSession

if TYPE_CHECKING:
    from gui.control.controller import Controller

log = logging.getLogger(__name__)


class EngineReplies:
    """Puts the engine's replies into the sessions of ``controller`` (its workspace, models, prefetch,
    messages and signals)."""

    def __init__(self, controller: "Controller") -> None:
        self.c = controller

    def _session_for(self, key: str) -> ImageSession | None:
        index = self.c.workspace.find(Path(key))
        return self.c.workspace.sessions[index] if index >= 0 else None

    def on_reply(self, reply: Reply) -> None:
        request, payload = reply.request, reply.payload
        if isinstance(request, Segment):
            return  # the live segmenter handles those
        if isinstance(request, LoadModels) and isinstance(payload, Notice):
            self.c.show_message(payload.text, payload.level)
            return
        if isinstance(request, LoadModels):
            self.c.models, self.c.models_loading = payload, False
            self.c.window.status.set_models(payload)
            self.c.prefetch.models_ready = True
            self.c.prefetch.image_shown(self.c.workspace.current)
            self.c.models_ready.emit(payload)
            return
        if isinstance(request, OpenImage):
            self._on_image(request, payload)
            return
        session = self._session_for(request.image.key)
        if session is None or session.image is None or session.image.image_id != request.image.image_id:
            return
        if isinstance(payload, Notice):
            self.c.show_message(payload.text, payload.level)
        elif isinstance(request, Ask):
            session.asks.take(payload, request.request_id)  # engine.annotation.asking: the ask's own results
            if isinstance(payload, HeatmapResult) and self.c.models is not None and session.asks.run is not None:
                session.asks.run.record.models = dict(self.c.models.models)
                session.asks.run.record.random_weights = bool(self.c.models.random_weights)
            if isinstance(payload, AnswerResult):
                self.c.answer_ready.emit(session)
        elif isinstance(request, Answer):
            run = session.runs.get(request.run_key)
            if run is None:
                return
            if isinstance(payload, CaptionsResult):
                run.captions = tuple(payload.captions)
                if run.key == session.run_key:
                    session.notify("captions")
            elif isinstance(payload, AnswerResult):
                session.asks.answer(run, payload.answer)
                self.c.answer_ready.emit(session)

    def _on_image(self, request: OpenImage, image: LoadedImage) -> None:
        session = self._session_for(request.key)
        if session is None:
            return
        session.set_image(image)
        self.c.image_ready.emit(session)
        question = self.c.pending_questions.pop(session.key, None)
        if question:
            self.c.submit_ask(session, question)
        elif session is self.c.workspace.current:
            self.c.prefetch.image_shown(session)

    def on_progress(self, progress: Progress) -> None:
        self.c.window.status.set_progress(progress.stage, progress.fraction)

    def on_finished(self, finished: Finished) -> None:
        self._ask_ended(finished.request, True)

    def _ask_ended(self, request, completed: bool, restore: bool = True) -> bool:
        """An Ask or Answer ended. An Ask cancelled or failed puts its image back to its last
        complete state (True when it did); one that gave way to newer work keeps what it had."""
        restored = False
        if isinstance(request, (Ask, Answer)):
            session = self._session_for(request.image.key)
            if session is not None and isinstance(request, Ask):
                if completed or not restore:
                    session.asks.finish(request.request_id)
                else:
                    restored = session.asks.abandon(request.request_id)
                self.c.ask_finished.emit(session, completed)
        return restored

    def on_failed(self, failed: Failed) -> None:
        request = failed.request
        if request.background:  # nobody asked for it: the user's own request will say what is wrong
            log.warning("background %s failed: %s", request.title, failed.message)
            return
        if isinstance(request, OpenImage):
            session = self._session_for(request.key)
            if session is not None and not session.path.is_file():
                # Gone between the selection and the read: missing, not broken (nothing saved).
                session.loading = False
                session.set_missing(True)
                if session is self.c.workspace.current:
                    self.c.relocator.tell_missing(session)
                return
            if session is not None:
                session.set_failed(failed.message)
                self.c.pending_questions.pop(session.key, None)
        if isinstance(request, LoadModels):
            self.c.models_not_loaded()
        if failed.details:
            log.error("%s", failed.details)
        if failed.kind == "ModelMissingError" or isinstance(request, LoadModels):
            self.c.show_error(failed.message, "Models…", self.c.window.action_map["models"].trigger)
        else:
            self.c.show_error(failed.message)
        self._ask_ended(request, False)

    def on_cancelled(self, cancelled: Cancelled) -> None:
        request = cancelled.request
        if isinstance(request, LoadModels):
            self.c.models_not_loaded("models: not loaded (Engine > Load models)")
            self.c.show_message("Loading the models was stopped. Engine > Load models, or asking a question, "
                              "loads them again.", "info", "Load models", self.c.load_models)
            return
        restored = self._ask_ended(request, False, restore=not cancelled.superseded)
        # (one that gave way to the user's newer work needs no word, nor work nobody asked for)
        if not cancelled.superseded and not request.background:
            kept = f"{Path(request.image.key).name} shows its last complete state again" if restored else \
                "the results so far are kept"
            self.c.show_message(f"Cancelled {request.title}; {kept}.", "info")
