"""Putting a question's run and the object it proposed into a project, for the export and import tests."""

from __future__ import annotations

import numpy as np

from engine.project import ImageRecord, ObjectRecord, Project, QuestionRun


def put_answered(project: Project, img: ImageRecord, question: str, mask: np.ndarray | None, *,
                 label: str | None = None, answer: str | None = None, accepted: bool = False,
                 run: dict | None = None, obj: dict | None = None, edited: np.ndarray | None = None,
                 source: str = "chain") -> ObjectRecord:
    """The run of ``question`` (with ``run`` fields) and its object of class ``label`` whose mask
    is ``mask`` (the automatic mask; ``edited``: a person's final mask over it)."""
    project.put_run(img, QuestionRun(question=question, answer=answer, **(run or {})))
    o = ObjectRecord(category=label, question=question, accepted=accepted, source="question", **(obj or {}))
    if mask is not None:
        o.set_mask(mask, source="auto", score=0.9)
        o.auto_mask_rle = dict(o.mask_rle)
    if edited is not None:
        o.set_mask(edited, source="user")
    return project.put_object(img, o, source=source)
