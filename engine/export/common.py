"""What every exporter shares: which annotations go out, their categories, file naming."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from ..errors import ExportError
from ..project import Category, ImageRecord, Project, QuestionRecord
from .staging import MAX_NAME_BYTES, Staging, short_name  # noqa: F401 (Staging: exporters import it from here)

DEFAULT_LABEL = "object"  # category for annotations without a label
STEM_BYTES = MAX_NAME_BYTES - 16  # a stem, with room for "_NN" and an extension (".json", ".jpeg")

ImageFilter = Callable[[ImageRecord], bool]


@dataclass
class ExportItem:
    """One annotation to write: an image's question record with its resolved category."""

    image: ImageRecord
    record: QuestionRecord
    category: Category

    @property
    def key(self) -> tuple[int, str]:
        """Identifies the annotation across passes: (image id, question key)."""
        return (int(self.image.id or 0), self.record.key)

    @property
    def mask(self) -> np.ndarray:
        """``[H, W]`` bool, decoded when asked (and cached by the record)."""
        return self.record.mask()  # type: ignore[return-value]


@dataclass
class ExportImage:
    image: ImageRecord  # without its question records (see ExportPlan.loaded)
    abs_path: Path
    stem: str  # unique file stem within the export (name without extension)
    keys: list[tuple[str, Category]] = field(default_factory=list)  # exported questions, in order
    items: list[ExportItem] = field(default_factory=list)  # filled only while being written
    edits: list = field(default_factory=list)  # its edit log (engine.project.Edit), likewise


@dataclass
class ExportPlan:
    """What an export writes, planned from the store's columns without reading any record.

    ``images`` are light (no question records, no masks); :meth:`loaded` reads and yields them
    with their items a chunk at a time, so memory does not grow with the project.
    """

    project: Project
    images: list[ExportImage]
    categories: list[Category]  # ids as in the project (stable), DEFAULT_LABEL added if needed
    images_root: Path  # common folder of the exported images; COCO file_name is relative to it
    skipped: list[str] = field(default_factory=list)  # user-facing reasons, one per annotation/image
    # Called with each image once the format writer is done with it (the provenance sidecar is
    # written in the same pass: every record is read once).
    after: Callable[[ExportImage], None] | None = field(default=None, repr=False)

    @property
    def n_annotations(self) -> int:
        return sum(len(e.keys) for e in self.images)

    def loaded(self, chunk: int = 200) -> Iterator[ExportImage]:
        """Each planned image with its items (records read from the store), in plan order."""
        for i in range(0, len(self.images), chunk):
            part = self.images[i:i + chunk]
            ids = [e.image.id for e in part]
            records = {img.id: img for img in self.project.iter_images(
                where=f"id IN ({','.join('?' * len(part))})", args=ids)}
            logs = self.project.edits_for(ids) if self.after is not None else {}
            for e in part:
                full = records.get(e.image.id)
                by_key = {q.key: q for q in (full.questions if full is not None else [])}
                e.items = [ExportItem(image=e.image, record=by_key[k], category=c)
                           for k, c in e.keys if k in by_key]
                e.edits = logs.get(e.image.id, [])
                try:
                    yield e
                    if self.after is not None:
                        self.after(e)
                finally:
                    e.items, e.edits = [], []


def plan_export(project: Project, image_filter: ImageFilter | Iterable[ImageRecord] | None = None,
                only_accepted: bool = False) -> ExportPlan:
    """Select images and annotations; resolve categories; give every image a unique stem.

    ``image_filter`` is a predicate on image records (without their questions), or an iterable
    of the records to export (e.g. the current image only). Failed images and annotations
    without a (non-empty) mask are skipped and listed in ``skipped``. An image with no
    annotation left is still exported (as a negative example) when it was processed successfully.
    Reads the store's columns only: no question record, no mask is decoded here.
    """
    if image_filter is None or callable(image_filter):
        where, args = "", []
    else:
        wanted = [int(img.id) for img in image_filter if img.id is not None]
        where, args = f"id IN ({','.join('?' * len(wanted))})", wanted
    categories = list(project.categories)
    by_name = {c.name: c for c in categories}
    out: list[ExportImage] = []
    skipped: list[str] = []
    used_stems: set[str] = set()
    summaries = project.question_summaries()
    for img in project.iter_images(questions=False, where=where, args=args):
        if callable(image_filter) and not image_filter(img):
            continue
        if img.status == "failed":
            skipped.append(f"{img.path}: image failed ({img.error or 'unknown error'})")
            continue
        if img.width is None or img.height is None:
            skipped.append(f"{img.path}: not processed yet (open it in the app, or run qmask batch on it, "
                           "then export again)")
            continue
        keys: list[tuple[str, Category]] = []
        for q in summaries.get(int(img.id), ()):  # type: ignore[arg-type]
            if only_accepted and not q["accepted"]:
                continue
            if not q["mask_area"]:
                skipped.append(f"{img.path}: '{q['question']}' has no mask")
                continue
            if (q["mask_h"], q["mask_w"]) != (img.height, img.width):
                raise ExportError(f"{img.path}: the mask of '{q['question']}' is {q['mask_w']}x{q['mask_h']} "
                                  f"but the image is {img.width}x{img.height}.")
            name = q["label"] or DEFAULT_LABEL
            cat = by_name.get(name)
            if cat is None:
                cat = Category(id=max((c.id for c in categories), default=0) + 1, name=name)
                categories.append(cat)
                by_name[name] = cat
            keys.append((q["key"], cat))
        if only_accepted and not keys:
            continue
        stem = unique_stem(Path(img.path).stem, used_stems)
        out.append(ExportImage(image=img, abs_path=project.abs_path(img), stem=stem, keys=keys))
    # All project categories are kept, used or not, so class indices stay the same from one
    # export to the next; DEFAULT_LABEL joins them only when some annotation has no label.
    categories = sorted(categories, key=lambda c: c.id)
    root = common_root([e.abs_path for e in out]) if out else project.folder
    return ExportPlan(project=project, images=out, categories=categories, images_root=root, skipped=skipped)


def unique_stem(stem: str, used: set[str]) -> str:
    """A file stem of ``stem``'s safe characters, unique (case-insensitively) among ``used``; an
    over-long one is shortened (:func:`short_name`) leaving room for ``_2`` and an extension."""
    safe = "".join(ch if ch.isalnum() or ch in "-_.@+" else "_" for ch in stem) or "image"
    safe = short_name(safe, limit=STEM_BYTES)
    candidate, k = safe, 1
    while candidate.lower() in used:  # case-insensitive: Windows/macOS file systems
        k += 1
        candidate = f"{safe}_{k}"
    used.add(candidate.lower())
    return candidate


def common_root(paths: list[Path]) -> Path:
    try:
        return Path(os.path.commonpath([str(p.parent) for p in paths]))
    except ValueError:  # different drives: no common folder
        return paths[0].parent


def rel_to(path: Path, root: Path) -> str:
    try:
        return Path(os.path.relpath(path, root)).as_posix()
    except ValueError:
        return path.as_posix()


def prepare_dir(out: Path) -> Path:
    out = Path(out).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExportError(f"Cannot create the folder {out}: {err.strerror or err}.") from err
    return out


def link_or_copy(src: Path, dst: Path) -> None:
    """Put ``src`` at ``dst``: hard link when possible (no extra space), else copy."""
    if dst.exists():
        if dst.stat().st_size == src.stat().st_size and dst.samefile(src):
            return
        dst.unlink()
    tmp = dst.with_name(f".{dst.name}.tmp")
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)
