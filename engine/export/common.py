"""What every exporter shares: which objects go out, their categories, file naming."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from ..errors import ExportError
from ..project import Category, ImageRecord, ObjectRecord, Project, QuestionRun, normalise_question

DEFAULT_LABEL = "object"  # category for annotations without a label

ImageFilter = Callable[[ImageRecord], bool]


@dataclass
class ExportItem:
    """One annotation to write: an object of an image with its resolved category, and the run
    that proposed it (None: a manual or imported object)."""

    image: ImageRecord
    obj: ObjectRecord
    category: Category
    run: QuestionRun | None = None
    ann_id: int = 0  # the object's row id in the project: a COCO annotation id stable across exports

    @property
    def key(self) -> tuple[int, str]:
        """Identifies the annotation across passes: (image id, object uid)."""
        return (int(self.image.id or 0), self.obj.uid)

    @property
    def record(self) -> ObjectRecord:
        return self.obj

    @property
    def question(self) -> str | None:
        return self.obj.question

    @property
    def answer(self) -> str | None:
        return None if self.run is None else self.run.answer

    @property
    def mask(self) -> np.ndarray:
        """``[H, W]`` bool, decoded when asked (and cached by the object)."""
        return self.obj.mask()  # type: ignore[return-value]


@dataclass
class ExportImage:
    image: ImageRecord  # without its objects (see ExportPlan.loaded)
    abs_path: Path
    stem: str  # unique file stem within the export (name without extension)
    keys: list[tuple[str, Category, int]] = field(default_factory=list)  # exported objects: (uid, category, row id)
    items: list[ExportItem] = field(default_factory=list)  # filled only while being written
    edits: list = field(default_factory=list)  # its edit log (engine.project.Edit), likewise
    runs: list[QuestionRun] = field(default_factory=list)  # its question runs, likewise


@dataclass
class ExportPlan:
    """What an export writes, planned from the store's columns without reading any object.

    ``images`` are light (no objects, no masks); :meth:`loaded` reads and yields them with their
    items a chunk at a time, so memory does not grow with the project.
    """

    project: Project
    images: list[ExportImage]
    categories: list[Category]  # the project's class list (ids stable), DEFAULT_LABEL added if needed
    images_root: Path  # common folder of the exported images; COCO file_name is relative to it
    skipped: list[str] = field(default_factory=list)  # user-facing reasons, one per annotation/image
    # Called with each image once the format writer is done with it (the provenance sidecar is
    # written in the same pass: every object is read once).
    after: Callable[[ExportImage], None] | None = field(default=None, repr=False)

    @property
    def n_annotations(self) -> int:
        return sum(len(e.keys) for e in self.images)

    def loaded(self, chunk: int = 200) -> Iterator[ExportImage]:
        """Each planned image with its items (objects read from the store), in plan order."""
        for i in range(0, len(self.images), chunk):
            part = self.images[i:i + chunk]
            ids = [e.image.id for e in part]
            records = {img.id: img for img in self.project.iter_images(
                where=f"id IN ({','.join('?' * len(part))})", args=ids)}
            logs = self.project.edits_for(ids) if self.after is not None else {}
            for e in part:
                full = records.get(e.image.id)
                by_uid = {o.uid: o for o in (full.objects if full is not None else [])}
                runs = {r.key: r for r in (full.runs if full is not None else [])}
                e.items = [ExportItem(image=e.image, obj=by_uid[u], category=c, ann_id=row_id,
                                      run=runs.get(normalise_question(by_uid[u].question))
                                      if by_uid[u].question else None)
                           for u, c, row_id in e.keys if u in by_uid]
                e.edits = logs.get(e.image.id, [])
                e.runs = list(runs.values())
                try:
                    yield e
                    if self.after is not None:
                        self.after(e)
                finally:
                    e.items, e.edits, e.runs = [], [], []


def plan_export(project: Project, image_filter: ImageFilter | Iterable[ImageRecord] | None = None,
                only_accepted: bool = False) -> ExportPlan:
    """Select images and objects; resolve categories; give every image a unique stem.

    ``image_filter`` is a predicate on image records (without their objects), or an iterable of
    the records to export (e.g. the current image only). Failed images and objects without a
    (non-empty) mask are skipped and listed in ``skipped``. An image with no object left is still
    exported (as a negative example) when it was processed successfully. Reads the store's
    columns only: no object is read, no mask decoded here. Category ids are the class list's, so
    they are the same from one export to the next; unlabelled objects go to :data:`DEFAULT_LABEL`.
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
    summaries = project.object_summaries()
    for img in project.iter_images(records=False, where=where, args=args):
        if callable(image_filter) and not image_filter(img):
            continue
        if img.status == "failed":
            skipped.append(f"{img.path}: image failed ({img.error or 'unknown error'})")
            continue
        if img.width is None or img.height is None:
            skipped.append(f"{img.path}: not processed yet (open it in the app, or run qmask batch on it, "
                           "then export again)")
            continue
        keys: list[tuple[str, Category, int]] = []
        for n, o in enumerate(summaries.get(int(img.id), ()), start=1):  # type: ignore[arg-type]
            what = f"object {n}" + (f" ({o['category']})" if o["category"] else "")
            if only_accepted and not o["accepted"]:
                continue
            if not o["mask_area"]:
                skipped.append(f"{img.path}: {what} has no mask")
                continue
            if (o["mask_h"], o["mask_w"]) != (img.height, img.width):
                raise ExportError(f"{img.path}: the mask of {what} is {o['mask_w']}x{o['mask_h']} "
                                  f"but the image is {img.width}x{img.height}.")
            name = o["category"] or DEFAULT_LABEL
            cat = by_name.get(name)
            if cat is None:
                cat = Category(id=max((c.id for c in categories), default=0) + 1, name=name)
                categories.append(cat)
                by_name[name] = cat
            keys.append((o["uid"], cat, int(o["id"])))
        if only_accepted and not keys:
            continue
        stem = unique_stem(Path(img.path).stem, used_stems)
        out.append(ExportImage(image=img, abs_path=project.abs_path(img), stem=stem, keys=keys))
    # All project categories are kept, used or not, so class indices stay the same from one
    # export to the next; DEFAULT_LABEL joins them only when some object has no class.
    categories = sorted(categories, key=lambda c: c.id)
    root = common_root([e.abs_path for e in out]) if out else project.folder
    return ExportPlan(project=project, images=out, categories=categories, images_root=root, skipped=skipped)


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


class Staging:
    """A hidden folder beside the output that an export is written into; :meth:`commit` moves
    every file into place at the end. An export that fails leaves nothing new behind (files
    of an earlier export there stay as they were until the commit replaces them)."""

    def __init__(self, final_dir: Path) -> None:
        self.final = Path(final_dir)
        name = f".qmask-export-{os.getpid()}"
        # Inside the output folder when it exists (same file system), else beside it (renamed at the end).
        self.root = self.final / name if self.final.is_dir() else self.final.parent / f".{self.final.name}{name}"

    def __enter__(self) -> "Staging":
        if self.final.exists() and not self.final.is_dir():
            raise ExportError(f"{self.final} exists and is not a folder.")
        # folders this export creates above the output, removed again if it fails
        self._made = [d for d in [self.final.parent, *self.final.parent.parents] if not d.exists()]
        self._committed = False
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(self.root, ignore_errors=True)
            self.root.mkdir()
        except OSError as err:
            raise ExportError(f"Cannot create the folder {self.final}: {err.strerror or err}.") from err
        return self

    def commit(self) -> list[Path]:
        """Move every staged file to the same place under the final folder; returns their paths."""
        staged = sorted(p for p in self.root.rglob("*") if p.is_file() or p.is_symlink())
        self._committed = True
        if not self.final.exists():
            os.rename(self.root, self.final)  # a new folder appears whole
            return [self.final / p.relative_to(self.root) for p in staged]
        moved = []
        for p in staged:
            dest = self.final / p.relative_to(self.root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, dest)
            moved.append(dest)
        return moved

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        if not self._committed:
            for d in self._made:  # innermost first; only if still empty
                try:
                    d.rmdir()
                except OSError:
                    break


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
