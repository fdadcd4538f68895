"""What the chain, the batch, the Annotator and the app's engine thread drive: a pipeline's methods.

:class:`PipelineProtocol` is the contract of :class:`engine.annotation.pipeline.Pipeline` (the
one implementation on models) as its callers use it; a test's stand-in implements all of it, so
the callers call every method directly. ``tests/engine/annotation/test_pipeline_protocol.py`` checks that the
Pipeline and every stand-in match it, signatures included.

Images are ``[H, W, 3]`` uint8 RGB; points and boxes are in image pixels; heat maps are the
``[G, G]`` float32 grid of the ITM model. ``progress(stage, fraction)`` and ``cancel()`` are as in
:mod:`engine.annotation.pipeline`.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from ..prompts import Box, Point
from ..results import (AnswerResult, CaptionsResult, ChainResult, FusionResult, HeatmapResult, PrepareResult,
                       SegmentationResult)
from ..vqa.question_use import QuestionUse
from .settings import PipelineSettings

__all__ = ["PipelineProtocol", "ProgressFn", "CancelFn"]

ProgressFn = Callable[[str, float], None]
CancelFn = Callable[[], bool]


@runtime_checkable
class PipelineProtocol(Protocol):
    """One image at a time: ``set_image``, then the stages of :func:`~engine.annotation.chain.run_chain`
    (or ``run``, all of them). Not thread-safe: one thread owns a pipeline."""

    settings: PipelineSettings  # read by the chain (segment, num_points, ...); the batch sets ``seed``

    # -- models
    @property
    def device(self) -> str:
        """The device the models run on ("cpu", "cuda:0", ...)."""
        ...

    @property
    def random_weights(self) -> bool:
        """True when any model is a random-weights test model (results mean nothing)."""
        ...

    def model_ids(self) -> dict[str, str]:
        """Role -> model id, as results and exports record them."""
        ...

    def check_models(self) -> None:
        """ModelMissingError now, naming the download command, rather than halfway through a run."""
        ...

    def load(self, progress: ProgressFn | None = None, cancel: CancelFn | None = None,
             optional: tuple[str, ...] = ()) -> list[str]:
        """Load every model now (otherwise on first use); notes on ``optional`` roles not loaded."""
        ...

    def close(self) -> None:
        """Release every model and cached embedding."""
        ...

    # -- the image
    @property
    def image_id(self) -> str | None:
        """The current image's id (None before ``set_image``)."""
        ...

    @property
    def image_size(self) -> tuple[int, int]:
        """(W, H) of the current image."""
        ...

    def set_image(self, rgb: np.ndarray, image_id: str | None = None) -> None:
        """Make an image current; its encoder outputs are cached per ``image_id``."""
        ...

    def prepare(self, roles: Sequence[str] | None = None, progress: ProgressFn | None = None,
                cancel: CancelFn | None = None) -> PrepareResult:
        """Run the current image's vision encoders now (``roles`` None: all); cached ones are skipped."""
        ...

    def is_encoded(self, role: str) -> bool:
        """Whether the current image's ``role`` encoder output (itm, caption, efficient_sam) is cached."""
        ...

    # -- the stages
    def question_use(self, question: str) -> QuestionUse:
        """Which part of ``question`` the models read (its ``note()`` is "" when all of it)."""
        ...

    def heatmap(self, question: str) -> HeatmapResult:
        ...

    def auto_points(self, heat: HeatmapResult | np.ndarray, num_points: int | None = None) -> tuple[Point, ...]:
        ...

    def segment(self, points: Sequence[Point] = (), box: Box | None = None, multimask: bool = True
                ) -> SegmentationResult:
        ...

    def fuse(self, heat_map: np.ndarray, mask: np.ndarray | None, alpha: float | None = None,
             coverage: np.ndarray | None = None) -> FusionResult:
        ...

    def captions(self, sampling_map: np.ndarray, progress: ProgressFn | None = None,
                 cancel: CancelFn | None = None, num_captions: int | None = None,
                 seed: int | None | str = "settings") -> CaptionsResult:
        ...

    def answer(self, question: str, captions: Sequence[str], cancel: CancelFn | None = None) -> AnswerResult:
        ...

    def run(self, question: str, points: Sequence[Point] | None = None, box: Box | None = None,
            alpha: float | None = None, segment: bool | None = None, progress: ProgressFn | None = None,
            cancel: CancelFn | None = None, instances: str = "auto") -> ChainResult:
        """Every stage on the current image, as the command line runs it (a mask asked for and
        not made raises)."""
        ...
