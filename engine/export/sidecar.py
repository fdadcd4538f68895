"""QMask provenance file: how each exported annotation came to be.

Written with every export, where no dataset reader looks (``provenance/qmask-provenance.json``
in the output folder, ``provenance/NAME/qmask-provenance.json`` beside a COCO file ``NAME.json``:
:mod:`engine.export.layout`). Dataset formats have no room for it: the question and answer,
the automatic points versus the person's edits, the IoU between the automatic mask and the
final one (1.0 = untouched), the models (and whether their weights were random), the edit
log, and each image's files in the dataset (``files``: ``image``, ``annotations``/``labels``,
paths relative to the output folder) and split.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..runtime.atomic import atomic_writer
from ..project import Project
from ..project.codec import box_to_json, category_to_json, point_to_json, previous_answer_to_json
from ..vqa.question import normalise_question
from .common import ExportItem, ExportPlan
from .layout import Layout


def _key(question: str | None) -> str | None:
    return None if question is None else normalise_question(question)


def item_provenance(item: ExportItem) -> dict[str, Any]:
    q, run = item.obj, item.run
    iou = q.provenance_iou()
    return {
        "object": q.uid,
        "source": q.source,
        "question": q.question,
        "answer": None if run is None else run.answer,
        "captions": [] if run is None else list(run.captions),
        "label": item.category.name,
        "category_id": item.category.id,
        "itm_probability": None if run is None else run.itm_probability,
        "mask_score": q.mask_score,
        "mask_source": q.mask_source,
        "auto_points": [point_to_json(p) for p in q.auto_points],
        "points": [point_to_json(p) for p in q.points],
        "user_points": [point_to_json(p) for p in q.points if p.source == "user"],
        "box": None if q.box is None else box_to_json(q.box),  # the box prompt, x0 y0 x1 y1 image pixels
        "previous_answers": [] if run is None else [previous_answer_to_json(a) for a in run.previous_answers],
        "edited": q.edited,
        "auto_vs_final_iou": None if iou is None else round(float(iou), 6),
        "alpha": None if run is None else run.alpha,
        "models": {} if run is None else dict(run.models),
        "random_weights": False if run is None else run.random_weights,
        "accepted": q.accepted,
        "review": q.review,
        "review_reasons": list(q.reasons),
        "created": q.created,
        "updated": q.updated,
    }


class SidecarWriter:
    """The sidecar written alongside the export, image by image, as the format writer finishes
    each (:attr:`ExportPlan.after`): the records are read once for both. ``refs[item.key]`` adds
    the format's references (annotation id, file). Each annotation lists its edits from the
    project's log (when, by whom, from which source: chain, user or import)."""

    def __init__(self, path: Path, project: Project, plan: ExportPlan, fmt: str,
                 refs: dict[tuple[int, str], dict[str, Any]], layout: Layout | None = None) -> None:
        self.path, self.refs = path, refs
        self.layout = layout or Layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._enc = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        self._random = False
        self._count = 0
        self._writer = atomic_writer(path)
        self._file = self._writer.__enter__()
        head = {"schema": "qmask.provenance", "version": 1, "qmask_version": __version__, "format": fmt,
                "exported": time.time(), "project": str(project.path),
                "self_contained": self.layout.self_contained, "splits": self.layout.splits,
                "categories": [category_to_json(c) for c in plan.categories], "skipped": list(plan.skipped)}
        self._file.write(self._enc.encode(head)[:-1] + ',"images":[')

    def add(self, e: Any) -> None:
        anns = []
        for it in e.items:
            d = item_provenance(it)
            d["edits"] = [{"time": x.time, "source": x.source, "action": x.action, "writer": x.writer}
                          for x in e.edits if x.object_uid == it.obj.uid
                          or (x.object_uid is None and x.question_key in (_key(it.obj.question), None))]
            d.update(self.refs.pop(it.key, {}))
            anns.append(d)
            self._random = self._random or bool(it.run is not None and it.run.random_weights)
        image_id = int(e.image.id or 0)
        self._file.write(("," if self._count else "") + self._enc.encode(
            {"path": e.image.path, "source": str(e.abs_path),
             "stem": self.layout.image_stem(e) if image_id in self.layout.names else e.stem,
             "split": self.layout.split(e), "files": self.layout.files.get(image_id, {}),
             "width": e.image.width, "height": e.image.height, "sha256": e.image.sha256, "annotations": anns}))
        self._count += 1

    def close(self, error: BaseException | None = None) -> None:
        """Finish the file; with ``error``, drop it (nothing half-written remains)."""
        if error is None:
            self._file.write('],"random_weights":' + self._enc.encode(self._random) + "}\n")
            self._writer.__exit__(None, None, None)
        else:
            self._writer.__exit__(type(error), error, error.__traceback__)
