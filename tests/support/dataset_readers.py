"""How the tools people train and inspect with read our exports, for the readers that cannot be
installed in the test extra (their documented rasterisation, copied from their source):

- Ultralytics 8.4 (pulls opencv-python, which clobbers opencv-python-headless):
  ``verify_image_label`` parses a row as float32, the dataset multiplies by the image size in
  float32, and ``polygon2mask`` casts to int32 and fills with ``cv2.fillPoly``; a row of fewer
  than 7 numbers is a box, not a polygon.
- labelme 7.9 (needs Python 3.12): ``shape_to_mask`` draws a polygon with PIL's
  ``ImageDraw.polygon(xy, outline=1, fill=1)``; ``shapes_to_label`` merges the shapes of one
  ``(label, group_id)`` into one instance and places ``mask`` shapes at their rounded top-left.
- labelme's file look-up: ``<output>/<image subfolder>/<image stem>.json``, then
  ``<image name>.json``, whose ``imagePath`` must name that image.

supervision (a real reader, in the test extra) and pycocotools/torchvision are used directly.
"""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import PIL.ImageDraw


def ultralytics_rows(text: str) -> list[tuple[int, np.ndarray]]:
    """A label file's rows as Ultralytics reads them: (class, ``[N, 2]`` float32 normalised)."""
    rows = [x.split() for x in text.strip().splitlines() if x.strip()]
    assert all(len(x) > 6 for x in rows), "a row of fewer than 7 numbers reads as a box"
    return [(int(np.float32(x[0])), np.array(x[1:], dtype=np.float32).reshape(-1, 2)) for x in rows]


def ultralytics_mask(segment: np.ndarray, width: int, height: int) -> np.ndarray:
    """``polygon2mask`` of one denormalised segment (float32 multiply, int32 cast, fillPoly)."""
    seg = segment.copy()
    seg[:, 0] *= np.float32(width)
    seg[:, 1] *= np.float32(height)
    mask = np.zeros((height, width), dtype=np.uint8)
    polygons = np.asarray([seg.reshape(-1)], dtype=np.int32).reshape((1, -1, 2))
    cv2.fillPoly(mask, polygons, color=1)
    return mask.astype(bool)


def ultralytics_instances(label_file: Path, width: int, height: int) -> list[tuple[int, np.ndarray]]:
    return [(c, ultralytics_mask(s, width, height)) for c, s in ultralytics_rows(label_file.read_text())]


def labelme_shape_to_mask(img_shape: tuple[int, int], points: list, shape_type: str | None = None) -> np.ndarray:
    """labelme 7.9.1 ``labelme/_utils/_mask.py`` shape_to_mask, polygon and rectangle branches."""
    mask = PIL.Image.fromarray(np.zeros(img_shape[:2], dtype=np.uint8))
    draw = PIL.ImageDraw.Draw(mask)
    xy = [tuple(point) for point in points]
    if shape_type == "rectangle":
        (x0, y0), (x1, y1) = xy
        draw.rectangle(((min(x0, x1), min(y0, y1)), (max(x0, x1), max(y0, y1))), outline=1, fill=1)
    else:
        assert shape_type in (None, "polygon") and len(xy) >= 3, "Polygon must have points more than 2"
        draw.polygon(xy=xy, outline=1, fill=1)
    return np.array(mask, dtype=bool)


def labelme_mask_shape(shape: dict, height: int, width: int) -> np.ndarray:
    """labelme 7.9.1 ``shapes_to_label``'s placement of a ``mask`` shape."""
    patch = np.array(PIL.Image.open(io.BytesIO(base64.b64decode(shape["mask"])))).astype(bool)
    mask = np.zeros((height, width), dtype=bool)
    point_array = np.asarray(shape["points"])
    (x1, y1), (x2, y2) = point_array.round().astype(int)
    if np.array_equal(point_array, np.trunc(point_array)):
        ph, pw = y2 - y1 + 1, x2 - x1 + 1
    else:
        ph, pw = patch.shape
    ys, ye, xs, xe = max(y1, 0), min(y1 + ph, height), max(x1, 0), min(x1 + pw, width)
    if ys < ye and xs < xe:
        mask[ys:ye, xs:xe] = patch[ys - y1:ye - y1, xs - x1:xe - x1]
    return mask


def labelme_instances(doc: dict) -> list[tuple[str, str, np.ndarray]]:
    """(label, description, mask) per instance, shapes merged by (label, group_id)."""
    h, w = doc["imageHeight"], doc["imageWidth"]
    out: dict[tuple, list] = {}
    for k, shape in enumerate(doc["shapes"]):
        key = (shape["label"], shape.get("group_id") if shape.get("group_id") is not None else f"_{k}")
        if shape["shape_type"] == "mask":
            m = labelme_mask_shape(shape, h, w)
        else:
            m = labelme_shape_to_mask((h, w), shape["points"], shape["shape_type"])
        if key in out:
            out[key][2] |= m
        else:
            out[key] = [shape["label"], shape.get("description", ""), m]
    return [tuple(v) for v in out.values()]  # type: ignore[misc]


def labelme_label_file(image: Path, output_dir: Path | None = None, root: Path | None = None) -> Path | None:
    """Where labelme 7.9.1 finds ``image``'s annotations when it opens ``root`` (the folder)
    with ``--output output_dir`` (or without, beside the image); None when it finds none."""
    parent = image.parent
    if output_dir is not None:
        rel = Path(os.path.relpath(image, root)) if root is not None else Path(image.name)
        parent = output_dir / rel.parent
    for candidate in (parent / f"{image.stem}.json", parent / f"{image.name}.json"):
        if candidate.is_file():
            stored = candidate.parent / json.loads(candidate.read_text(encoding="utf-8"))["imagePath"]
            if stored.exists() and os.path.samefile(stored, image):
                return candidate
    return None
