"""One image's annotation state, without Qt: what it shows and what a person made of it.

:class:`ImageAnnotation` holds an image's pixels (once read), the question being worked on,
the live stage results (heat map, candidates, fusion, captions, answer), the prompt points
and box, the chosen candidate, alpha, the label and whether the mask is accepted. Every
change is written to the project at once through its :class:`AnnotationStore` (one
transaction) and announced through :meth:`ImageAnnotation.notify`. The app's
``gui.session.ImageSession`` is this plus a Qt signal and a Qt undo stack.

Frames: points, boxes and masks in (x, y) image pixels of the displayed image; heat maps,
coverage and fused maps on the ``[G, G]`` Grad-CAM grid.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..imaging import fusion
from ..imaging.images import LoadedImage
from ..project import QuestionRecord, default_label
from ..prompts import Point
from ..results import HeatmapResult, MaskCandidate, SegmentationResult
from .asking import Asking
from .corrections import CorrectedMask, Corrections
from .prompts import PromptState
from .project_record import AnswerView, ProjectRecord, typed_label
from .stores import AnnotationStore

__all__ = ["ImageAnnotation", "AnswerView", "typed_label", "SEG_CACHE_SIZE", "ASPECTS"]

SEG_CACHE_SIZE = 16  # segmentations kept per image, so undo/redo shows a mask at once
ASPECTS = ("image", "question", "heatmap", "prompts", "segmentation", "choice", "alpha", "fusion",
           "captions", "answer", "label", "accepted", "status", "mask",  # mask: strokes or clean-up changed it
           "restored")  # restored: the whole state put back (a cancelled ask), points too, with no decoder work


class ImageAnnotation(Asking, ProjectRecord, CorrectedMask):
    """One image: what it shows (pixels once read, the stage results of its question) and what
    a person made of it (points, box, chosen candidate, alpha, label, acceptance).

    Every change calls ``notify(aspect)`` (one of :data:`ASPECTS`) and is written to the project
    through ``store`` at once (see :class:`AnnotationStore`). Engine arrays are never modified.
    Also an :class:`~engine.annotation.edits.EditTarget` of itself, so a :class:`History` of
    edits works on it without any app around.
    """

    ASPECTS = ASPECTS
    def __init__(self, store: "AnnotationStore", path: Path, image_id: int) -> None:
        self.store = store
        self.image_id = int(image_id)
        self.path = Path(path)
        self.key = str(self.path)
        self.image: LoadedImage | None = None
        self.error: str | None = None
        self.missing = False  # the file is not at ``path`` (moved or deleted); see Workspace.relocate
        self.loading = False
        self.question = ""
        self.heatmap: HeatmapResult | None = None
        self.question_map: np.ndarray | None = None  # [G, G]; also restored from the project
        self.word_maps: tuple[tuple[str, np.ndarray], ...] = ()  # (word, [G, G]) per question word
        self.auto_points: tuple[Point, ...] = ()
        self.prompts = PromptState()
        self.segmentation: SegmentationResult | None = None
        self.chosen = 0
        self.alpha = store.default_alpha
        self.fused_map: np.ndarray | None = None
        self.captions: tuple[str, ...] = ()
        self.answer: AnswerView | None = None
        self.previous_answer: AnswerView | None = None
        self.answer_stale = False  # the map changed since the answer was written
        self.label = ""
        self.accepted = False
        self.generation = 0  # bumped on every prompt change; stale decoder replies are dropped
        self._seg_cache: OrderedDict[tuple, SegmentationResult] = OrderedDict()
        self._restored_mask: np.ndarray | None = None  # from the project, until the next segmentation
        self.corrections = Corrections()  # brush strokes over the model's mask (see .corrections)
        self.record: QuestionRecord | None = None
        self._restore_from_project()

    def notify(self, aspect: str) -> None:
        """Called after every change (the app's session emits a Qt signal here)."""

    # ------------------------------------------------------------------ EditTarget of itself
    def apply_prompts(self, image: "ImageAnnotation", prompts: PromptState, chosen: int) -> None:
        image.set_prompts(prompts, chosen)

    def apply_choice(self, image: "ImageAnnotation", index: int) -> None:
        image.set_chosen(index)

    def apply_alpha(self, image: "ImageAnnotation", alpha: float) -> None:
        image.set_alpha(alpha)

    def apply_label(self, image: "ImageAnnotation", label: str) -> None:
        image.set_label(label)

    def apply_accepted(self, image: "ImageAnnotation", accepted: bool) -> None:
        image.set_accepted(accepted)

    # ------------------------------------------------------------------ derived
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def image_size(self) -> tuple[int, int] | None:
        return None if self.image is None else self.image.size

    @property
    def model_mask(self) -> np.ndarray | None:
        """The model's chosen mask (before strokes; ``mask`` is the final one), [H, W] bool, or None."""
        if self.segmentation is not None and self.segmentation.candidates:
            index = min(self.chosen, len(self.segmentation.candidates) - 1)
            return self.segmentation.candidates[index].mask
        return self._restored_mask

    @property
    def edited(self) -> bool:
        """The prompts differ from the automatic points, or a non-default candidate is chosen."""
        auto = PromptState(self.auto_points)
        return self.prompts.key() != auto.key() or self.chosen != 0 or not self.corrections.empty

    @property
    def status(self) -> str:
        """For the image list: missing, failed, accepted, edited, answered, asked, new."""
        if self.missing:
            return "missing"
        if self.error:
            return "failed"
        if self.accepted:
            return "accepted"
        if self.record is not None and self.record.mask_source == "user":
            return "edited"
        if self.answer is not None:
            return "answered"
        if self.question_map is not None:
            return "asked"
        return "new"

    # ------------------------------------------------------------------ image
    def set_image(self, image: LoadedImage) -> None:
        self.image, self.error, self.loading = image, None, False
        record = self.store.image_record(self)
        if (record.status, record.width, record.height) != ("ok", *image.size):
            record.mark_ok(*image.size)
            self.store.write(lambda p: p.update_image(record))
        if self._restored_mask is not None and self._restored_mask.shape != image.rgb.shape[:2]:
            self._restored_mask = None  # the file changed since the project was saved
        if self.corrections.shape not in (None, image.rgb.shape[:2]):
            self.corrections.clear()
        self.notify("image")

    def release_memory(self) -> None:
        """Drop the pixels and cached candidates (a long folder must not fill the memory).

        What the user made stays: prompts, the chosen mask, answers, undo history. The image
        is read again when shown.
        """
        if self.image is None:
            return
        keep = self.model_mask
        self._pack_layers()
        self.image = None
        self._seg_cache.clear()
        if self.segmentation is not None:
            self._restored_mask = keep
            self.segmentation = None

    def set_missing(self, missing: bool) -> bool:
        """Mark the file as not found (or found again); True when that changed. Not saved: a
        missing file is a fact about this machine, not about the image."""
        missing = bool(missing)
        if missing == self.missing:
            return False
        self.missing = missing
        self.notify("status")
        return True

    def move_to(self, path: Path) -> None:
        """The file was found at ``path`` (after a relocation): the session follows it."""
        self.path = Path(path)
        self.key = str(self.path)
        self.missing = not self.path.is_file()
        if not self.missing and self.image is None:
            self.error = None  # an earlier "cannot read" may have been the missing file
        self.notify("status")

    def set_failed(self, message: str) -> None:
        self.error, self.loading = message, False
        record = self.store.image_record(self)
        record.mark_failed(message)
        self.store.write(lambda p: p.update_image(record))
        self.notify("status")

    # ------------------------------------------------------------------ prompts and masks
    def cached_segmentation(self, prompts: PromptState) -> SegmentationResult | None:
        result = self._seg_cache.get(prompts.key())
        if result is not None:
            self._seg_cache.move_to_end(prompts.key())
        return result

    def cache_segmentation(self, prompts: PromptState, result: SegmentationResult) -> None:
        self._seg_cache[prompts.key()] = result
        self._seg_cache.move_to_end(prompts.key())
        while len(self._seg_cache) > SEG_CACHE_SIZE:
            self._seg_cache.popitem(last=False)

    def ensure_record(self) -> QuestionRecord:
        """The project record edits go to; created (for the current question, maybe empty) on the first edit."""
        if self.record is None:
            self.record = QuestionRecord(question=self.question, alpha=self.alpha)
        return self.record

    def set_prompts(self, prompts: PromptState, chosen: int = 0) -> None:
        """New prompt state (an edit, undo or redo). The caller arranges for segmentation."""
        self.ensure_record()
        self.prompts = prompts
        self.generation += 1
        self.chosen = chosen
        if self.record is not None:
            self.record.points = list(prompts.points)
            self.record.box = prompts.box
            self.record.touch()
            self.save("points")
        self.notify("prompts")
        cached = self.cached_segmentation(prompts)
        if prompts.empty:
            self._apply_segmentation(None)
        elif cached is not None:
            self._apply_segmentation(cached)

    def preview_prompts(self, prompts: PromptState) -> None:
        """A drag in progress: shown and segmented, not an undo step, not yet saved."""
        self.prompts = prompts
        self.generation += 1
        self.notify("prompts")
        cached = self.cached_segmentation(prompts)
        if cached is not None:
            self._apply_segmentation(cached)

    def accept_segmentation(self, prompts: PromptState, generation: int, result: SegmentationResult) -> bool:
        """A decoder reply; applied only if it is for the current prompts (latest wins)."""
        self.cache_segmentation(prompts, result)
        if generation != self.generation or prompts.key() != self.prompts.key():
            return False
        self._apply_segmentation(result)
        return True

    def needs_segmentation(self) -> bool:
        return not self.prompts.empty and self.cached_segmentation(self.prompts) is None

    def _apply_segmentation(self, result: SegmentationResult | None) -> None:
        self.segmentation = result
        self._restored_mask = None
        if result is not None:
            self.chosen = min(self.chosen, len(result.candidates) - 1)
        self._mask_changed()
        self.notify("segmentation")

    def set_chosen(self, index: int) -> None:
        self.chosen = int(index)
        self._mask_changed()
        self.notify("choice")

    def set_alpha(self, alpha: float) -> None:
        self.alpha = float(np.clip(alpha, 0.0, 1.0))
        if self.record is not None:
            self.record.alpha = self.alpha
            self.record.touch()
            self.save("alpha")
        self.notify("alpha")
        self.update_fusion()

    @property
    def candidate(self) -> MaskCandidate | None:
        """The chosen candidate of the current segmentation, or None."""
        if self.segmentation is None or not self.segmentation.candidates:
            return None
        return self.segmentation.candidates[min(self.chosen, len(self.segmentation.candidates) - 1)]

    def _mask_changed(self) -> None:
        if self.record is not None and self.segmentation is not None:
            self._record_mask()
            self.save("mask", source="user" if self.edited else "chain")
        elif self.record is not None and self.segmentation is None and self.prompts.empty:
            self.record.set_mask(self.mask, source="user")  # the strokes alone, if any
            self.save("mask")
        self.update_fusion()

    def update_fusion(self) -> None:
        """Fuse the heat map with the chosen mask at the current alpha: grid-sized work when the
        candidate's coverage was computed with it (off the GUI thread), else one pass over the mask."""
        if self.question_map is None:
            return
        old = self.fused_map
        chosen = self.candidate
        if chosen is not None and chosen.coverage is not None and chosen.coverage.shape == self.question_map.shape \
                and self.corrections.empty:
            self.fused_map = fusion.fuse_coverage(self.question_map, chosen.coverage, alpha=self.alpha)
        else:
            self.fused_map = fusion.fuse(self.question_map, self.mask, alpha=self.alpha)
        if old is not None and self.answer is not None and not np.allclose(old, self.fused_map):
            self.answer_stale = True
        self.notify("fusion")

    # ------------------------------------------------------------------ label and acceptance
    def _sync_label(self) -> None:
        """The record's category: what the user typed, else the answer's first words."""
        if self.record is None:
            return
        self.record.label = self.label or default_label(self.answer.answer if self.answer is not None else "") or None
        if self.record.label and (self.label or self.accepted):
            label = self.record.label
            self.store.write(lambda p: p.ensure_category(label))

    def set_label(self, label: str) -> None:
        self.label = label.strip()
        if self.record is not None:
            self._sync_label()
            self.record.touch()
            self.save("label")
        self.notify("label")

    def set_accepted(self, accepted: bool) -> None:
        self.accepted = bool(accepted)
        if self.record is not None:
            self.record.accepted = self.accepted
            self._sync_label()
            self.record.touch()
            self.save("accept" if self.accepted else "unaccept")
        self.notify("accepted")
