"""What every exporter shares: which annotations go out, their categories, file naming."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..errors import ExportError
from ..project import Category, ImageRecord, Project, QuestionRecord

DEFAULT_LABEL = "object"  # category for annotations without a label

ImageFilter = Callable[[ImageRecord], bool]


@dataclass
class ExportItem:
    """One annotation to write: an image's question record with its resolved category."""

    image: ImageRecord
    record: QuestionRecord
    category: Category
    mask: np.ndarray  # [H, W] bool, non-empty


@dataclass
class ExportImage:
    image: ImageRecord
    abs_path: Path
    items: list[ExportItem]
    stem: str  # unique file stem within the export (name without extension)


@dataclass
class ExportPlan:
    images: list[ExportImage]
    categories: list[Category]  # ids as in the project (stable), DEFAULT_LABEL added if needed
    images_root: Path  # common folder of the exported images; COCO file_name is relative to it
    skipped: list[str] = field(default_factory=list)  # user-facing reasons, one per annotation/image

    @property
    def n_annotations(self) -> int:
        return sum(len(e.items) for e in self.images)


def plan_export(project: Project, image_filter: ImageFilter | Iterable[ImageRecord] | None = None,
                only_accepted: bool = False) -> ExportPlan:
    """Select images and annotations; resolve categories; give every image a unique stem.

    ``image_filter`` is a predicate, or an iterable of the records to export (e.g. the current
    image only). Failed images and annotations without a (non-empty) mask are skipped and
    listed in ``skipped``. An image with no annotation left is still exported (as a negative
    example) when it was processed successfully.
    """
    if image_filter is None:
        selected = list(project.images)
    elif callable(image_filter):
        selected = [img for img in project.images if image_filter(img)]
    else:
        wanted = {id(img) for img in image_filter}
        selected = [img for img in project.images if id(img) in wanted]
    categories = list(project.categories)
    by_name = {c.name: c for c in categories}
    out: list[ExportImage] = []
    skipped: list[str] = []
    used_stems: set[str] = set()
    for img in selected:
        if img.status == "failed":
            skipped.append(f"{img.path}: image failed ({img.error or 'unknown error'})")
            continue
        if img.width is None or img.height is None:
            skipped.append(f"{img.path}: image size unknown (not processed yet)")
            continue
        items: list[ExportItem] = []
        for q in img.questions:
            if only_accepted and not q.accepted:
                continue
            mask = q.mask()
            if mask is None or not mask.any():
                skipped.append(f"{img.path}: '{q.question}' has no mask")
                continue
            if mask.shape != (img.height, img.width):
                raise ExportError(f"{img.path}: the mask of '{q.question}' is {mask.shape[1]}x{mask.shape[0]} "
                                  f"but the image is {img.width}x{img.height}.")
            name = q.label or DEFAULT_LABEL
            cat = by_name.get(name)
            if cat is None:
                cat = Category(id=max((c.id for c in categories), default=0) + 1, name=name)
                categories.append(cat)
                by_name[name] = cat
            items.append(ExportItem(image=img, record=q, category=cat, mask=mask))
        if only_accepted and not items:
            continue
        stem = unique_stem(Path(img.path).stem, used_stems)
        out.append(ExportImage(image=img, abs_path=project.abs_path(img), items=items, stem=stem))
    # All project categories are kept, used or not, so class indices stay the same from one
    # export to the next; DEFAULT_LABEL joins them only when some annotation has no label.
    categories = sorted(categories, key=lambda c: c.id)
    root = common_root([e.abs_path for e in out]) if out else project.folder
    return ExportPlan(images=out, categories=categories, images_root=root, skipped=skipped)


def unique_stem(stem: str, used: set[str]) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_.@+" else "_" for ch in stem) or "image"
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
