"""The engine thread's jobs: what :class:`~gui.engine_thread.worker.EngineWorker` does for each request
(load the models, read an image, encode ahead, ask a question, write an answer again).

The worker's ``jobs``: the worker owns the pipeline, the queue, the mailbox and the cancel checks
(:mod:`gui.engine_thread.worker`); each job reports through the worker's signals and stops where its
``cancel`` callback says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.annotation.candidates import prepare_candidates
from engine.annotation.chain import ChainRequest, run_chain
from engine.annotation.pipeline_protocol import PipelineProtocol
from engine.errors import CancelledError
from engine.results import HeatmapResult, PrepareResult

from gui.engine_thread.requests import (Answer, Ask, EncodeImage, EncodeNext, ImageRef, LoadModels, ModelsInfo, Notice, OpenImage,
                       Progress, Reply)

if TYPE_CHECKING:
    from gui.engine_thread.worker import EngineWorker


class EngineJobs:
    """The jobs of ``worker`` (an :class:`~gui.engine_thread.worker.EngineWorker`): they run on its
    pipeline and report through its signals."""

    def __init__(self, worker: "EngineWorker") -> None:
        self.w = worker

    def load_models(self, request: LoadModels) -> None:
        progress, cancel = self.w.callbacks(request)
        progress("creating pipeline", 0.0)
        self.w.pipeline = None
        self.w.image_id = None
        pipe = self.w.factory(request.settings, request.models_dir)
        try:
            pipe.check_models()  # a missing model is reported now, not halfway through the first question
            notes = load_eagerly(pipe, progress, cancel)
        except BaseException:
            pipe.close()  # stopped or failed: the models loaded so far go now, not at the next load
            raise
        self.w.pipeline = pipe
        for note in notes:  # before "models ready": whoever waits for that sees them already shown
            self.w.reply.emit(Reply(request, Notice(note)))
        self.w.reply.emit(Reply(request, models_info(pipe, request.settings)))

    def open_image(self, request: OpenImage) -> None:
        from engine.imaging.images import load_image

        self.w.progress.emit(Progress(request.request_id, "reading image", -1.0))
        self.w.reply.emit(Reply(request, load_image(request.path)))

    def encode(self, request: EncodeImage | EncodeNext) -> None:
        self.w.need_pipeline()
        progress, cancel = self.w.callbacks(request)
        image = request.image if isinstance(request, EncodeImage) else None
        if image is None:  # the next image, read here: sent only when the engine is idle
            from engine.imaging.images import load_image

            loaded = load_image(request.path)  # its pixels go to the pipeline's cache only
            image, progress = ImageRef(request.key, loaded.rgb, loaded.image_id), _next_image_stages(progress)
            if cancel():
                raise CancelledError("cancelled")
        self.w.use_image(image)
        result = self._prepare(None, cancel, progress)
        if isinstance(request, EncodeImage):  # (the next image: its end is enough)
            self.w.reply.emit(Reply(request, result))

    def _prepare(self, roles: tuple[str, ...] | None, cancel, progress=None) -> PrepareResult:
        """Encoders a stage is about to need (None: all), stoppable between blocks (a stage alone
        is not). Returns the pipeline's PrepareResult."""
        return self.w.need_pipeline().prepare(roles=roles, progress=progress, cancel=cancel)

    # Each chain stage of an Ask as the status bar names it, and the part of the bar it fills.
    ASK_PROGRESS = {"heatmap": ("heat map", 0.0, 0.2), "segment": ("mask", 0.2, 0.3),
                    "captions": ("captions", 0.3, 0.9), "answer": ("answer", 0.9, 1.0)}

    def ask(self, request: Ask) -> None:
        """The chain (engine.annotation.chain), each result sent to the window as it is ready."""
        pipe = self.w.need_pipeline()
        progress, cancel = self.w.callbacks(request)
        progress("encoding image", 0.0)
        self.w.use_image(request.image)

        def send(result: Any) -> None:
            if isinstance(result, HeatmapResult):
                self._tell_question_use(request, pipe)
            self.w.reply.emit(Reply(request, result))

        def stage_progress(stage: str, fraction: float) -> None:
            name, lo, hi = self.ASK_PROGRESS.get(stage, (stage, 0.0, 1.0))
            progress(name, lo + (hi - lo) * max(0.0, min(1.0, fraction)))

        # Candidates are completed (RLE, coverage) in the chain, off the GUI thread, and its
        # fusion reads the best one's coverage.
        chain = run_chain(pipe, ChainRequest(request.question, alpha=request.alpha, num_points=request.num_points,
                                             instances=request.instances),
                          on_result=send, progress=stage_progress, cancel=cancel,
                          prepare_candidates=prepare_candidates)
        if chain.segmentation_error:
            # The heat map and the answer are shown; the mask's absence is an error the user sees.
            self.w.reply.emit(Reply(request, Notice(chain.segmentation_error + " Choose another segmentation model "
                                                  "in Engine > Models… to get masks again.", "error")))
        progress("done", 1.0)

    def _tell_question_use(self, request: Ask, pipe: PipelineProtocol) -> None:
        """A notice when the models read only part of the question (engine.vqa.question_use)."""
        note = pipe.question_use(request.question).note()
        if note:
            self.w.reply.emit(Reply(request, Notice(note, "warning")))

    def answer(self, request: Answer) -> None:
        progress, cancel = self.w.callbacks(request)
        progress("encoding image", 0.0)
        self.w.use_image(request.image)
        self._captions_and_answer(request, request.question, request.fused_map, progress, cancel, 0.0)

    def _captions_and_answer(self, request, question, fused_map, progress, cancel, start: float) -> None:
        pipe = self.w.need_pipeline()
        span = 0.9 - start

        def caption_progress(stage: str, fraction: float) -> None:
            progress(stage, start + span * max(0.0, min(1.0, fraction)))

        self._prepare(("caption",), cancel)
        caps = pipe.captions(fused_map, progress=caption_progress, cancel=cancel)
        self.w.reply.emit(Reply(request, caps))
        if caps.cancelled or cancel():
            raise CancelledError("cancelled")
        progress("answer", 0.92)
        self.w.reply.emit(Reply(request, pipe.answer(question, caps.captions, cancel=cancel)))
        progress("done", 1.0)


def _next_image_stages(progress):
    """The status bar says "encoding the next image (…)" for the image after the shown one."""
    return lambda stage, fraction: progress(stage.replace("image", "the next image", 1), fraction)


def load_eagerly(pipe: PipelineProtocol, progress, cancel) -> list[str]:
    """Load every model now, with progress and cancel between models (the pipeline is lazy).

    A segmentation model that cannot be loaded does not stop the others (the heat map and the
    answer do not need it): the returned notes say why it is missing.
    """
    return list(pipe.load(progress=progress, cancel=cancel, optional=("efficient_sam",)))


def models_info(pipe: PipelineProtocol, settings) -> ModelsInfo:
    """What the status bar shows: device, preset, model ids, random weights."""
    return ModelsInfo(device=pipe.device, preset=settings.preset, models=dict(pipe.model_ids()),
                      random_weights=pipe.random_weights)
