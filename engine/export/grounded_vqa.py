"""Grounded VQA: each question asked about an image, with its answer, the captions the answer
was read from, and the instances the question grounds, as JSON Lines beside a COCO file.

``<COCO file stem>.grounded_vqa.jsonl`` (``annotations/instances_<split>.grounded_vqa.jsonl`` in
a self-contained export; the ``.jsonl`` name keeps it out of COCO readers' ``*.json`` searches),
one line per image that has a question to give::

    {"image_id": 3, "file_name": "park/dog.jpg", "width": 640, "height": 480,
     "questions": [
       {"question": "where are the dogs?", "answer": "on the grass",
        "captions": ["two dogs running on the grass", ...], "itm_probability": 0.91,
        "instances": [{"annotation_id": 17, "category_id": 2, "category": "dog",
                       "bbox": [x, y, w, h], "area": 5120, "accepted": true,
                       "segmentation": {"size": [480, 640], "counts": "..."}}, ...]},
       {"question": "is there a cat?", "answer": "no", "captions": [...], "instances": []}]}

``image_id`` and ``annotation_id`` are those of the COCO file beside it (the annotation ids are
the objects' ids in the project, stable from one export to the next); ``segmentation`` is the
same compressed RLE, so a line is usable on its own. A question grounds the exported objects it
proposed (:attr:`QuestionRun.object_uids`, and the objects whose question it is); a question
that proposed none (a "no" answer, a count of zero) is kept with no instances, a negative
example; one whose objects were all left out (e.g. ``only_accepted``) is left out too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..imaging.masks import rle_area, rle_bbox
from .common import ExportImage, ExportItem

__all__ = ["GroundedQuestion", "grounded_questions", "grounded_line", "GROUNDED_SUFFIX"]

GROUNDED_SUFFIX = ".grounded_vqa.jsonl"


@dataclass
class GroundedQuestion:
    """One question of one image and the exported instances it grounds (``items``)."""

    question: str
    answer: str | None
    captions: list[str] = field(default_factory=list)
    itm_probability: float | None = None
    items: list[ExportItem] = field(default_factory=list)


def grounded_questions(e: ExportImage) -> list[GroundedQuestion]:
    """The image's questions (its runs, in the project's order) with the exported objects each
    grounds; questions whose every object was left out of the export are dropped."""
    out = []
    for run in e.runs:
        uids = set(run.object_uids)
        items = [it for it in e.items if it.obj.uid in uids or (it.run is not None and it.run.key == run.key)]
        if run.object_uids and not items:
            continue  # it proposed objects, none of them exported
        out.append(GroundedQuestion(question=run.question, answer=run.answer, captions=list(run.captions),
                                    itm_probability=run.itm_probability, items=items))
    return out


def grounded_line(image: dict[str, Any], questions: list[GroundedQuestion]) -> dict[str, Any] | None:
    """One JSON Lines record: ``image`` is the COCO image entry (id, file_name, width, height);
    None when there is no question to give."""
    if not questions:
        return None
    return {"image_id": image["id"], "file_name": image["file_name"], "width": image["width"],
            "height": image["height"],
            "questions": [{"question": q.question, "answer": q.answer, "captions": q.captions,
                           "itm_probability": q.itm_probability,
                           "instances": [_instance(it) for it in q.items]} for q in questions]}


def _instance(it: ExportItem) -> dict[str, Any]:
    rle = it.obj.mask_rle
    return {"annotation_id": it.ann_id, "category_id": it.category.id, "category": it.category.name,
            "bbox": rle_bbox(rle), "area": rle_area(rle), "accepted": bool(it.obj.accepted),
            "segmentation": {"size": list(rle["size"]), "counts": rle["counts"]}}
