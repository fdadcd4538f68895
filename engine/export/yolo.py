"""YOLO segmentation dataset (Ultralytics layout), in the convention Ultralytics reads.

Layout: ``images/[SPLIT/]<name>`` (without ``self_contained``: hard links to the originals
where possible, else copies), ``labels/[SPLIT/]<image stem>.txt`` (Ultralytics finds a label
by swapping ``images`` for ``labels`` in the image's path), ``classes.txt`` (one name per line,
line number = class index) and ``data.yaml``. ``data.yaml`` has no ``path``: Ultralytics
then takes the file's own folder as the dataset root, so the folder can be moved or copied.

Each annotation is one row, ``<class> x1 y1 x2 y2 ...``: YOLO has one polygon per instance
and no holes, so the mask's parts and holes are joined into one polygon by zero-width bridges
(:func:`engine.imaging.centre_polygons.centre_polygon`; a bridge between parts adds the
background pixels it crosses, as in Ultralytics' own COCO converter). ``split_parts`` writes
one row per connected part instead (holes still joined): every pixel exact, but each part
reads as an instance of its own (for speckled masks, where bridges would add many pixels). The polygon runs
through pixel centres, which is how Ultralytics (``polygon2mask``: ``cv2.fillPoly`` after an
``int32`` cast) and supervision (``cv2.fillPoly`` after rounding) fill it. Every row has at
least three vertices (a 1-px line or a single pixel repeats them), since Ultralytics takes a
row of fewer than 7 numbers for a box.

Coordinates are normalised by the displayed width/height and written as ``(c + 0.25) / W``
for pixel centre ``c``: read back in float32 and multiplied by ``W``, that lands a quarter
pixel inside pixel ``c``, so an ``int32`` cast and rounding both give ``c`` (written at ``c``
itself, float32 reads about half the vertices just below the integer, and the cast moves
them a pixel). Enough decimals are written to keep that margin on large images.
Images without annotations get an empty label file (negative examples). Ultralytics and
supervision apply the EXIF orientation when they read an image, so linked originals agree.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..imaging.centre_polygons import centre_parts, centre_polygon
from ..runtime.atomic import atomic_write_text
from .common import ExportImage, ExportPlan, link_or_copy, prepare_dir
from .layout import Layout

QUARTER = 0.25  # where in its pixel a written vertex lands


def coordinate_digits(size: int) -> int:
    """Decimals for coordinates normalised by ``size`` pixels: 6 (Ultralytics' own), more on
    images over 10,000 pixels, so that rounding to them moves a vertex by at most 0.05 pixel."""
    return max(6, math.ceil(math.log10(max(int(size), 1) * 10)))


def yolo_row(cls: int, polygon: np.ndarray, width: int, height: int) -> str:
    """One label row: ``polygon`` ``[N, 2]`` integer (x, y) pixel centres, normalised."""
    p = np.asarray(polygon, dtype=np.float64) + QUARTER
    xs, ys = p[:, 0] / width, p[:, 1] / height
    dx, dy = coordinate_digits(width), coordinate_digits(height)
    return f"{cls} " + " ".join(f"{x:.{dx}f} {y:.{dy}f}" for x, y in zip(xs.tolist(), ys.tolist()))


def row_digest(row: str) -> str:
    """A short hash of a label row, kept in the provenance file: an import takes the row's
    question and answer from there only while the row is as QMask wrote it."""
    return hashlib.sha1(row.strip().encode("utf-8")).hexdigest()[:12]


def yolo_lines(plan_image: ExportImage, class_index: dict[int, int], tolerance: float = 0.0,
               split_parts: bool = False) -> list[list[str]]:
    """Each item's rows: one (its parts joined), or with ``split_parts`` one per connected part
    (every pixel exact, but a reader counts each part as an instance of its own)."""
    w, h = int(plan_image.image.width), int(plan_image.image.height)  # type: ignore[arg-type]
    out = []
    for it in plan_image.items:
        cls = class_index[it.category.id]
        polygons = centre_parts(it.mask, tolerance) if split_parts else [centre_polygon(it.mask, tolerance)]
        out.append([yolo_row(cls, polygon, w, h) for polygon in polygons if polygon is not None])
    return out


def data_yaml(plan: ExportPlan, layout: Layout) -> str:
    names = "".join(f"  {i}: {json.dumps(c.name, ensure_ascii=False)}\n" for i, c in enumerate(plan.categories))
    if layout.is_split:
        splits = "train: images/train\nval: images/val\n" if "val" in layout.splits else "train: images/train\nval: images/train\n"
    else:
        splits = "train: images\nval: images\n"
    return ("# QMask export (YOLO segmentation). No 'path' key: Ultralytics takes this file's folder as the\n"
            "# dataset root, so the folder can be moved or copied.\n"
            f"{splits}nc: {len(plan.categories)}\nnames:\n{names}")


def export_yolo(plan: ExportPlan, out: Path, layout: Layout, *, tolerance: float = 0.0, link_images: bool = True,
                refs: dict[tuple[int, str], dict[str, Any]] | None = None, split_parts: bool = False) -> list[str]:
    """Write into ``out`` (a staging folder) the dataset; returns file names (relative to ``out``)."""
    class_index = {c.id: i for i, c in enumerate(plan.categories)}
    written: list[str] = []
    refs = {} if refs is None else refs
    for e in plan.loaded():
        label_dir = layout.folder("labels", e)
        rel = f"{label_dir}/{layout.image_stem(e)}.txt"
        prepare_dir(out / label_dir)
        per_item = yolo_lines(e, class_index, tolerance, split_parts)
        atomic_write_text(out / rel, "".join(line + "\n" for rows in per_item for line in rows))
        written.append(rel)
        layout.note(e, labels=rel)
        row = 1
        for it, rows in zip(e.items, per_item):
            refs[it.key] = {"yolo_label": rel, "yolo_row": row, "yolo_rows": len(rows),
                            "yolo_row_sha1": row_digest(rows[0])}
            row += len(rows)
        if layout.self_contained:
            written.append(layout.copy_image(e, out, "images"))
        elif link_images and e.abs_path.is_file():
            image_rel = f"images/{layout.image_name(e)}"
            link_or_copy(e.abs_path, prepare_dir(out / "images") / layout.image_name(e))
            layout.note(e, image=image_rel)
    atomic_write_text(out / "classes.txt", "".join(c.name + "\n" for c in plan.categories))
    atomic_write_text(out / "data.yaml", data_yaml(plan, layout))
    return written + ["classes.txt", "data.yaml"]
