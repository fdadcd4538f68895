"""A question run: a question asked about an image and the evidence it produced.

A run keeps what the chain made of the question (the Grad-CAM heat map, the automatic points,
the captions, the answer and the answers it replaced) and proposes objects
(:class:`engine.project.objects.ObjectRecord`); ``object_uids`` lists the objects it proposed
that still exist. An image has at most one run per question (the key is the whitespace- and
case-normalised question): asking it again replaces the evidence and keeps the earlier answer
among ``previous_answers``.

Frames: heat maps, and the per-word maps of the question's words, are ``[Gh, Gw]`` float32 grids
(cells, not pixels); points (x, y) image pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..prompts import Point
from ..vqa.question import normalise_question

__all__ = ["QuestionRun", "PreviousAnswer", "PREVIOUS_ANSWERS_KEPT", "Instances", "INSTANCE_MODES"]

Instances = Literal["one", "several"]
INSTANCE_MODES = ("one", "several")
PREVIOUS_ANSWERS_KEPT = 20  # a run keeps this many replaced answers, the newest last


@dataclass(frozen=True)
class PreviousAnswer:
    """An answer a later one replaced: the app compares the two again when the image is reopened,
    and the provenance says what the map was like when it was written."""

    answer: str
    alpha: float  # the fusion weight of the map it was written from
    edited: bool  # the map's mask came from edited prompts (not the automatic points)
    time: float  # when it was written, seconds since the epoch


@dataclass
class QuestionRun:
    """One question asked about one image, with its evidence (see the module docstring).

    ``alpha`` is the fusion weight of the map the answer was written from; ``instances`` whether
    the run proposed one object or one per separate hot region of its heat map.
    """

    question: str
    answer: str | None = None
    captions: list[str] = field(default_factory=list)
    itm_probability: float | None = None
    heatmap: np.ndarray | None = field(default=None, repr=False)
    word_maps: list[tuple[str, np.ndarray]] = field(default_factory=list, repr=False)  # (word, [Gh, Gw] map)
    auto_points: list[Point] = field(default_factory=list)
    points_asked: int | None = None  # automatic positive points asked for (None: not known)
    alpha: float = 0.5
    instances: Instances = "one"
    object_uids: list[str] = field(default_factory=list)
    models: dict[str, str] = field(default_factory=dict)  # role -> model id
    random_weights: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # pipeline notes (e.g. "segmentation failed")
    previous_answers: list[PreviousAnswer] = field(default_factory=list)  # oldest first
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    @property
    def key(self) -> str:
        return normalise_question(self.question)

    def touch(self) -> None:
        self.updated = time.time()

    def with_replaced_answer(self, alpha: float | None = None, edited: bool | None = None,
                             when: float | None = None) -> list[PreviousAnswer]:
        """The previous answers plus the current one, about to be replaced (newest last, at most
        :data:`PREVIOUS_ANSWERS_KEPT`); the map settings it was written with when known."""
        if self.answer is None:
            return list(self.previous_answers)
        replaced = PreviousAnswer(self.answer, self.alpha if alpha is None else float(alpha),
                                  bool(edited), self.updated if when is None else float(when))
        return (list(self.previous_answers) + [replaced])[-PREVIOUS_ANSWERS_KEPT:]
