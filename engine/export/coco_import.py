"""Import a COCO instances dataset into a project, to keep correcting it in QMask.

- Images are found as ``images_dir / file_name``, else by file name anywhere under
  ``images_dir``. One that is not found is still added (``status="pending"``, so
  :meth:`Project.missing_images`/``relocate`` can fix it later); one whose size on disk
  differs from the COCO ``width``/``height`` (as displayed) is marked failed, because its
  masks would not line up.
- Segmentations: compressed or uncompressed RLE (validated), or polygons, rasterised by
  pycocotools itself (the reference for what a COCO polygon covers).
- Each annotation becomes an :class:`~engine.export.imported.ImportedInstance` (the question,
  answer and acceptance from its ``qmask`` field when QMask wrote the file, or from CVAT-style
  ``attributes``), written into the project as one object by
  :func:`engine.export.imported.write_imported` (an annotation whose mask and class an object
  of that image already has is skipped: import twice = no duplicates).
- Category names join the project's class list; COCO ids are kept when they are free in the project.
- Without ``images_dir``, a file in the standard layout (``annotations/instances_<split>.json``)
  finds its images in ``images/<split>/`` or ``images/`` beside ``annotations/``; another file
  in its own folder.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExportError, InputError
from ..imaging.masks import decode_rle, is_rle
from ..project import Project
from .imported import ImportedDataset, ImportedImage, ImportedInstance, ImportReport, import_into_new_project, \
    write_imported

__all__ = ["ImportReport", "import_coco", "read_coco", "coco_images_dir", "coco_segmentation_to_mask"]


def coco_segmentation_to_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """A COCO ``segmentation`` (RLE dict or list of flat polygons) -> ``[H, W]`` bool."""
    if is_rle(segmentation):
        mask = decode_rle(segmentation)
        if mask.shape != (height, width):
            raise InputError(f"its RLE is {mask.shape[0]}x{mask.shape[1]} (H x W) but the image is {height}x{width}")
        return mask
    if isinstance(segmentation, list) and segmentation:
        polys = []
        for poly in segmentation:
            if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2:
                raise InputError("a polygon needs at least three (x, y) pairs as a flat list")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in poly):
                raise InputError("polygon coordinates must be finite numbers")
            polys.append([float(v) for v in poly])
        from pycocotools import mask as mask_utils

        rle = mask_utils.merge(mask_utils.frPyObjects(polys, int(height), int(width)))
        return decode_rle(rle)  # our decoder: same pixels, no pycocotools numpy-2 warning
    raise InputError("the segmentation is neither RLE nor a list of polygons")


def _load_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"No COCO file at {path}.") from None
    except json.JSONDecodeError as err:
        raise ExportError(f"{path}:{err.lineno}: not a readable COCO JSON file ({err.msg}, column {err.colno}).") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ExportError(f"{path} is not a readable COCO JSON file ({err}).") from err
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) \
            or not isinstance(doc.get("annotations", []), list) or not isinstance(doc.get("categories", []), list):
        raise ExportError(f"{path} is not a COCO instances file (needs 'images', 'annotations', 'categories' lists).")
    return doc


def _index_files(root: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            found.setdefault(f, []).append(Path(dirpath) / f)
    return found


def coco_images_dir(coco_json: Path) -> Path:
    """Where a COCO file's images are when no folder is given: ``images/<split>`` or
    ``images`` beside ``annotations/`` for ``annotations/instances_<split>.json`` (the standard
    layout), else the file's own folder."""
    if coco_json.parent.name == "annotations" and (coco_json.parent.parent / "images").is_dir():
        images = coco_json.parent.parent / "images"
        split = coco_json.stem.split("_", 1)[1] if "_" in coco_json.stem else ""
        return images / split if split and (images / split).is_dir() else images
    return coco_json.parent


def read_coco(coco_json: str | os.PathLike[str], images_dir: str | os.PathLike[str] | None = None) -> ImportedDataset:
    """Read and check a COCO instances file whole (nothing is written); ExportError names the
    file and what is wrong with it."""
    path = Path(coco_json).expanduser().absolute()
    root = coco_images_dir(path) if images_dir is None else Path(images_dir).expanduser().absolute()
    if not root.is_dir():
        raise ExportError(f"The images folder {root} does not exist.")
    doc = _load_json(path)
    dataset = ImportedDataset(format="coco")

    # categories: COCO id -> name; project ids kept where free
    cats: dict[Any, str] = {}
    for i, c in enumerate(doc.get("categories", [])):
        name = c["name"].strip() if isinstance(c, dict) and isinstance(c.get("name"), str) else ""
        if not isinstance(c, dict) or "id" not in c or not name:
            raise ExportError(f"{path.name}: categories[{i}] needs an 'id' and a 'name'.")
        cid = c["id"]
        cats[cid] = c["name"]
        if c["name"] not in dataset.categories:
            dataset.categories.append(c["name"])
        if isinstance(cid, int) and not isinstance(cid, bool) and cid > 0:
            dataset.category_ids.setdefault(c["name"], cid)

    by_image: dict[Any, list[dict]] = {}
    for i, a in enumerate(doc.get("annotations", [])):
        if not isinstance(a, dict) or "image_id" not in a or "segmentation" not in a:
            dataset.skipped.append(f"annotations[{i}]: needs 'image_id' and 'segmentation'")
            continue
        by_image.setdefault(a["image_id"], []).append(a)

    name_index: dict[str, list[Path]] | None = None
    seen_ids: set[Any] = set()
    for i, im in enumerate(doc["images"]):
        where = f"images[{i}]"
        if not isinstance(im, dict) or "id" not in im or not isinstance(im.get("file_name"), str):
            raise ExportError(f"{path.name}: {where} needs an 'id' and a 'file_name'.")
        if im["id"] in seen_ids:
            raise ExportError(f"{path.name}: image id {im['id']!r} appears twice.")
        seen_ids.add(im["id"])
        w, h = im.get("width"), im.get("height")
        if not (isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0):
            raise ExportError(f"{path.name}: {where} ({im['file_name']}) needs positive integer 'width' and 'height'.")
        file_name = im["file_name"].replace("\\", "/")
        candidate = root / file_name
        if not candidate.is_file():
            if name_index is None:
                name_index = _index_files(root)
            matches = sorted(name_index.get(Path(file_name).name, []))
            candidate = matches[0] if matches else candidate
        image = ImportedImage(path=candidate, width=w, height=h, source=path.name, name=file_name)
        dataset.images.append(image)
        for a in by_image.get(im["id"], []):
            name = cats.get(a.get("category_id"))
            if name is None:
                dataset.skipped.append(f"{file_name}: annotation {a.get('id')} has unknown category {a.get('category_id')!r}")
                continue
            try:
                mask = coco_segmentation_to_mask(a["segmentation"], h, w)
            except InputError as err:
                dataset.skipped.append(f"{file_name}: annotation {a.get('id')}: {err}")
                continue
            if not mask.any():
                dataset.skipped.append(f"{file_name}: annotation {a.get('id')} is empty")
                continue
            extra = a.get("qmask") if isinstance(a.get("qmask"), dict) else a.get("attributes")
            attrs = {k: v for k, v in (extra if isinstance(extra, dict) else {}).items()
                     if k in ("question", "answer", "accepted")}
            attrs["source"] = f"{path.name}: annotation {a.get('id')}"
            image.instances.append(ImportedInstance.from_mask(mask, name, attrs))
    return dataset


def import_coco(coco_json: str | os.PathLike[str], images_dir: str | os.PathLike[str] | None,
                project: Project, *, hash_images: bool = True) -> ImportReport:
    """Add the COCO dataset's images and annotations to ``project``.

    The whole file is read and checked first (:func:`read_coco`); then it is written with
    :func:`~engine.export.imported.write_imported`. An image already in the project keeps its
    records; imported annotations whose question it already has are skipped (import twice =
    no duplicates).
    """
    return write_imported(project, read_coco(coco_json, images_dir), hash_images=hash_images)


def import_coco_to_project(coco_json: str | os.PathLike[str], images_dir: str | os.PathLike[str] | None,
                           project_path: str | os.PathLike[str], *, merge: bool = False) -> tuple[Project, ImportReport]:
    """Create (or with ``merge``, extend) the project and import into it.

    A new project is built under a temporary name and appears only when the import succeeded:
    a failed import creates nothing, so the same command can simply be run again.
    """
    return import_into_new_project(lambda: read_coco(coco_json, images_dir), project_path, merge=merge)
