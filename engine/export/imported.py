"""The one seam every importer (COCO, YOLO, LabelMe, PNG masks) produces, and the one function
that writes an imported dataset into a project.

A reader turns its files into an :class:`ImportedDataset`: images (path, size as displayed,
instances) and the class list, every instance a mask with its category name and the
attributes the source had (QMask's own exports carry the question, answer and acceptance). It
reads and checks everything first and raises :class:`~engine.errors.ExportError` naming the file
(and line) of bad input, so a failed import writes nothing. :func:`write_imported` then writes
the dataset into the project in one :meth:`Project.import_records` call (each instance an object,
each question a run); it is the only code that knows how the project stores annotations.

Masks are kept as COCO RLE (``mask_rle``) while a dataset is held, so a large dataset does
not hold every mask as an array; :attr:`ImportedInstance.mask` decodes one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImageError
from ..imaging.rle import decode_rle, encode_rle
from ..project import Category, ImageRecord, ObjectRecord, Project, QuestionRun, clean_label, displayed_size, \
    file_sha256

__all__ = ["ImportedInstance", "ImportedImage", "ImportedDataset", "ImportReport", "write_imported",
           "import_into_new_project"]


@dataclass
class ImportedInstance:
    """One instance: its mask (``[H, W]`` bool in the displayed image's pixels, as COCO RLE),
    its category name, and ``attributes``: ``question``/``answer`` (str), ``accepted`` (bool)
    when the source had them, and ``source`` (where it was read: file, line or shape)."""

    category: str
    mask_rle: dict
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mask(cls, mask: np.ndarray, category: str, attributes: dict[str, Any] | None = None) -> "ImportedInstance":
        return cls(category=category, mask_rle=encode_rle(np.asarray(mask, dtype=bool)), attributes=dict(attributes or {}))

    @property
    def mask(self) -> np.ndarray:
        """``[H, W]`` bool, decoded from :attr:`mask_rle`."""
        return decode_rle(self.mask_rle)


@dataclass
class ImportedImage:
    """One image: ``path`` (absolute; it may be missing, then it is added as pending for a later
    relocation), ``width``/``height`` as displayed (None: read from the file), its instances,
    and ``error`` when the image cannot be used (recorded as failed, e.g. a size mismatch).
    For messages: ``source``, the annotation file it came from, and ``name``, the image as the
    dataset names it (its file name when empty)."""

    path: Path
    width: int | None
    height: int | None
    instances: list[ImportedInstance] = field(default_factory=list)
    error: str | None = None
    source: str = ""
    name: str = ""


@dataclass
class ImportedDataset:
    """What a reader read: images, the class list (in the source's order: YOLO class index,
    COCO category order), preferred project ids for classes (COCO ids), and notes about what
    it left out (``skipped``: one user-facing sentence per item)."""

    format: str
    images: list[ImportedImage] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    category_ids: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # images not read: their name leads outside the folder


@dataclass
class ImportReport:
    images: int = 0
    annotations: int = 0
    not_found: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)  # category names that held control characters
    refused: list[str] = field(default_factory=list)  # file names leading outside the images folder: not read
    format: str = "coco"
    paths: list[Path] = field(default_factory=list)  # the images imported, in order

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


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def write_imported(project: Project, dataset: ImportedDataset, *, hash_images: bool = True) -> ImportReport:
    """Write ``dataset`` into ``project`` (one :meth:`Project.import_records` call).

    Each instance becomes an object of its category (``source="import"``), its imported mask
    both the final and the automatic mask (``mask_source="import"``), so later edits show as a
    provenance IoU below 1; ``attributes`` give its acceptance and the question that proposed
    it, kept as a run with its answer. An image already in the project keeps its objects; an
    instance whose class and mask an object of that image already has is skipped (importing
    twice adds nothing). An image whose file is there but whose displayed size differs from the
    dataset's is recorded as failed (its masks would not line up).
    """
    report = ImportReport(format=dataset.format, skipped=list(dataset.skipped), refused=list(dataset.refused))
    names: dict[str, str] = {}
    for raw in dataset.categories:
        name = clean_label(raw)
        if name != raw.strip() and raw not in names:
            report.renamed.append(f"Category {raw!r} is stored as {name!r}: a label is one line of "
                                  "text, without control characters, so that every export's class list holds it.")
        names[raw] = name
    cats: dict[str, Category] = {}
    for raw, name in names.items():
        if name and name not in cats:
            cats[name] = Category(id=dataset.category_ids.get(raw, 0), name=name)
    records: list[ImageRecord] = []
    for im in dataset.images:
        label = _where(im)
        known = project.find_image(im.path)
        record = ImageRecord(path=project.rel_path(im.path)) if known is None else known
        existing = {(o.category, o.mask_rle["counts"]) for o in record.objects if o.has_mask}
        record.objects, record.runs = [], []
        records.append(record)
        report.images += 1
        report.paths.append(im.path)
        w, h = im.width, im.height
        if im.path.is_file():
            try:
                dw, dh = displayed_size(im.path)
            except ImageError as err:
                record.mark_failed(str(err))
                report.failed.append(f"{label}: {err}")
                continue
            if w is None or h is None:
                w, h = dw, dh
            if im.error is None and (dw, dh) != (w, h):
                im.error = (f"{label} is {dw}x{dh} as displayed but the dataset says {w}x{h}; "
                            "its masks would not line up")
            record.width, record.height = w, h
            if im.error is not None:
                record.mark_failed(im.error)
                report.failed.append(im.error)
                continue
            record.mark_ok(w, h)
            if hash_images and not record.sha256:
                record.sha256 = file_sha256(im.path)
        else:
            record.width, record.height = w, h
            if im.error is not None:
                record.mark_failed(im.error)
                report.failed.append(im.error)
                continue
            report.not_found.append(im.name or im.path.name)
        for inst in im.instances:
            category = names.get(inst.category, clean_label(inst.category))
            where = inst.attributes.get("source") or label
            if category not in cats:
                cats[category] = Category(id=0, name=category)
            if (w, h) != (None, None) and tuple(inst.mask_rle.get("size", ())) != (h, w):
                report.skipped.append(f"{where}: its mask is not {w}x{h}, the image's size")
                continue
            rle = dict(inst.mask_rle)
            if (category, rle["counts"]) in existing:
                report.skipped.append(f"{where} ({category}) is already in the project")
                continue
            existing.add((category, rle["counts"]))
            attrs = inst.attributes
            question, answer = _text(attrs.get("question")), _text(attrs.get("answer"))
            if question is not None and record.find_run(question) is None:
                record.runs.append(QuestionRun(question=question, answer=answer))
            accepted = attrs.get("accepted", False)
            record.objects.append(ObjectRecord(category=category, mask_rle=rle, auto_mask_rle=dict(rle),
                                               mask_source="import", source="import", question=question,
                                               accepted=accepted if isinstance(accepted, bool) else False))
            report.annotations += 1
    project.import_records(records, list(cats.values()))
    return report


def _where(im: ImportedImage) -> str:
    """How messages name an image: as the dataset names it."""
    return im.name or im.path.name


def import_into_new_project(read, project_path: str | os.PathLike[str], *, merge: bool = False
                            ) -> tuple[Project, ImportReport]:
    """Create (or with ``merge``, extend) the project and write what ``read()`` returns into it.

    ``read`` reads and checks the whole dataset first (an :class:`ImportedDataset`); a new
    project is built under a temporary name and appears only when the import succeeded, so a
    failed import creates nothing and the same command can simply be run again.
    """
    from ..errors import ProjectError

    p = Path(project_path).expanduser().absolute()
    if p.name.endswith(".qmask.json"):
        p = p.with_name(p.name[:-len(".json")]) if not p.exists() else p
    if p.exists():
        if not merge:
            raise ProjectError(f"{p} already exists; pass --merge to add the dataset to it.")
        dataset = read()
        project = Project.open(p, writer="import")
        try:
            return project, write_imported(project, dataset)
        except BaseException:
            project.close()
            raise
    if not p.parent.is_dir():
        raise ProjectError(f"The folder {p.parent} does not exist.")
    dataset = read()
    tmp = p.with_name(f".{p.name}.{os.getpid()}.importing.qmask")
    project = None
    try:
        project = Project.create(tmp, overwrite=True, writer="import")
        report = write_imported(project, dataset)
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
