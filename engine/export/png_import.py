"""Import PNG instance masks: QMask's PNG layout, or any folder of per-instance masks named
the same way.

- ``masks/[SPLIT/]<image stem>__<k>_<label>.png``: one mask per instance, non-zero inside,
  at the image's displayed size; ``k`` orders an image's instances, ``<label>`` is the class
  (matched to ``classes.txt`` with the characters unsafe in file names replaced by ``_``, as
  the export writes it; ``classes.txt``'s first line ``background`` is not a class).
- The images: ``images_dir``, else ``images/`` in the dataset (a self-contained export), else
  the paths QMask's own provenance file recorded; each found by its stem (and split folder).
  Masks whose image is not found are still imported, with their image pending a relocation
  (``<stem>`` + the extension of the provenance's path, or ``.png``).
- From QMask's own export, each mask gets its question, answer and acceptance back.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExportError
from ..project.class_lists import read_class_list
from .imported import ImportedDataset, ImportedImage, ImportedInstance
from .layout import safe_file_name
from .reading import list_images, provenance_annotations

__all__ = ["read_png_masks", "MASK_NAME"]

MASK_NAME = re.compile(r"^(?P<stem>.+)__(?P<k>\d+)_(?P<label>.*)$")


def read_png_masks(source: str | os.PathLike[str], images_dir: str | os.PathLike[str] | None = None) -> ImportedDataset:
    """Read and check a folder of PNG instance masks whole (nothing is written)."""
    from PIL import Image

    root = Path(source).expanduser().absolute()
    masks_dir = root / "masks"
    if not masks_dir.is_dir():
        raise ExportError(f"{root} has no masks/ folder (PNG instance masks: masks/<image stem>__<k>_<label>.png).")
    classes: list[str] = []
    if (root / "classes.txt").is_file():
        classes = read_class_list(root / "classes.txt")
        if classes and classes[0] == "background":
            classes = classes[1:]
    by_safe = {safe_file_name(c): c for c in classes}
    images = _image_index(root, images_dir)
    provenance = provenance_annotations(root)
    known = {a.get("mask_png"): a for a in provenance if a.get("mask_png")}
    sources = {(_split_folder(a["_image"].get("split")), a["_image"].get("stem")): Path(a["_image"]["source"])
               for a in provenance if isinstance(a["_image"].get("source"), str)}
    dataset = ImportedDataset(format="png", categories=list(classes))
    by_image: dict[tuple[str, str], ImportedImage] = {}
    for path in sorted(masks_dir.rglob("*.png"), key=lambda p: _order(p, masks_dir)):
        rel = path.relative_to(root).as_posix()
        m = MASK_NAME.match(path.stem)
        if m is None:
            raise ExportError(f"{path}: not named <image stem>__<k>_<label>.png.")
        split = _split_folder(path.parent.relative_to(masks_dir).as_posix())
        stem, label = m.group("stem"), m.group("label")
        category = by_safe.get(label, label)
        if category not in dataset.categories:
            dataset.categories.append(category)
        try:
            with Image.open(path) as im:
                arr = np.asarray(im)
        except (OSError, ValueError) as err:
            raise ExportError(f"{path} is not a readable PNG: {err}.") from err
        mask = arr.any(axis=2) if arr.ndim == 3 else arr != 0
        key = (split, stem)
        image = by_image.get(key)
        if image is None:
            found = images.get(key) or images.get(("", stem)) or sources.get(key)
            if found is None:
                found = root / "images" / split / f"{stem}.png"
            image = by_image[key] = ImportedImage(path=found, width=mask.shape[1], height=mask.shape[0],
                                                  source=rel, name=found.name)
            dataset.images.append(image)
        if (mask.shape[1], mask.shape[0]) != (image.width, image.height):
            raise ExportError(f"{path} is {mask.shape[1]}x{mask.shape[0]} but the other masks of {stem} are "
                              f"{image.width}x{image.height}.")
        if not mask.any():
            dataset.skipped.append(f"{rel}: an empty mask")
            continue
        attrs: dict[str, Any] = {"source": rel}
        mine = known.get(rel)
        if mine is not None:
            attrs.update({k: mine.get(k) for k in ("question", "answer", "accepted")})
        image.instances.append(ImportedInstance.from_mask(mask, category, attrs))
    labels_dir = root / "labels"
    for path in sorted(labels_dir.rglob("*.png")) if labels_dir.is_dir() else []:
        key = (_split_folder(path.parent.relative_to(labels_dir).as_posix()), path.stem)
        if key in by_image:
            continue
        try:  # an image without instances (a negative example): its label image gives the size
            with Image.open(path) as im:
                w, h = im.size
        except (OSError, ValueError) as err:
            raise ExportError(f"{path} is not a readable PNG: {err}.") from err
        found = images.get(key) or images.get(("", key[1])) or sources.get(key) or root / "images" / key[0] / f"{key[1]}.png"
        by_image[key] = ImportedImage(path=found, width=w, height=h, source=path.relative_to(root).as_posix(),
                                      name=found.name)
        dataset.images.append(by_image[key])
    if not dataset.images:
        raise ExportError(f"No masks in {masks_dir}.")
    return dataset


def _order(path: Path, masks_dir: Path) -> tuple:
    m = MASK_NAME.match(path.stem)
    return (path.parent.relative_to(masks_dir).as_posix(), m.group("stem") if m else path.stem,
            int(m.group("k")) if m else 0, path.name)


def _image_index(root: Path, images_dir: str | os.PathLike[str] | None) -> dict[tuple[str, str], Path]:
    """(split folder, stem) -> image file, from ``images_dir`` or ``root/images``."""
    folder = Path(images_dir).expanduser().absolute() if images_dir is not None else root / "images"
    if images_dir is not None and not folder.is_dir():
        raise ExportError(f"The images folder {folder} does not exist.")
    out: dict[tuple[str, str], Path] = {}
    for image in list_images(folder) if folder.is_dir() else []:
        split = _split_folder(image.parent.relative_to(folder).as_posix())
        out.setdefault((split, image.stem), image)
        out.setdefault(("", image.stem), image)
    return out


def _split_folder(split: str | None) -> str:
    """The folder a split's files are in below masks/ or images/ ("" when not split)."""
    return "" if split in (None, "", ".", "default") else str(split)
