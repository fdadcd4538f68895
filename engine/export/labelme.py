"""LabelMe JSON, one file per image, where labelme looks for it and in the convention it reads.

- Names: ``<image stem>.json`` in the image's subfolder below the images' common folder, so
  ``labelme IMAGES_FOLDER --output OUT`` finds each image's annotations (labelme 7 looks for
  ``<stem>.json`` in the mirrored subfolder, then ``<image name>.json``, which a second image
  with the same stem in a folder gets). ``imagePath`` is the image relative to the JSON file
  (labelme checks that it is that image). Self-contained: the image is copied beside its JSON.
- Every annotation is one instance: ``polygon`` shapes, one per connected part, sharing a
  ``group_id`` (labelme's ``shapes_to_label`` and supervision merge a label's shapes by it).
  Vertices are integer pixel centres (:func:`engine.imaging.centre_polygons.centre_parts`):
  labelme's ``shape_to_mask`` (PIL ``ImageDraw.polygon`` with ``outline=1, fill=1``) and
  supervision (``cv2.fillPoly`` after rounding) both give the mask back pixel for pixel, a
  hole kept by a zero-width cut through the part's own pixels, a 1-px line or a single pixel
  as a polygon of at least three (repeated) vertices.
- ``force_mask=True`` writes ``mask`` shapes instead (LabelMe >= 5.3): ``points`` are the
  inclusive pixel bounds ``[[x1, y1], [x2, y2]]`` and ``mask`` a base64 PNG of the crop,
  pixel-exact in labelme, but skipped by supervision, which reads polygons and rectangles only.
- ``imageData`` is null (labelme reads the file and applies its EXIF orientation, which is
  the frame of ``imageWidth``/``imageHeight`` and of the points).
- The question that proposed the object is in the shape's ``description`` (empty for a manual or
  imported object); ``flags`` carry ``accepted``.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from ..imaging.centre_polygons import centre_parts
from ..runtime.atomic import atomic_write_json
from .common import ExportImage, ExportPlan, rel_to
from .layout import Layout, labelme_json_paths

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
    """A LabelMe ``mask`` shape -> ``[H, W]`` bool, placed as labelme's ``shapes_to_label`` does."""
    points = np.asarray(shape["points"], dtype=np.float64)
    (x1, y1), _ = np.round(points).astype(int)
    crop = np.asarray(Image.open(io.BytesIO(base64.b64decode(shape["mask"])))).astype(bool)
    if crop.ndim == 3:
        crop = crop.any(axis=2)
    if np.array_equal(points, np.trunc(points)):  # integer bounds: labelme crops to them
        (x2, y2) = points[1].astype(int)
        crop = crop[:y2 - y1 + 1, :x2 - x1 + 1]
    out = np.zeros((height, width), bool)
    ys, xs = max(y1, 0), max(x1, 0)
    ye, xe = min(y1 + crop.shape[0], height), min(x1 + crop.shape[1], width)
    if ys < ye and xs < xe:
        out[ys:ye, xs:xe] = crop[ys - y1:ye - y1, xs - x1:xe - x1]
    return out


def labelme_document(plan_image: ExportImage, image_path_rel: str, *, force_mask: bool = False,
                     tolerance: float = 0.0) -> dict:
    shapes = []
    for group, it in enumerate(plan_image.items, start=1):
        common = {"label": it.category.name, "group_id": group, "description": it.question or "",
                  "flags": {"accepted": bool(it.obj.accepted)}}
        if force_mask:
            points, png = mask_shape_payload(it.mask)
            shapes.append({**common, "points": points, "shape_type": "mask", "mask": png})
        else:
            for polygon in centre_parts(it.mask, tolerance):
                shapes.append({**common, "points": polygon.tolist(), "shape_type": "polygon", "mask": None})
    return {"version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": image_path_rel,
            "imageData": None, "imageHeight": plan_image.image.height, "imageWidth": plan_image.image.width}


def export_labelme(plan: ExportPlan, out: Path, final: Path, layout: Layout, *, force_mask: bool = False,
                   tolerance: float = 0.0, refs: dict[tuple[int, str], dict[str, Any]] | None = None) -> list[str]:
    """Write into ``out`` (a staging folder) what will be at ``final``; returns file names."""
    written = []
    refs = {} if refs is None else refs
    in_place = {} if layout.self_contained else labelme_json_paths(plan)
    for e in plan.loaded():
        if layout.self_contained:
            image_rel = layout.copy_image(e, out, "")
            rel = str(PurePosixPath(image_rel).with_name(layout.image_stem(e) + ".json"))
            image_path = PurePosixPath(image_rel).name
        else:
            rel = in_place[int(e.image.id or 0)]
            image_path = rel_to(e.abs_path, (final / rel).parent)
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, labelme_document(e, image_path, force_mask=force_mask, tolerance=tolerance),
                          indent=1)
        written.append(rel)
        layout.note(e, annotations=rel)
        for group, it in enumerate(e.items, start=1):
            refs[it.key] = {"labelme_file": rel, "labelme_group_id": group}
    return written
