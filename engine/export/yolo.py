"""YOLO segmentation dataset (Ultralytics layout).

``out/images/<stem><ext>`` (hard links to the originals where possible, else copies),
``out/labels/<stem>.txt`` with one line per connected part of each mask::

    <class> x1 y1 x2 y2 ...        # normalised by the displayed width/height, 6 decimals

``out/classes.txt`` (one name per line, line number = class index) and ``out/data.yaml``.
YOLO has no holes: a part with holes is written as one keyhole polygon (holes joined by a
zero-width cut), which even-odd filling (cv2.fillPoly, as Ultralytics rasterises) leaves empty.
Images without annotations get an empty label file (negative examples).
Coordinates are in the displayed frame; Ultralytics applies EXIF orientation when it reads.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..runtime.atomic import atomic_write_text
from ..imaging.masks import mask_to_keyhole_polygons
from .common import ExportPlan, link_or_copy, prepare_dir


def yolo_lines(plan_image, class_index: dict[int, int], tolerance: float = 0.0) -> list[str]:
    w, h = plan_image.image.width, plan_image.image.height
    lines = []
    for it in plan_image.items:
        cls = class_index[it.category.id]
        for poly in mask_to_keyhole_polygons(it.mask, tolerance):
            coords = [v / (w if k % 2 == 0 else h) for k, v in enumerate(poly)]
            lines.append(f"{cls} " + " ".join(f"{c:.6f}" for c in coords))
    return lines


def export_yolo(plan: ExportPlan, out: Path, final: Path, *, tolerance: float = 0.0,
                copy_images: bool = True) -> list[str]:
    """Write into ``out`` (a staging folder) what will be at ``final``; returns file names."""
    labels = prepare_dir(out / "labels")
    images = prepare_dir(out / "images") if copy_images else None
    class_index = {c.id: i for i, c in enumerate(plan.categories)}
    written: list[str] = []
    for e in plan.loaded():
        lines = yolo_lines(e, class_index, tolerance)
        path = labels / f"{e.stem}.txt"
        atomic_write_text(path, "".join(line + "\n" for line in lines))
        written.append(f"labels/{path.name}")
        if images is not None and e.abs_path.is_file():
            link_or_copy(e.abs_path, images / f"{e.stem}{e.abs_path.suffix.lower()}")
    atomic_write_text(out / "classes.txt", "".join(c.name + "\n" for c in plan.categories))
    names = "".join(f"  {i}: {json.dumps(c.name, ensure_ascii=False)}\n" for i, c in enumerate(plan.categories))
    yaml = (f"# QMask export (YOLO segmentation)\npath: {json.dumps(str(final), ensure_ascii=False)}\n"
            f"train: images\nval: images\nnc: {len(plan.categories)}\nnames:\n{names}")
    atomic_write_text(out / "data.yaml", yaml)
    return written + ["classes.txt", "data.yaml"]
