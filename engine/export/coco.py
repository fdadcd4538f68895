"""COCO instances JSON.

- ``images[].file_name``: without copied images, relative to the folder that holds all
  exported images (``info.qmask.images_root``); in a self-contained export, the file's name in
  ``images/[SPLIT/]`` (``info.qmask.images_root`` is then that folder, relative to the JSON
  file), the layout datumaro, torchvision's ``CocoDetection`` and pycocotools read.
  width/height as displayed (EXIF applied; the self-contained copies are written upright).
- ``segmentation`` is compressed RLE (``counts`` a string), pixel-exact, with ``iscrowd`` 0:
  pycocotools' ``annToRLE``/``annToMask`` take RLE whatever ``iscrowd`` says, and evaluation
  treats ``iscrowd`` 1 as "ignore region", which these are not.
- With ``polygons=True``: one polygon per connected part, holes joined to the outer boundary
  by a zero-width cut (keyhole, :func:`engine.imaging.masks.mask_to_keyhole_polygons`). Polygons run
  along pixel *edges* (corner convention), which is what pycocotools rasterises exactly (it
  fills a pixel when its centre is inside), holes included.
- ``area`` is the mask's pixel count, ``bbox`` its ``[x, y, w, h]``.
- ``annotations[].id`` is the object's id in the project: the same object keeps its id from one
  export to the next (and ids are unique across the split files of one export).
- Each annotation's ``qmask`` field holds the question that proposed the object, its run's
  answer and the acceptance, so an import can restore them; pycocotools, torchvision and
  datumaro ignore it. ``attributes`` (CVAT's field for the same) is written only when asked:
  datumaro reads it and its validators report each key as an undefined attribute.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from .. import __version__
from ..imaging.masks import mask_to_keyhole_polygons, rle_area, rle_bbox
from ..project import Project
from ..runtime.atomic import atomic_writer
from .common import ExportPlan, rel_to
from .grounded_vqa import GROUNDED_SUFFIX, grounded_line, grounded_questions
from .layout import Layout


def _annotation(it: Any, ann_id: int, image_id: int, polygons: bool, tolerance: float, attributes: bool) -> dict:
    q = it.obj
    if polygons:
        segmentation: Any = mask_to_keyhole_polygons(it.mask, tolerance)
    else:
        segmentation = {"size": list(q.mask_rle["size"]), "counts": q.mask_rle["counts"]}  # stored RLE as is
    extra = {"question": it.question, "answer": it.answer, "accepted": bool(q.accepted)}
    ann = {"id": ann_id, "image_id": image_id, "category_id": it.category.id,
           "segmentation": segmentation, "area": rle_area(q.mask_rle), "bbox": rle_bbox(q.mask_rle),
           "iscrowd": 0, "qmask": extra}
    if attributes:
        ann["attributes"] = dict(extra)
    return ann


def export_coco(project: Project, plan: ExportPlan, outs: dict[str, Path], layout: Layout, *,
                polygons: bool = False, tolerance: float = 0.0,
                refs: dict[tuple[int, str], dict[str, Any]] | None = None, attributes: bool = False,
                root: Path | None = None, grounded_vqa: bool = False) -> dict[tuple[int, str], dict[str, Any]]:
    """Write one COCO JSON per split (``outs``: split name -> file), streamed: annotations as
    their records are read, then the image lists and categories (small). A self-contained
    ``layout`` copies each image into ``root/images[/SPLIT]``; ``grounded_vqa`` also writes each
    file's questions as JSON Lines beside it (:mod:`engine.export.grounded_vqa`). Returns per
    annotation its COCO ids and file (for the provenance file)."""
    refs = {} if refs is None else refs
    root = next(iter(outs.values())).parent if root is None else root
    enc = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    cats = enc.encode([{"id": c.id, "name": c.name, "supercategory": c.name} for c in plan.categories])
    images: dict[str, list[dict]] = {s: [] for s in outs}
    counts = {s: 0 for s in outs}
    with ExitStack() as stack:
        files, vqa = {}, {}
        for split, path in outs.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            f = files[split] = stack.enter_context(atomic_writer(path))
            if grounded_vqa:
                vqa[split] = stack.enter_context(atomic_writer(path.with_name(path.stem + GROUNDED_SUFFIX)))
            if layout.self_contained:
                images_root = "../images" + (f"/{split}" if layout.is_split else "")
            else:
                images_root = str(plan.images_root)
            info = {"description": f"QMask export of {project.path.name}", "version": "1.0",
                    "year": time.gmtime().tm_year, "date_created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "contributor": f"QMask {__version__}",
                    "qmask": {"images_root": images_root, "segmentation": "polygon" if polygons else "rle"}}
            f.write('{"info":' + enc.encode(info) + ',"licenses":[],"annotations":[')
        for image_id, e in enumerate(plan.loaded(), start=1):
            split = layout.split(e)
            f = files[split]
            if layout.self_contained:
                layout.copy_image(e, root, "images")
                file_name = layout.image_name(e)
            else:
                file_name = rel_to(e.abs_path, plan.images_root)
            layout.note(e, annotations=outs[split].relative_to(root).as_posix())
            entry = {"id": image_id, "file_name": file_name, "width": e.image.width, "height": e.image.height}
            images[split].append(entry)
            line = grounded_line(entry, grounded_questions(e)) if grounded_vqa else None
            if line is not None:
                vqa[split].write(enc.encode(line) + "\n")
            for it in e.items:
                ann_id = it.ann_id
                f.write(("," if counts[split] else "") + enc.encode(
                    _annotation(it, ann_id, image_id, polygons, tolerance, attributes)))
                counts[split] += 1
                refs[it.key] = {"coco_annotation_id": ann_id, "coco_image_id": image_id}
        for split, f in files.items():
            f.write('],"images":' + enc.encode(images[split]) + ',"categories":' + cats + "}")
    return refs
