"""Import a COCO instances dataset into a project, to keep correcting it in QMask.

- The file is parsed with limits (:mod:`engine.runtime.untrusted_json`) and its types checked
  before anything is written; one transaction writes it all (a failure leaves the project as
  it was).
- Images are found as ``images_dir / file_name``, else by file name anywhere under
  ``images_dir``; nothing outside ``images_dir`` is read or recorded (a ``file_name`` with
  ``..``, an absolute one or a symlink out is refused, per image: ``ImportReport.refused``). One that is not found is still added (``status="pending"``, so
  :meth:`Project.missing_images`/``relocate`` can fix it later); one whose size on disk
  differs from the COCO ``width``/``height`` (as displayed) is marked failed, because its
  masks would not line up.
- Segmentations: compressed or uncompressed RLE (validated), or polygons, rasterised by
  pycocotools itself (the reference for what a COCO polygon covers).
- Each annotation becomes one object (``source="import"``) of its category; when QMask wrote the
  file, ``attributes`` give back its question (a run with the answer) and acceptance. The imported
  mask is both the final and the automatic mask (``mask_source="import"``), so later edits show
  up as a provenance IoU below 1. An annotation whose mask and class an object of that image
  already has is skipped (import twice = no duplicates).
- Category names join the project's class list; COCO ids are kept when they are free in the project.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExportError, ImageError, InputError, ProjectError
from ..imaging.masks import decode_rle, encode_rle, is_rle
from ..imaging.images import max_pixels_default
from ..project.codec import MAX_SIDE
from ..runtime.untrusted_json import UntrustedJSONError, load_untrusted, number, type_name
from ..project import (Category, ImageRecord, ObjectRecord, Project, QuestionRun, clean_label, displayed_size,
                       file_sha256)

__all__ = ["ImportReport", "import_coco", "coco_segmentation_to_mask"]


@dataclass
class ImportReport:
    images: int = 0
    annotations: int = 0
    not_found: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # file names leading outside the images folder: not read
    renamed: list[str] = field(default_factory=list)  # category names that held control characters
    categories: list[Category] = field(default_factory=list, repr=False)  # the file's, as they are stored

    def __str__(self) -> str:
        text = f"Imported {self.annotations} annotation(s) on {self.images} image(s)."
        if self.renamed:
            text += " " + " ".join(self.renamed)
        if self.not_found:
            text += (f" {len(self.not_found)} image file(s) not found (relocate them with "
                     "`qmask export PROJECT --images DIR ...` or the app's Locate folder...).")
        if self.refused:
            text += f" {len(self.refused)} image(s) refused: " + "; ".join(self.refused[:3])
        if self.failed:
            text += f" {len(self.failed)} image(s) failed: " + "; ".join(self.failed[:3])
        if self.skipped:
            text += f" {len(self.skipped)} annotation(s) skipped: " + "; ".join(self.skipped[:3])
        return text


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
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ExportError(f"No COCO file at {path}.") from None
    except OSError as err:
        raise ExportError(f"Cannot read the COCO file {path}: {err.strerror or err}.") from err
    try:
        doc = load_untrusted(raw)
    except UntrustedJSONError as err:
        raise ExportError(f"{path} is not a readable COCO JSON file: {err}. Nothing was imported.") from None
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


def import_coco(coco_json: str | os.PathLike[str], images_dir: str | os.PathLike[str],
                project: Project, *, hash_images: bool = True) -> ImportReport:
    """Add the COCO dataset's images and annotations to ``project``.

    The whole file is read and checked first; then images go in a chunk per transaction. An
    image already in the project keeps its records; imported annotations whose question it
    already has are skipped (import twice = no duplicates).
    """
    path = Path(coco_json).expanduser().absolute()
    root = Path(images_dir).expanduser().absolute()
    if not root.is_dir():
        raise ExportError(f"The images folder {root} does not exist.")
    doc = _load_json(path)
    report = ImportReport()

    try:
        records = _read_records(doc, path, root, project, report, hash_images)
    except UntrustedJSONError as err:
        raise ExportError(f"{path.name}: {err}. Nothing was imported.") from None
    project.import_records(records, list(report.categories))
    return report


def _read_records(doc: dict, path: Path, root: Path, project: Project, report: ImportReport,
                  hash_images: bool) -> list[ImageRecord]:
    """Every image record with its new question records, checked whole before anything is
    written; a problem of the whole file raises (ExportError, UntrustedJSONError), one of an
    image or an annotation is said in ``report``."""
    real_root = root.resolve()
    # categories: COCO id -> (name, preferred project id); written with the first chunk
    cats: dict[Any, Category] = {}
    for i, c in enumerate(doc.get("categories", [])):
        name = clean_label(c["name"]) if isinstance(c, dict) and isinstance(c.get("name"), str) else ""
        if not isinstance(c, dict) or "id" not in c or not name:
            raise ExportError(f"{path.name}: categories[{i}] needs an 'id' and a 'name'.")
        if name != c["name"].strip():
            report.renamed.append(f"Category {c['name']!r} is stored as {name!r}: a label is one line of "
                                  "text, without control characters, so that every export's class list holds it.")
        cid = _coco_id(c["id"], f"categories[{i}].id")
        wanted = cid if isinstance(cid, int) and cid > 0 else 0
        cats[cid] = Category(id=wanted, name=name)
    report.categories = list(cats.values())

    by_image: dict[Any, list[dict]] = {}
    for i, a in enumerate(doc.get("annotations", [])):
        if not isinstance(a, dict) or "image_id" not in a or "segmentation" not in a:
            report.skipped.append(f"annotations[{i}]: needs 'image_id' and 'segmentation'")
            continue
        try:
            image_id = _coco_id(a["image_id"], f"annotations[{i}].image_id")
            a["category_id"] = _coco_id(a.get("category_id"), f"annotations[{i}].category_id")
        except UntrustedJSONError as err:
            report.skipped.append(str(err))
            continue
        by_image.setdefault(image_id, []).append(a)

    name_index: dict[str, list[Path]] | None = None
    seen_ids: set[Any] = set()
    records: list[ImageRecord] = []  # read and checked whole before anything is written
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
            report.refused.append(f"{where} ({file_name}): the file name leads outside the images folder {root}; "
                                  "it was not read")
            continue
        known = project.find_image(candidate)
        record = ImageRecord(path=project.rel_path(candidate), width=w, height=h) if known is None else known
        record.width, record.height = w, h
        existing = {(o.category, o.mask_rle["counts"]) for o in record.objects if o.has_mask}
        record.objects, record.runs = [], []
        records.append(record)
        report.images += 1
        if candidate.is_file():
            try:
                dw, dh = displayed_size(candidate)
            except ImageError as err:
                record.mark_failed(str(err))
                report.failed.append(f"{file_name}: {err}")
                continue
            if (dw, dh) != (w, h):
                msg = (f"{file_name} is {dw}x{dh} as displayed but the COCO file says {w}x{h}; "
                       "its masks would not line up")
                record.mark_failed(msg)
                report.failed.append(msg)
                continue
            record.mark_ok(w, h)
            if hash_images and not record.sha256:
                record.sha256 = file_sha256(candidate)
        else:
            report.not_found.append(file_name)
        for a in by_image.get(image_id, []):
            cat = cats.get(a.get("category_id"))
            if cat is None:
                report.skipped.append(f"{file_name}: annotation {a.get('id')} has unknown category {a.get('category_id')!r}")
                continue
            try:
                mask = coco_segmentation_to_mask(a["segmentation"], h, w)
            except (InputError, TypeError, ValueError, OverflowError) as err:  # untrusted shapes
                report.skipped.append(f"{file_name}: annotation {a.get('id')}: {err}")
                continue
            if not mask.any():
                report.skipped.append(f"{file_name}: annotation {a.get('id')} is empty")
                continue
            rle = encode_rle(mask)
            if (cat.name, rle["counts"]) in existing:
                report.skipped.append(f"{file_name}: annotation {a.get('id')} ({cat.name}) is already in the project")
                continue
            existing.add((cat.name, rle["counts"]))
            attrs = a.get("attributes") if isinstance(a.get("attributes"), dict) else {}
            question = attrs.get("question") if isinstance(attrs.get("question"), str) and attrs["question"].strip() else None
            answer = attrs.get("answer") if isinstance(attrs.get("answer"), str) else None
            if question is not None and record.find_run(question) is None:
                record.runs.append(QuestionRun(question=question, answer=answer))
            accepted = attrs.get("accepted", False)
            record.objects.append(ObjectRecord(category=cat.name, mask_rle=rle, auto_mask_rle=dict(rle),
                                               mask_source="import", source="import", question=question,
                                               accepted=accepted if isinstance(accepted, bool) else False))
            report.annotations += 1
    return records


def import_coco_to_project(coco_json: str | os.PathLike[str], images_dir: str | os.PathLike[str],
                           project_path: str | os.PathLike[str], *, merge: bool = False) -> tuple[Project, ImportReport]:
    """Create (or with ``merge``, extend) the project and import into it.

    A new project is built under a temporary name and appears only when the import succeeded:
    a failed import creates nothing, so the same command can simply be run again.
    """
    p = Path(project_path).expanduser().absolute()
    if p.name.endswith(".qmask.json"):
        p = p.with_name(p.name[:-len(".json")]) if not p.exists() else p
    if p.exists():
        if not merge:
            raise ProjectError(f"{p} already exists; pass --merge to add the dataset to it.")
        project = Project.open(p, writer="import")
        try:
            return project, import_coco(coco_json, images_dir, project)
        except BaseException:
            project.close()
            raise
    if not p.parent.is_dir():
        raise ProjectError(f"The folder {p.parent} does not exist.")
    tmp = p.with_name(f".{p.name}.{os.getpid()}.importing.qmask")
    project = None
    try:
        project = Project.create(tmp, overwrite=True, writer="import")
        report = import_coco(coco_json, images_dir, project)
        project.close()
        os.replace(tmp, p)
    except BaseException as err:
        if project is not None:
            project.close()
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)
        if isinstance(err, ProjectError):  # the user named the project, not its temporary file
            raise ProjectError(str(err).replace(str(tmp), str(p))) from err
        raise
    return Project.open(p, writer="import"), report
