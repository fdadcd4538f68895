"""An image's last complete state, kept while a question is being asked, and put back when the ask
is cancelled or fails.

A new question clears the image's results as soon as it is asked (the new heat map, points and
mask arrive stage by stage). An ask that never completes must not leave a mix of the old and the
new (the old points and captions beside no heat map and no mask), nor replace the old record in
the project: :func:`take` keeps what the image showed before the ask, :func:`put_back` restores
it, in the annotation and in the project, and the image's undo history as it was (the ask's steps,
and edits made during it, would otherwise stay undoable over a state they never led to).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ..project import QuestionRecord

__all__ = ["LastComplete", "take", "put_back", "KEPT"]

# Everything an ask changes; all of it is shown, or written, from these attributes.
KEPT = ("question", "heatmap", "question_map", "word_maps", "auto_points", "points_note", "prompts",
        "segmentation", "_restored_mask", "chosen", "fused_map", "captions", "previous_answer", "answer", "answer_stale",
        "record", "label", "accepted", "alpha", "corrections")


@dataclass(frozen=True)
class LastComplete:
    """What an image showed before a question was asked (values of :data:`KEPT`), the project's
    earlier record of the new question, if it had one (None: the ask made the record), and the
    snapshot of the image's undo history (None: it keeps none)."""

    values: dict[str, Any]
    replaced: QuestionRecord | None
    history: Any = None


def take(annotation: Any, question: str) -> LastComplete:
    """The annotation's state now, before asking ``question`` (copies of what is changed in place:
    the record and the correction layers' holder; the rest is replaced, never mutated)."""
    values = {name: getattr(annotation, name) for name in KEPT if hasattr(annotation, name)}
    for name in ("record", "corrections"):
        if values.get(name) is not None:
            values[name] = copy.copy(values[name])
    earlier = annotation.store.image_record(annotation).find_question(question)
    history = getattr(annotation, "history", None)
    return LastComplete(values, None if earlier is None else copy.copy(earlier),
                        None if history is None else history.snapshot())


def put_back(annotation: Any, before: LastComplete) -> None:
    """Restore ``before`` into the annotation and the project: the unfinished record is removed, or
    the earlier record of the same question written back (with its own times, so the list and a
    reopened image take up the record they showed before); the undo history as it was."""
    unfinished = annotation.record
    for name, value in before.values.items():
        setattr(annotation, name, value)
    annotation.generation += 1  # a decoder reply for the abandoned prompts is dropped
    image = annotation.store.image_record(annotation)
    replaced, shown = before.replaced, annotation.record
    if replaced is not None and shown is not None and shown.key == replaced.key:
        replaced = shown  # the record shown is the one to keep (one object, as before the ask)
    if replaced is not None:
        stored = copy.copy(replaced)
        annotation.store.write(lambda p: p.put_question(image, stored, action="restore"))
    elif unfinished is not None:
        question = unfinished.question
        annotation.store.write(lambda p: p.remove_question(image, question))
    history = getattr(annotation, "history", None)
    if history is not None and before.history is not None:
        history.restore(before.history)
