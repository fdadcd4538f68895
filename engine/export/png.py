"""PNG masks.

- ``out/masks/[SPLIT/]<stem>__<k>_<label>.png``: one 8-bit grey PNG per annotation, 255
  inside, 0 out (``k`` counts the image's annotations from 1), at the displayed size;
  ``<stem>`` is the image's file stem (made unique), ``<label>`` the category name with
  characters unsafe in file names replaced by ``_``.
- ``out/labels/[SPLIT/]<stem>.png``: one palette PNG per image whose pixel values are class
  indices: 0 background, ``i + 1`` for ``classes.txt`` line ``i + 1`` (line 1 is
  ``background``). Where annotations overlap, the later one (in the project's order) wins.
- ``out/classes.txt``: ``background`` then the category names, one per line.
- Self-contained: the images (upright) in ``out/images/[SPLIT/]``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from ..runtime.atomic import atomic_write_bytes, atomic_write_text
from .common import ExportPlan, prepare_dir
from .layout import Layout, fit_name, safe_file_name

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


def export_png(plan: ExportPlan, out: Path, layout: Layout,
               refs: dict[tuple[int, str], dict[str, str]] | None = None) -> list[str]:
    if len(plan.categories) > 255:
        from ..errors import ExportError

        raise ExportError("PNG label images hold at most 255 classes; this project has "
                          f"{len(plan.categories)}. Export COCO instead.")
    class_value = {c.id: i + 1 for i, c in enumerate(plan.categories)}
    pal = palette()
    written: list[str] = []
    refs = {} if refs is None else refs
    for e in plan.loaded():
        stem = layout.image_stem(e)
        masks_dir = layout.folder("masks", e)
        prepare_dir(out / masks_dir)
        label = np.zeros((e.image.height, e.image.width), np.uint8)
        for k, it in enumerate(e.items, start=1):
            rel = f"{masks_dir}/{fit_name(f'{stem}__{k}_{safe_file_name(it.category.name)}.png')}"
            atomic_write_bytes(out / rel, _png_bytes(Image.fromarray(it.mask.astype(np.uint8) * 255)))
            written.append(rel)
            refs[it.key] = {"mask_png": rel}
            label[it.mask] = class_value[it.category.id]
        # frombytes keeps the values as palette indices (convert("P") would requantise them).
        img = Image.frombytes("P", (e.image.width, e.image.height), label.tobytes())
        img.putpalette(pal)
        labels_dir = layout.folder("labels", e)
        prepare_dir(out / labels_dir)
        rel = f"{labels_dir}/{stem}.png"
        atomic_write_bytes(out / rel, _png_bytes(img))
        written.append(rel)
        layout.note(e, labels=rel)
        if layout.self_contained:
            written.append(layout.copy_image(e, out, "images"))
    atomic_write_text(out / "classes.txt", "background\n" + "".join(c.name + "\n" for c in plan.categories))
    return written + ["classes.txt"]
