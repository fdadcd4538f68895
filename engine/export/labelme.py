"""LabelMe JSON, one file per image (``out/<stem>.json``), LabelMe 5 layout.

- A mask without holes becomes ``polygon`` shapes, one per connected part, sharing a
  ``group_id`` (LabelMe's way of saying "one instance"). Vertices run along pixel edges, the
  frame LabelMe's canvas draws in.
- A mask with holes becomes one ``mask`` shape (LabelMe >= 5.3): ``points`` are the inclusive
  pixel bounds ``[[x1, y1], [x2, y2]]`` and ``mask`` a base64 PNG of the crop, pixel-exact.
  ``force_mask=True`` writes every annotation that way.
- ``imagePath`` is relative to the JSON file; ``imageData`` is null (LabelMe reads the file).
- The question is in the shape's ``description``; ``flags`` carry ``accepted``.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from PIL import Image

from ..runtime.atomic import atomic_write_json
from ..imaging.masks import mask_has_holes, mask_outlines
from .common import ExportPlan, rel_to

LABELME_VERSION = "5.5.0"


def mask_shape_payload(mask: np.ndarray) -> tuple[list[list[float]], str]:
    """Inclusive pixel bounds and base64 PNG of the cropped mask (LabelMe's ``mask`` shape)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    y1, y2, x1, x2 = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
    crop = mask[y1:y2 + 1, x1:x2 + 1]
    buf = io.BytesIO()
    Image.fromarray(crop.astype(np.uint8) * 255).convert("1").save(buf, format="PNG")
    return [[float(x1), float(y1)], [float(x2), float(y2)]], base64.b64encode(buf.getvalue()).decode("ascii")


def decode_mask_shape(shape: dict, height: int, width: int) -> np.ndarray:
    """A LabelMe ``mask`` shape -> ``[H, W]`` bool (used by tests and any LabelMe import)."""
    (x1, y1), (x2, y2) = shape["points"]
    crop = np.asarray(Image.open(io.BytesIO(base64.b64decode(shape["mask"])))).astype(bool)
    out = np.zeros((height, width), bool)
    out[int(y1):int(y2) + 1, int(x1):int(x2) + 1] = crop
    return out


def labelme_document(plan_image, image_path_rel: str, *, force_mask: bool = False,
                     tolerance: float = 0.0) -> dict:
    shapes = []
    for group, it in enumerate(plan_image.items, start=1):
        common = {"label": it.category.name, "group_id": group, "description": it.question or "",
                  "flags": {"accepted": bool(it.obj.accepted)}}
        if force_mask or mask_has_holes(it.mask):
            points, png = mask_shape_payload(it.mask)
            shapes.append({**common, "points": points, "shape_type": "mask", "mask": png})
        else:
            for outline in mask_outlines(it.mask, tolerance):
                pts = outline.outer.tolist()
                shapes.append({**common, "points": pts, "shape_type": "polygon", "mask": None})
    return {"version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": image_path_rel,
            "imageData": None, "imageHeight": plan_image.image.height, "imageWidth": plan_image.image.width}


def export_labelme(plan: ExportPlan, out: Path, final: Path, *, force_mask: bool = False,
                   tolerance: float = 0.0) -> list[str]:
    """Write into ``out`` (a staging folder) what will be at ``final``; returns file names."""
    written = []
    for e in plan.loaded():
        path = out / f"{e.stem}.json"
        atomic_write_json(path, labelme_document(e, rel_to(e.abs_path, final), force_mask=force_mask,
                                                 tolerance=tolerance), indent=1)
        written.append(path.name)
    return written
