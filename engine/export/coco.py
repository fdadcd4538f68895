"""COCO instances JSON.

- ``images[].file_name`` is relative to the folder that holds all exported images
  (``info.qmask.images_root``); width/height as displayed (EXIF applied).
- ``segmentation`` is compressed RLE (``counts`` a string), pixel-exact, with ``iscrowd`` 0:
  pycocotools' ``annToRLE``/``annToMask`` take RLE whatever ``iscrowd`` says, and evaluation
  treats ``iscrowd`` 1 as "ignore region", which these are not.
- With ``polygons=True``: one polygon per connected part, holes joined to the outer boundary
  by a zero-width cut (keyhole, :func:`engine.masks.mask_to_keyhole_polygons`). Polygons run
  along pixel edges, so pycocotools rasterises them back to the same pixels, holes included.
- ``area`` is the mask's pixel count, ``bbox`` its ``[x, y, w, h]``.
- ``annotations[].attributes`` holds the question, answer and acceptance (CVAT-style extra
  field, ignored by pycocotools), so an import can restore the questions.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..atomic import atomic_write_json
from ..masks import encode_rle, mask_area, mask_bbox, mask_to_keyhole_polygons
from ..project import Project
from .common import ExportPlan, rel_to


def coco_document(project: Project, plan: ExportPlan, *, polygons: bool = False,
                  tolerance: float = 0.0, refs: dict[int, dict[str, Any]] | None = None) -> dict:
    images, annotations = [], []
    ann_id = 0
    for image_id, e in enumerate(plan.images, start=1):
        images.append({"id": image_id, "file_name": rel_to(e.abs_path, plan.images_root),
                       "width": e.image.width, "height": e.image.height})
        for it in e.items:
            ann_id += 1
            if polygons:
                segmentation: Any = mask_to_keyhole_polygons(it.mask, tolerance)
            else:
                segmentation = encode_rle(it.mask)
            q = it.record
            annotations.append({
                "id": ann_id, "image_id": image_id, "category_id": it.category.id,
                "segmentation": segmentation, "area": mask_area(it.mask), "bbox": mask_bbox(it.mask),
                "iscrowd": 0,
                "attributes": {"question": q.question, "answer": q.answer, "accepted": q.accepted},
            })
            if refs is not None:
                refs[id(it)] = {"coco_annotation_id": ann_id, "coco_image_id": image_id}
    return {
        "info": {"description": f"QMask export of {project.path.name}", "version": "1.0",
                 "year": time.gmtime().tm_year, "date_created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "contributor": f"QMask {__version__}",
                 "qmask": {"images_root": str(plan.images_root), "segmentation": "polygon" if polygons else "rle"}},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c.id, "name": c.name, "supercategory": c.name} for c in plan.categories],
    }


def export_coco(project: Project, plan: ExportPlan, out: Path, *, polygons: bool = False,
                tolerance: float = 0.0) -> tuple[Path, dict[int, dict[str, Any]]]:
    """Write the COCO JSON to ``out`` (a ``.json`` file, or a folder -> ``annotations.json``)."""
    refs: dict[int, dict[str, Any]] = {}
    doc = coco_document(project, plan, polygons=polygons, tolerance=tolerance, refs=refs)
    atomic_write_json(out, doc, indent=None)
    return out, refs
