"""Asking a question about an image: the stage results arriving for an annotation.

:class:`Asking` is a base class of :class:`~engine.annotation.state.ImageAnnotation` (it reads
and sets the annotation's own attributes): a new question clears the earlier results, then the
heat map, automatic points, captions and answer arrive from the chain and are written to the
project as they come. Frames: heat maps on the ``[G, G]`` Grad-CAM grid; points in (x, y) image pixels.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..project import PreviousAnswer, QuestionRecord
from ..project.records import PREVIOUS_ANSWERS_KEPT
from ..imaging.point_notes import point_count_note
from ..prompts import POSITIVE, Point
from ..results import AnswerResult, CaptionsResult, HeatmapResult
from .last_complete import LastComplete, put_back, take
from .project_record import AnswerView, typed_label

__all__ = ["Asking"]


class Asking:
    """The asking side of an image's annotation, kept apart so the state reads without it."""

    asking: object = None  # the caller's id of the ask in flight (the app's request id), or None
    points_note: str | None = None  # why fewer automatic points came than were asked for
    _before_ask: LastComplete | None = None  # the last complete state, while an ask is in flight
    # The image's undo history, if it keeps one (``snapshot()`` and ``restore(snapshot)``, as
    # :class:`~engine.annotation.edits.History`): a cancelled ask puts it back as it was.
    history: Any = None

    def start_question(self, question: str) -> None:
        """A new ask: earlier results of this image are cleared (the project keeps old questions).

        What the image showed is kept until :meth:`finish_question` (an ask replacing one still
        in flight keeps the state from before the first); :meth:`abandon_question` puts it back.
        The undo history starts empty for the new question."""
        if self._before_ask is None:
            self._before_ask = take(self, question.strip())
        if self.history is not None:
            # A new question starts a fresh history: the earlier question's points and strokes
            # belong to its own record, and undoing them over the new one would edit the wrong
            # mask. A cancelled ask puts the old history back (see take / put_back).
            self.history.restore(((), 0))
        self.asking = None
        self.question = question.strip()
        self.heatmap = None
        self.question_map = None
        self.word_maps = ()
        self.auto_points = ()
        self.points_note = None
        self.segmentation = None
        self._restored_mask = None
        self.corrections.clear()
        self.chosen = 0
        self.fused_map = None
        self.captions = ()
        self.previous_answer = None
        self.answer = None
        self.answer_stale = False
        record = self.store.image_record(self)
        existing = record.find_question(self.question)
        typed = typed_label(existing) if existing is not None else ""
        self.record = QuestionRecord(question=self.question, alpha=self.alpha, label=typed or None, accepted=False,
                                     previous_answers=[] if existing is None else with_replaced_answer(existing))
        self.label = typed
        self.accepted = False
        self.save("ask")
        for aspect in ("question", "heatmap", "segmentation", "fusion", "captions", "answer", "label", "accepted"):
            self.notify(aspect)

    def finish_question(self, ask_id: object = None) -> None:
        """The ask ``ask_id`` completed: its results are now the image's complete state."""
        if ask_id == self.asking:
            self._before_ask = None

    def abandon_question(self, ask_id: object = None) -> bool:
        """The ask ``ask_id`` was cancelled or failed: the image shows its last complete state again
        and the project keeps its earlier record (see :mod:`.last_complete`). An ask whose answer
        came is complete already; a replaced ask changes nothing. True when the state was restored."""
        if ask_id != self.asking or self._before_ask is None:
            return False
        before, self._before_ask = self._before_ask, None
        if self.answer is not None:
            return False
        put_back(self, before)
        for aspect in self.ASPECTS[1:]:
            if aspect != "prompts":  # "restored" shows the points: the mask put back needs no decoder
                self.notify(aspect)
        return True

    def set_heatmap(self, heat: HeatmapResult) -> None:
        self.heatmap = heat
        self.question_map = heat.question_map
        self.word_maps = heat.word_maps()
        if self.record is not None:
            self.record.heatmap = np.asarray(heat.question_map, dtype=np.float32)
            self.record.itm_probability = float(heat.itm_probability)
            self.record.touch()
            self.save("heatmap", source="chain")
        self.notify("heatmap")

    def set_auto_points(self, points: tuple[Point, ...], asked: int | None = None) -> None:
        """The heat map's points; ``asked``: how many positive points were asked for (when fewer
        came, :attr:`points_note` says why)."""
        self.auto_points = tuple(points)
        found = sum(p.label == POSITIVE for p in points)
        self.points_note = None if asked is None else point_count_note(self.question_map, found, asked)
        if self.record is not None:
            self.record.auto_points = list(points)
            self.record.points_asked = asked  # kept, so a reopened image says the same

    def set_models(self, models: dict[str, str], random_weights: bool) -> None:
        if self.record is not None:
            self.record.models = dict(models)
            self.record.random_weights = bool(random_weights)

    def set_captions(self, captions: CaptionsResult) -> None:
        self.captions = tuple(captions.captions)
        self.notify("captions")

    def set_answer(self, answer: AnswerResult, captions: tuple[str, ...] | None = None) -> None:
        """A new answer; the one it replaces (of this question, also from an earlier ask) is kept in
        the record's previous answers and shown beside it."""
        if self.record is not None:
            shown = self.answer if self.answer is not None and self.answer.answer == self.record.answer else None
            self.record.previous_answers = with_replaced_answer(self.record, shown)
            if self.record.previous_answers:  # the one shown (with its captions), else as the project kept it
                self.previous_answer = shown or AnswerView.of_previous(self.record.previous_answers[-1])
        elif self.answer is not None:
            self.previous_answer = self.answer
        self.answer = AnswerView(answer.answer, tuple(self.captions if captions is None else captions),
                                 self.alpha, self.edited, time.time())
        self.answer_stale = False
        if self.record is not None:
            self.record.answer = answer.answer
            self.record.captions = list(self.answer.captions)
            self._sync_label()
            self.record.touch()
            self.save("answer", source="chain")
        self.notify("answer")


def with_replaced_answer(record: QuestionRecord, shown: AnswerView | None = None) -> list[PreviousAnswer]:
    """``record``'s previous answers plus its current answer (the newest last, at most
    :data:`~engine.project.records.PREVIOUS_ANSWERS_KEPT`), about to be replaced. ``shown`` is that
    answer as shown, when it is: it knows the alpha and prompts it was written with, and when."""
    if record.answer is None:
        return list(record.previous_answers)
    if shown is not None and shown.answer == record.answer:
        replaced = PreviousAnswer(record.answer, shown.alpha, shown.edited_points, shown.time or record.updated)
    else:
        replaced = PreviousAnswer(record.answer, record.alpha, record.mask_source == "user", record.updated)
    return (list(record.previous_answers) + [replaced])[-PREVIOUS_ANSWERS_KEPT:]
