"""One question run of the shown image, live: its record plus what only the session knows.

:class:`RunState` holds a run's :class:`~engine.project.QuestionRun` (the evidence the project
keeps) and what the window shows of it: the heat map with its per-word maps, why fewer automatic
points came than were asked for, the fused map (heat map and the run's objects' masks, at the
run's alpha), the captions and the answer (with the one it replaced, and whether the map changed
since: ``answer_stale``).

Frames: heat maps, per-word maps and the fused map on the ``[G, G]`` Grad-CAM grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..imaging import fusion
from ..imaging.point_notes import point_count_note
from ..project import PreviousAnswer, QuestionRun
from ..prompts import POSITIVE
from ..results import HeatmapResult

__all__ = ["RunState", "AnswerView"]


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


class RunState:
    """See the module docstring."""

    def __init__(self, record: QuestionRun) -> None:
        self.record = record
        self.heatmap: HeatmapResult | None = None  # the live result (token maps), None when reopened
        self.word_maps: tuple[tuple[str, np.ndarray], ...] = tuple(record.word_maps)  # (kept in the project)
        self.points_note: str | None = None
        self.fused_map: np.ndarray | None = None
        self.captions: tuple[str, ...] = tuple(record.captions)
        self.answer: AnswerView | None = None
        self.previous_answer: AnswerView | None = None
        self.answer_stale = False
        if record.points_asked is not None and record.heatmap is not None:
            found = sum(p.label == POSITIVE for p in record.auto_points)
            self.points_note = point_count_note(record.heatmap, found, record.points_asked)
        if record.answer is not None:
            self.answer = AnswerView(record.answer, self.captions, record.alpha, False, record.updated)
        if record.previous_answers and record.answer is not None:  # (beside an answer: an ask anew has none yet)
            self.previous_answer = AnswerView.of_previous(record.previous_answers[-1])

    @property
    def question(self) -> str:
        return self.record.question

    @property
    def key(self) -> str:
        return self.record.key

    @property
    def question_map(self) -> np.ndarray | None:
        return self.record.heatmap

    @property
    def alpha(self) -> float:
        return self.record.alpha

    def set_heatmap(self, heat: HeatmapResult) -> None:
        self.heatmap = heat
        self.word_maps = heat.word_maps()
        self.record.word_maps = list(self.word_maps)
        self.record.heatmap = np.asarray(heat.question_map, dtype=np.float32)
        self.record.itm_probability = float(heat.itm_probability)
        self.record.touch()

    def set_auto_points(self, points: tuple, asked: int | None) -> None:
        self.record.auto_points = list(points)
        self.record.points_asked = asked
        found = sum(p.label == POSITIVE for p in points)
        self.points_note = None if asked is None else point_count_note(self.question_map, found, asked)

    def fuse(self, mask: np.ndarray | None, coverage: np.ndarray | None = None) -> bool:
        """Fuse the heat map with ``mask`` (the union of the run's objects, [H, W] bool, or None)
        at the run's alpha; ``coverage``: that mask already on the grid. True when the map changed
        (a shown answer is then stale: it was written from another map)."""
        if self.question_map is None:
            return False
        old = self.fused_map
        if coverage is not None and coverage.shape == self.question_map.shape:
            self.fused_map = fusion.fuse_coverage(self.question_map, coverage, alpha=self.alpha)
        else:
            self.fused_map = fusion.fuse(self.question_map, mask, alpha=self.alpha)
        changed = old is None or not np.allclose(old, self.fused_map)
        if old is not None and changed and self.answer is not None:
            self.answer_stale = True
        return changed

    def set_answer(self, answer: str, captions: tuple[str, ...], edited: bool) -> None:
        """A new answer; the one it replaces is kept in the run's previous answers and shown beside it."""
        shown = self.answer if self.answer is not None and self.answer.answer == self.record.answer else None
        self.record.previous_answers = self.record.with_replaced_answer(
            alpha=None if shown is None else shown.alpha, edited=None if shown is None else shown.edited_points,
            when=None if shown is None or not shown.time else shown.time)
        if self.record.previous_answers:
            self.previous_answer = shown or AnswerView.of_previous(self.record.previous_answers[-1])
        self.captions = tuple(captions)
        self.record.answer = answer
        self.record.captions = list(captions)
        self.record.touch()
        self.answer = AnswerView(answer, self.captions, self.alpha, edited, self.record.updated)
        self.answer_stale = False
