"""Import a COCO instances dataset into a project, to keep correcting it in QMask.

- The file is parsed with limits (:mod:`engine.runtime.untrusted_json`: nesting depth, number
  ranges, text) and checked whole (types, ids, sizes) before anything is written; a problem of
  the whole file refuses it, naming the file; one of an image or an annotation is said and
  skipped.
- Images are found as ``images_dir / file_name``, else by file name anywhere under
  ``images_dir``; nothing outside ``images_dir`` is read or recorded (a name with ``..``, an
  absolute one, or a symlink leading out is refused). One that is not found is still added
  (``status="pending"``, so :meth:`Project.missing_images`/``relocate`` can fix it later); one
  whose size on disk differs from the COCO ``width``/``height`` (as displayed) is marked
  failed, because its masks would not line up.
- Segmentations: compressed or uncompressed RLE (validated), or polygons, rasterised by
  pycocotools itself (the reference for what a COCO polygon covers); coordinates far outside
  the image are refused before pycocotools sees them.
- Each annotation becomes one object of its class (:func:`engine.export.imported.write_imported`);
  when QMask wrote the file, its ``qmask`` field (or CVAT-style ``attributes``) gives back the
  question, answer and acceptance.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExportError, InputError
from ..imaging.images import max_pixels_default
from ..imaging.masks import decode_rle, is_rle
from ..project import Project
from ..project.codec import MAX_SIDE
from ..runtime.untrusted_json import UntrustedJSONError, number, type_name
from .reading import read_json
from .imported import ImportedDataset, ImportedImage, ImportedInstance, ImportReport, import_into_new_project, \
    write_imported

__all__ = ["ImportReport", "import_coco", "read_coco", "coco_images_dir", "coco_segmentation_to_mask"]


def coco_segmentation_to_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """A COCO ``segmentation`` (RLE dict or list of flat polygons) -> ``[H, W]`` bool.

    Polygon coordinates may lie outside the image by up to its longer side: pycocotools works
    on the polygon's whole outline, so far-away vertices cost memory without bound (1e9 and
    beyond crash the process natively)."""
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
            margin = max(int(height), int(width))
            far = [v for k, v in enumerate(poly) if not -margin <= v <= (width if k % 2 == 0 else height) + margin]
            if far:
                raise InputError(f"polygon coordinate {far[0]:g} lies far outside the {width}x{height} image "
                                 f"(at most {margin} pixels outside it are taken)")
            polys.append([float(v) for v in poly])
        from pycocotools import mask as mask_utils

        rle = mask_utils.merge(mask_utils.frPyObjects(polys, int(height), int(width)))
        return decode_rle(rle)  # our decoder: same pixels, no pycocotools numpy-2 warning
    raise InputError("the segmentation is neither RLE nor a list of polygons")


def _load_json(path: Path) -> dict:
    doc = read_json(path, "not a readable COCO JSON file", kind="COCO")
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) \
            or not isinstance(doc.get("annotations", []), list) or not isinstance(doc.get("categories", []), list):
        raise ExportError(f"{path} is not a COCO instances file (needs 'images', 'annotations', 'categories' lists).")
    return doc


def _coco_id(value: Any, where: str) -> int | str:
    """A COCO id: an integer (a whole float is taken as one) or text; else UntrustedJSONError."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UntrustedJSONError(f"{where}: expected a number or text, found {type_name(value)}")
    return value


def _image_size(im: dict, where: str) -> tuple[int, int]:
    w = number(im.get("width"), f"{where}.width", integer=True, lo=1, hi=MAX_SIDE)
    h = number(im.get("height"), f"{where}.height", integer=True, lo=1, hi=MAX_SIDE)
    if w * h > max_pixels_default():  # its masks are decoded whole
        raise UntrustedJSONError(f"{where}: {w}x{h} is more pixels than QMask opens ({max_pixels_default():,}; "
                                 f"set QMASK_MAX_PIXELS to allow more)")
    return w, h


def _inside(root: Path, path: Path) -> bool:
    """``path`` is in the folder ``root`` (a resolved path) once ``..`` and symlinks are resolved."""
    try:
        path.resolve().relative_to(root)
    except (ValueError, OSError, RuntimeError):  # outside, or a symlink loop
        return False
    return True


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
    try:
        return _read(doc, path, root)
    except UntrustedJSONError as err:
        raise ExportError(f"{path.name}: {err}. Nothing was imported.") from None


def _read(doc: dict, path: Path, root: Path) -> ImportedDataset:
    dataset = ImportedDataset(format="coco")
    real_root = root.resolve()
    cats: dict[Any, str] = {}  # COCO id -> name; the project keeps the ids where they are free
    for i, c in enumerate(doc.get("categories", [])):
        name = c["name"].strip() if isinstance(c, dict) and isinstance(c.get("name"), str) else ""
        if not isinstance(c, dict) or "id" not in c or not name:
            raise ExportError(f"{path.name}: categories[{i}] needs an 'id' and a 'name'.")
        cid = _coco_id(c["id"], f"categories[{i}].id")
        cats[cid] = c["name"]
        if c["name"] not in dataset.categories:
            dataset.categories.append(c["name"])
        if isinstance(cid, int) and cid > 0:
            dataset.category_ids.setdefault(c["name"], cid)

    by_image: dict[Any, list[dict]] = {}
    for i, a in enumerate(doc.get("annotations", [])):
        if not isinstance(a, dict) or "image_id" not in a or "segmentation" not in a:
            dataset.skipped.append(f"annotations[{i}]: needs 'image_id' and 'segmentation'")
            continue
        try:
            image_id = _coco_id(a["image_id"], f"annotations[{i}].image_id")
            a["category_id"] = _coco_id(a.get("category_id"), f"annotations[{i}].category_id")
        except UntrustedJSONError as err:
            dataset.skipped.append(str(err))
            continue
        by_image.setdefault(image_id, []).append(a)

    name_index: dict[str, list[Path]] | None = None
    seen_ids: set[Any] = set()
    for i, im in enumerate(doc["images"]):
        where = f"images[{i}]"
        if not isinstance(im, dict) or "id" not in im or not isinstance(im.get("file_name"), str):
            raise ExportError(f"{path.name}: {where} needs an 'id' and a 'file_name'.")
        image_id = _coco_id(im["id"], f"{where}.id")
        if image_id in seen_ids:
            raise ExportError(f"{path.name}: image id {image_id!r} appears twice.")
        seen_ids.add(image_id)
        w, h = _image_size(im, where)
        file_name = im["file_name"].replace("\\", "/")
        # Nothing outside the folder the user named is read or recorded: a name with "..", an
        # absolute one, or a symlink out is looked for by its base name under the folder only.
        candidate = root / file_name
        if not _inside(real_root, candidate) or not candidate.is_file():
            if name_index is None:
                name_index = _index_files(root)
            matches = sorted(m for m in name_index.get(Path(file_name).name, []) if _inside(real_root, m))
            candidate = matches[0] if matches else candidate
        if not _inside(real_root, candidate):
            dataset.refused.append(f"{where} ({file_name}): the file name leads outside the images folder {root}; "
                                   "it was not read")
            continue
        image = ImportedImage(path=candidate, width=w, height=h, source=path.name, name=file_name)
        dataset.images.append(image)
        for a in by_image.get(image_id, []):
            name = cats.get(a.get("category_id"))
            if name is None:
                dataset.skipped.append(f"{file_name}: annotation {a.get('id')} has unknown category {a.get('category_id')!r}")
                continue
            try:
                mask = coco_segmentation_to_mask(a["segmentation"], h, w)
            except (InputError, TypeError, ValueError, OverflowError) as err:  # untrusted shapes
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
