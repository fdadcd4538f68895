"""Where an export puts its files: names, splits, image copies and the provenance file.

Two layouts:

- **Annotations only** (the default): the annotation files refer to the images where they
  are (COCO ``file_name`` relative to their common folder, LabelMe ``imagePath`` relative to
  each JSON file). YOLO links (or copies) the images into ``images/`` all the same, since
  Ultralytics finds labels by the image path.
- **Self-contained** (``copy_images``): the images are copied into the dataset, in each
  format's standard layout, and every path in it is relative, so the folder can be moved,
  copied or archived. An image with an EXIF orientation is written rotated (the pixels QMask
  annotated; the orientation tag dropped), so readers that ignore EXIF (torchvision's
  ``CocoDetection``, datumaro) see the size the annotations give. Others are copied byte for byte.
  With ``val_fraction`` > 0 the images are split into ``train`` and ``val`` (the same seed gives
  the same split); without, everything is one split, ``default`` (datumaro's name).

The provenance file never sits where a dataset reader looks: ``OUT/provenance/qmask-provenance.json``
for a folder, ``DIR/provenance/NAME/qmask-provenance.json`` for a COCO file ``DIR/NAME.json``
(no reader scans ``provenance/``; the name has no underscore, so datumaro's ``*_*.json`` search
for COCO task files skips it, and no image stem is ``qmask-provenance``).
"""

from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import ExportError
from .common import ExportImage, ExportPlan, rel_to

__all__ = ["DEFAULT_SPLIT", "PROVENANCE_DIR", "PROVENANCE_NAME", "Layout", "plan_layout", "split_images",
           "safe_file_name", "put_image", "labelme_json_paths", "provenance_path"]

DEFAULT_SPLIT = "default"
PROVENANCE_DIR = "provenance"
PROVENANCE_NAME = "qmask-provenance.json"
_UNSAFE = set('<>:"/\\|?*')


@dataclass
class Layout:
    """Each planned image's split and, in a self-contained export, its file name there."""

    self_contained: bool = False
    split_of: dict[int, str] = field(default_factory=dict)  # image id -> split name
    names: dict[int, str] = field(default_factory=dict)  # image id -> image file name in the dataset
    files: dict[int, dict[str, str]] = field(default_factory=dict)  # image id -> its files (for provenance)
    rotated: int = 0  # images written upright from their EXIF orientation

    @property
    def splits(self) -> list[str]:
        """The split names in use, ``train`` before ``val``; ``[DEFAULT_SPLIT]`` when not split."""
        used = set(self.split_of.values()) or {DEFAULT_SPLIT}
        return [s for s in ("train", "val", DEFAULT_SPLIT) if s in used]

    @property
    def is_split(self) -> bool:
        return self.splits != [DEFAULT_SPLIT]

    def split(self, e: ExportImage) -> str:
        return self.split_of.get(int(e.image.id or 0), DEFAULT_SPLIT)

    def image_name(self, e: ExportImage) -> str:
        """The image's file name inside the dataset (unique within its split's folder)."""
        return self.names[int(e.image.id or 0)]

    def image_stem(self, e: ExportImage) -> str:
        return PurePosixPath(self.image_name(e)).stem

    def folder(self, base: str, e: ExportImage) -> str:
        """``base/SPLIT`` when the export is split, else ``base`` (``""``: the top folder)."""
        parts = [p for p in (base, self.split(e) if self.is_split else "") if p]
        return "/".join(parts)

    def note(self, e: ExportImage, **files: str) -> None:
        """Record files written for ``e`` (paths relative to the dataset root), for provenance."""
        self.files.setdefault(int(e.image.id or 0), {}).update(files)

    def copy_image(self, e: ExportImage, root: Path, base: str) -> str:
        """Copy ``e``'s image, upright, to ``root/base[/SPLIT]/<name>``; returns that path
        relative to ``root`` (noted as the image's ``image`` file)."""
        rel = "/".join(p for p in (self.folder(base, e), self.image_name(e)) if p)
        if put_image(e.abs_path, root / rel, apply_orientation=True):
            self.rotated += 1
        self.note(e, image=rel)
        return rel


def plan_layout(plan: ExportPlan, *, self_contained: bool = False, val_fraction: float = 0.0,
                seed: int = 0) -> Layout:
    """The layout of ``plan``'s images (split, and unique file names within each split)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ExportError(f"The validation fraction must be at least 0 and below 1, not {val_fraction}.")
    if val_fraction and not self_contained:
        raise ExportError("A train/val split needs a self-contained export (copy the images: --copy-images).")
    ids = [(int(e.image.id or 0), e.image.path) for e in plan.images]
    split_of = split_images(ids, val_fraction, seed) if val_fraction else {i: DEFAULT_SPLIT for i, _ in ids}
    names: dict[int, str] = {}
    used: dict[str, set[str]] = {}
    for e in plan.images:
        i = int(e.image.id or 0)
        names[i] = _unique_name(fit_name(safe_file_name(Path(e.image.path).name)), used.setdefault(split_of[i], set()))
    return Layout(self_contained=self_contained, split_of=split_of, names=names)


def split_images(ids: list[tuple[int, str]], val_fraction: float, seed: int) -> dict[int, str]:
    """``round(n * val_fraction)`` images (at least 1 when there are 2 or more) go to ``val``,
    the others to ``train``: the images sorted by path, shuffled by ``random.Random(seed)``."""
    order = sorted(ids, key=lambda t: t[1])
    random.Random(seed).shuffle(order)
    n_val = round(len(order) * val_fraction)
    if val_fraction > 0 and len(order) >= 2:
        n_val = min(max(n_val, 1), len(order) - 1)
    return {i: ("val" if k < n_val else "train") for k, (i, _p) in enumerate(order)}


def safe_file_name(name: str) -> str:
    """``name`` with the characters Windows, macOS or Linux refuse in a file name replaced by
    ``_`` (others, accents and emoji included, are kept)."""
    out = "".join("_" if ch in _UNSAFE or ord(ch) < 32 else ch for ch in name).rstrip(" .")
    return out if out.strip(". ") else "image"


def fit_name(name: str) -> str:
    """``name`` short enough for every file named after it (``<stem>_2.json``, a temporary
    ``.<name>.xxxxxxxx.tmp`` beside it): an over-long stem keeps its beginning and a short hash
    (:func:`engine.export.staging.short_name`, the same name always shortened the same way)."""
    from .common import STEM_BYTES
    from .staging import short_name

    p = PurePosixPath(name)
    return short_name(p.stem or "image", p.suffix, limit=STEM_BYTES)


def _unique_name(name: str, used: set[str]) -> str:
    """``name``, or ``stem_2.ext``, ``stem_3.ext`` ...: unique among ``used`` by stem, case
    folded (a YOLO label or LabelMe JSON is named after the stem alone; Windows and macOS
    file systems ignore case)."""
    p = PurePosixPath(name)
    stem, suffix = p.stem or "image", p.suffix
    candidate, k = stem, 1
    while candidate.casefold() in used:
        k += 1
        candidate = f"{stem}_{k}"
    used.add(candidate.casefold())
    return candidate + suffix


def labelme_json_paths(plan: ExportPlan) -> dict[int, str]:
    """Annotation-folder layout: where labelme looks for each image's JSON when it opens the
    images' folder with ``--output OUT``: ``<subfolder>/<image stem>.json``, the subfolders
    those of the images below their common folder; a second image with the same stem in a
    folder (``x.jpg`` beside ``x.png``) gets ``<image name>.json``, labelme's own choice."""
    out: dict[int, str] = {}
    used: set[str] = set()
    for e in plan.images:
        rel = PurePosixPath(rel_to(e.abs_path, plan.images_root))
        if rel.parts and rel.parts[0] == "..":  # not below the common folder (another drive)
            rel = PurePosixPath(rel.name)
        stem = PurePosixPath(fit_name(rel.name)).stem
        for name in (stem + ".json", fit_name(rel.name + ".json")):
            path = str(rel.with_name(name))
            if path.casefold() not in used:
                break
        else:
            path = str(rel.with_name(_unique_name(stem + ".json", used)))
        used.add(path.casefold())
        out[int(e.image.id or 0)] = path
    return out


def put_image(src: Path, dst: Path, *, apply_orientation: bool) -> bool:
    """Copy image ``src`` to ``dst`` (atomically); with ``apply_orientation``, an image with an
    EXIF orientation is written rotated instead. Returns True when it was rotated.

    Rotated images keep their format (JPEG at quality 95, WebP lossless) and their other EXIF
    data, without the orientation tag. ExportError when ``src`` cannot be read.
    """
    tmp = dst.with_name(f".{dst.name}.tmp")
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        if apply_orientation and _orientation(src) in range(2, 9):
            _write_rotated(src, tmp)
            os.replace(tmp, dst)
            return True
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
        return False
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"Cannot copy the image {src} into the dataset: {err.strerror or err}.") from err


def _orientation(path: Path) -> int:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return int(im.getexif().get(0x0112, 1) or 1)
    except (OSError, ValueError, Image.DecompressionBombError):
        return 1  # unreadable header or EXIF: copied as it is, like QMask showed it


def _write_rotated(src: Path, dst: Path) -> None:
    from PIL import Image, ImageOps

    with Image.open(src) as im:
        fmt = im.format or "PNG"
        icc = im.info.get("icc_profile")
        shown = ImageOps.exif_transpose(im)  # also drops the orientation tag from its EXIF
        kwargs: dict = {"exif": shown.getexif().tobytes()}
        if icc:
            kwargs["icc_profile"] = icc
        if fmt == "JPEG":
            kwargs["quality"] = 95
        elif fmt == "WEBP":
            kwargs["lossless"] = True
        shown.save(dst, format=fmt, **kwargs)


def provenance_path(final_dir: Path, coco_file: Path | None = None) -> Path:
    """Where the provenance file goes (see the module docstring)."""
    if coco_file is not None:
        return coco_file.parent / PROVENANCE_DIR / coco_file.stem / PROVENANCE_NAME
    return final_dir / PROVENANCE_DIR / PROVENANCE_NAME
