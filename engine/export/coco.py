"""COCO instances JSON.

- ``images[].file_name`` is relative to the folder that holds all exported images
  (``info.qmask.images_root``); width/height as displayed (EXIF applied).
- ``segmentation`` is compressed RLE (``counts`` a string), pixel-exact, with ``iscrowd`` 0:
  pycocotools' ``annToRLE``/``annToMask`` take RLE whatever ``iscrowd`` says, and evaluation
  treats ``iscrowd`` 1 as "ignore region", which these are not.
- With ``polygons=True``: one polygon per connected part, holes joined to the outer boundary
  by a zero-width cut (keyhole, :func:`engine.imaging.masks.mask_to_keyhole_polygons`). Polygons run
  along pixel edges, so pycocotools rasterises them back to the same pixels, holes included.
- ``area`` is the mask's pixel count, ``bbox`` its ``[x, y, w, h]``.
- ``annotations[].id`` is the object's id in the project: the same object keeps its id from one
  export to the next. ``annotations[].attributes`` holds the question, answer and acceptance
  (CVAT-style extra field, ignored by pycocotools), so an import can restore them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..runtime.atomic import atomic_writer
from ..imaging.masks import mask_to_keyhole_polygons, rle_area, rle_bbox
from ..project import Project
from .common import ExportPlan, rel_to


def _annotation(it: Any, ann_id: int, image_id: int, polygons: bool, tolerance: float) -> dict:
    q = it.obj
    if polygons:
        segmentation: Any = mask_to_keyhole_polygons(it.mask, tolerance)
    else:
        segmentation = {"size": list(q.mask_rle["size"]), "counts": q.mask_rle["counts"]}  # stored RLE as is
    return {"id": ann_id, "image_id": image_id, "category_id": it.category.id,
            "segmentation": segmentation, "area": rle_area(q.mask_rle), "bbox": rle_bbox(q.mask_rle),
            "iscrowd": 0, "attributes": {"question": it.question, "answer": it.answer, "accepted": bool(q.accepted)}}


def export_coco(project: Project, plan: ExportPlan, out: Path, *, polygons: bool = False,
                tolerance: float = 0.0, refs: dict[tuple[int, str], dict[str, Any]] | None = None
                ) -> dict[tuple[int, str], dict[str, Any]]:
    """Write the COCO JSON to ``out``, streamed: annotations as their records are read, then
    the image list and categories (small). Returns per annotation its COCO ids (for the sidecar)."""
    refs = {} if refs is None else refs
    info = {"description": f"QMask export of {project.path.name}", "version": "1.0",
            "year": time.gmtime().tm_year, "date_created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "contributor": f"QMask {__version__}",
            "qmask": {"images_root": str(plan.images_root), "segmentation": "polygon" if polygons else "rle"}}
    enc = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    images = []
    written = 0
    with atomic_writer(out) as f:
        f.write('{"info":' + enc.encode(info) + ',"licenses":[],"annotations":[')
        for image_id, e in enumerate(plan.loaded(), start=1):
            images.append({"id": image_id, "file_name": rel_to(e.abs_path, plan.images_root),
                           "width": e.image.width, "height": e.image.height})
            for it in e.items:
                ann_id = it.ann_id
                f.write(("," if written else "") + enc.encode(_annotation(it, ann_id, image_id, polygons, tolerance)))
                written += 1
                refs[it.key] = {"coco_annotation_id": ann_id, "coco_image_id": image_id}
        f.write('],"images":' + enc.encode(images) + ',"categories":'
                + enc.encode([{"id": c.id, "name": c.name, "supercategory": c.name} for c in plan.categories]) + "}")
    return refs
