"""QMask provenance sidecar: how each exported annotation came to be.

Written next to every export as ``qmask_provenance.json`` (``<name>.qmask_provenance.json``
beside a COCO file). Datasets formats have no room for it: the question and answer, the
automatic points versus the person's edits, the IoU between the automatic mask and the final
one (1.0 = untouched), the models (and whether their weights were random), timings.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..atomic import atomic_write_json
from ..project import Project, point_to_json
from .common import ExportItem, ExportPlan

SIDECAR_NAME = "qmask_provenance.json"


def item_provenance(item: ExportItem) -> dict[str, Any]:
    q = item.record
    iou = q.provenance_iou()
    return {
        "question": q.question,
        "answer": q.answer,
        "captions": list(q.captions),
        "label": item.category.name,
        "category_id": item.category.id,
        "itm_probability": q.itm_probability,
        "mask_score": q.mask_score,
        "mask_source": q.mask_source,
        "auto_points": [point_to_json(p) for p in q.auto_points],
        "points": [point_to_json(p) for p in q.points],
        "user_points": [point_to_json(p) for p in q.user_points],
        "edited": q.edited,
        "auto_vs_final_iou": None if iou is None else round(float(iou), 6),
        "alpha": q.alpha,
        "models": dict(q.models),
        "random_weights": q.random_weights,
        "accepted": q.accepted,
        "created": q.created,
        "updated": q.updated,
    }


def write_sidecar(path: Path, project: Project, plan: ExportPlan, fmt: str,
                  files: dict[int, dict[str, Any]] | None = None) -> Path:
    """Write the sidecar; ``files[id(item)]`` adds format-specific references (annotation id, file)."""
    files = files or {}
    images = []
    for e in plan.images:
        anns = []
        for it in e.items:
            d = item_provenance(it)
            d.update(files.get(id(it), {}))
            anns.append(d)
        images.append({"path": e.image.path, "stem": e.stem, "width": e.image.width,
                       "height": e.image.height, "sha256": e.image.sha256, "annotations": anns})
    doc = {
        "schema": "qmask.provenance", "version": 1, "qmask_version": __version__,
        "format": fmt, "exported": time.time(), "project": str(project.path),
        "random_weights": any(it.record.random_weights for e in plan.images for it in e.items),
        "categories": [c.to_json() for c in plan.categories],
        "skipped": list(plan.skipped),
        "images": images,
    }
    atomic_write_json(path, doc)
    return path
