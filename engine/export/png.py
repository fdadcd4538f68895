"""PNG masks.

- ``out/masks/<stem>__<k>_<label>.png``: one 8-bit grey PNG per annotation, 255 inside, 0 out
  (``k`` counts the image's annotations from 1), at the displayed size.
- ``out/labels/<stem>.png``: one palette PNG per image whose pixel values are class indices:
  0 background, ``i + 1`` for ``classes.txt`` line ``i + 1`` (line 1 is ``background``).
  Where annotations overlap, the later one (in the project's order) wins.
- ``out/classes.txt``: ``background`` then the category names, one per line.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from ..runtime.atomic import atomic_write_bytes, atomic_write_text
from .common import ExportPlan, prepare_dir, unique_stem

# A fixed palette: background black, then well-separated colours (repeats after 20 classes).
_BASE = [(0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
         (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
         (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
         (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128)]


def palette() -> list[int]:
    colours = [_BASE[0]] + [_BASE[1 + (i % (len(_BASE) - 1))] for i in range(255)]
    return [v for rgb in colours for v in rgb]


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def export_png(plan: ExportPlan, out: Path, refs: dict[tuple[int, str], dict[str, str]] | None = None) -> list[str]:
    if len(plan.categories) > 255:
        from ..errors import ExportError

        raise ExportError("PNG label images hold at most 255 classes; this project has "
                          f"{len(plan.categories)}. Export COCO instead.")
    masks_dir = prepare_dir(out / "masks")
    labels_dir = prepare_dir(out / "labels")
    class_value = {c.id: i + 1 for i, c in enumerate(plan.categories)}
    pal = palette()
    written: list[str] = []
    refs = {} if refs is None else refs
    for e in plan.loaded():
        label = np.zeros((e.image.height, e.image.width), np.uint8)
        used: set[str] = set()
        for k, it in enumerate(e.items, start=1):
            name = unique_stem(f"{e.stem}__{k}_{it.category.name}", used)
            path = masks_dir / f"{name}.png"
            atomic_write_bytes(path, _png_bytes(Image.fromarray(it.mask.astype(np.uint8) * 255)))
            written.append(path.relative_to(out).as_posix())
            refs[it.key] = {"mask_png": path.relative_to(out).as_posix()}
            label[it.mask] = class_value[it.category.id]
        # frombytes keeps the values as palette indices (convert("P") would requantise them).
        img = Image.frombytes("P", (e.image.width, e.image.height), label.tobytes())
        img.putpalette(pal)
        path = labels_dir / f"{e.stem}.png"
        atomic_write_bytes(path, _png_bytes(img))
        written.append(path.relative_to(out).as_posix())
    atomic_write_text(out / "classes.txt", "background\n" + "".join(c.name + "\n" for c in plan.categories))
    return written + ["classes.txt"]
