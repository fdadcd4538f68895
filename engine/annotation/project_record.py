"""An image's annotation and its project record: the record written as the annotation changes,
and taken back up when the image is opened again or another process wrote it."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from ..imaging import fusion
from ..imaging.point_notes import point_count_note
from ..project import PreviousAnswer, QuestionRecord, default_label
from ..prompts import POSITIVE
from .corrections import restore_corrections
from .prompts import PromptState

__all__ = ["AnswerView", "ProjectRecord", "typed_label"]


@dataclass(frozen=True)
class AnswerView:
    """An answer as shown: the text, the captions it came from, and the map settings behind it."""

    answer: str
    captions: tuple[str, ...]
    alpha: float
    edited_points: bool
    time: float = 0.0  # when it was written, seconds since the epoch (0: not known)

    @classmethod
    def of_previous(cls, previous: PreviousAnswer) -> "AnswerView":
        """A replaced answer as kept in the project (its captions are not kept)."""
        return cls(previous.answer, (), previous.alpha, previous.edited, previous.time)


class ProjectRecord:
    """The project side of :class:`~engine.annotation.state.ImageAnnotation` (its base class: it
    reads and sets the annotation's own attributes), kept apart so the state reads without it."""

    def save(self, action: str, source: str = "user") -> None:
        """Write this image's current record to the project: one transaction, one edit-log entry."""
        if self.record is None:
            return
        # A snapshot: the store may write it after the next edit has changed the live record.
        record, image = copy.copy(self.record), self.store.image_record(self)
        self.store.write(lambda p: p.put_question(image, record, source=source, action=action))

    def reload_from_project(self) -> None:
        """Another process wrote this image's records (the later write wins): show them."""
        self.question, self.record, self.heatmap, self.question_map = "", None, None, None
        self.word_maps, self.auto_points, self.prompts = (), (), PromptState()
        self.segmentation, self._restored_mask, self.chosen = None, None, 0
        self.fused_map, self.captions, self.answer, self.previous_answer = None, (), None, None
        self.label, self.accepted, self.error = "", False, None if self.image is not None else self.error
        self.points_note = None
        self._seg_cache.clear()
        self.corrections.clear()
        self._before_ask = None  # what the other process wrote is the state to come back to
        self._restore_from_project()
        for aspect in self.ASPECTS[1:]:
            self.notify(aspect)

    def _restore_from_project(self) -> None:
        """Take up the most recently updated question of this image, if the project has one."""
        img = self.store.image_record(self, refresh=True)
        if img is None:
            return
        if img.status == "failed" and img.error:
            self.error = img.error
        if not img.questions:
            return
        record = max(img.questions, key=lambda q: q.updated)
        self.record = record
        self.question = record.question
        self.question_map = record.heatmap
        self.auto_points = tuple(record.auto_points)
        if record.points_asked is not None:  # as set_auto_points said it when they came
            found = sum(p.label == POSITIVE for p in record.auto_points)
            self.points_note = point_count_note(record.heatmap, found, record.points_asked)
        self.prompts = PromptState(tuple(record.points), record.box)
        self._restored_mask = record.mask()  # the final mask: the strokes below are in it already
        self.corrections = restore_corrections(record)
        self.alpha = float(record.alpha)
        self.label = typed_label(record)
        self.accepted = bool(record.accepted)
        if record.answer is not None:
            self.captions = tuple(record.captions)
            self.answer = AnswerView(record.answer, self.captions, self.alpha, record.mask_source == "user",
                                     record.updated)
        if record.previous_answers:
            self.previous_answer = AnswerView.of_previous(record.previous_answers[-1])
        if self.question_map is not None:
            self.fused_map = fusion.fuse(self.question_map, self._restored_mask, alpha=self.alpha)


def typed_label(record: QuestionRecord) -> str:
    """The label a person typed: the record's label unless it is the default made from the answer
    (or, in projects written before defaults were short, the whole answer)."""
    label = (record.label or "").strip()
    return "" if label in (default_label(record.answer), (record.answer or "").strip()) else label


