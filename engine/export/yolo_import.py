"""Import a YOLO segmentation dataset (Ultralytics layout), read as Ultralytics reads it.

- The source: a ``data.yaml`` (or a folder holding one), or a folder with ``labels/`` and
  ``classes.txt`` (with ``images/`` beside them, or the images in ``images_dir``).
- ``data.yaml``: the dataset root is ``path`` (relative to the file's folder; a ``path`` that
  no longer exists, a moved dataset, falls back to the file's folder, with a note) or the
  file's folder; ``train``/``val``/``test`` name image folders, image lists (``.txt``) or lists
  of those, relative to the root. Class names from ``names`` (list or ``{index: name}``).
- Each image's label file is Ultralytics': the last ``/images/`` of its path swapped for
  ``/labels/``, the extension for ``.txt`` (without ``data.yaml``, ``labels/<stem>.txt``
  below the dataset). An image without one is imported without annotations.
- Each row is one instance: ``class x1 y1 x2 y2 ...`` (at least 3 points), filled as
  Ultralytics' ``polygon2mask`` does (float32 coordinates times the image size, cast to int32,
  ``cv2.fillPoly``: pixel centres, boundary included); a detection row ``class x y w h``
  becomes its box (the pixels whose centres lie in it). The size is the image's as displayed.
- A row that is not numbers, has an odd count of coordinates, coordinates outside [0, 1]
  (Ultralytics allows 1.01) or a class index the class list does not hold stops the import
  with ``file:line`` named; nothing is written.
- From QMask's own export (``provenance/qmask-provenance.json`` in the dataset), a row still
  as QMask wrote it gets its question, answer and acceptance back.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..errors import ExportError, ImageError
from ..project import displayed_size
from .classes import indexed_names, names_from_yaml, read_yaml
from .imported import ImportedDataset, ImportedImage, ImportedInstance
from .reading import fill_int_polygon, list_images, provenance_annotations
from .yolo import row_digest

__all__ = ["read_yolo", "yolo_row_mask", "find_yaml"]

_YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml", "dataset.yml")


def find_yaml(folder: Path) -> Path | None:
    for name in _YAML_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


def read_yolo(source: str | os.PathLike[str], images_dir: str | os.PathLike[str] | None = None) -> ImportedDataset:
    """Read and check a YOLO segmentation dataset whole (nothing is written)."""
    src = Path(source).expanduser().absolute()
    dataset = ImportedDataset(format="yolo")
    yaml_path = src if src.is_file() else find_yaml(src)
    if not src.exists():
        raise ExportError(f"No YOLO dataset at {src}.")
    if yaml_path is not None:
        doc = read_yaml(yaml_path)
        names = names_from_yaml(doc, yaml_path)
        root = _root(doc, yaml_path, dataset)
    else:
        root = src
        classes = next((p for p in (root / "classes.txt", root / "labels" / "classes.txt") if p.is_file()), None)
        if classes is None:
            raise ExportError(f"{src} has no data.yaml and no classes.txt: YOLO labels hold class indices, and "
                              "the class names come from one of those.")
        names = indexed_names(classes)
        doc = {}
    dataset.categories = list(names)
    pairs = _images_and_labels(root, doc, yaml_path, images_dir)
    if not pairs:
        raise ExportError(f"No images found for the YOLO dataset at {src}.")
    known = _known_rows(root)
    for image, label in pairs:
        try:
            w, h = displayed_size(image)
        except ImageError as err:
            dataset.images.append(ImportedImage(path=image, width=None, height=None, error=str(err),
                                                source=_rel(label, root), name=_rel(image, root)))
            continue
        item = ImportedImage(path=image, width=w, height=h, source=_rel(label, root), name=_rel(image, root))
        dataset.images.append(item)
        if label.is_file():
            item.instances = _read_label(label, root, names, w, h, known, dataset.skipped)
    return dataset


def _root(doc: dict[str, Any], yaml_path: Path, dataset: ImportedDataset) -> Path:
    given = doc.get("path")
    if not given:
        return yaml_path.parent
    root = Path(str(given)).expanduser()
    root = root if root.is_absolute() else (yaml_path.parent / root)
    if not root.is_dir():
        dataset.skipped.append(f"{yaml_path.name}: its path {given!r} does not exist (a moved dataset?); "
                               f"read it from {yaml_path.parent} instead")
        return yaml_path.parent
    return root


def _images_and_labels(root: Path, doc: dict[str, Any], yaml_path: Path | None,
                       images_dir: str | os.PathLike[str] | None) -> list[tuple[Path, Path]]:
    """Each image with the label file Ultralytics would read for it (which may not exist)."""
    if images_dir is not None:
        folder = Path(images_dir).expanduser().absolute()
        if not folder.is_dir():
            raise ExportError(f"The images folder {folder} does not exist.")
        labels = root / "labels"
        out = []
        for image in list_images(folder):
            rel = image.relative_to(folder).with_suffix(".txt")
            label = labels / rel if (labels / rel).is_file() else labels / rel.name
            out.append((image, label))
        return out
    images: list[Path] = []
    if yaml_path is not None:
        for key in ("train", "val", "test"):
            entries = doc.get(key)
            for entry in entries if isinstance(entries, list) else [entries] if entries else []:
                images += _split_images(root, str(entry), yaml_path)
    else:
        images = list_images(root / "images" if (root / "images").is_dir() else root)
    seen: set[Path] = set()
    out = []
    for image in images:
        if image not in seen:
            seen.add(image)
            out.append((image, _label_path(image, root)))
    return out


def _split_images(root: Path, entry: str, yaml_path: Path) -> list[Path]:
    p = (root / entry)
    if p.is_dir():
        return list_images(p)
    if p.is_file() and p.suffix.lower() == ".txt":
        out = []
        for line in p.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line:
                q = Path(line)
                q = q if q.is_absolute() else (p.parent / line).resolve()
                out.append(q)
        return out
    raise ExportError(f"{yaml_path}: {entry!r} is neither an image folder nor an image list below {root}.")


def _label_path(image: Path, root: Path) -> Path:
    """Ultralytics' ``img2label_paths``; ``root/labels/<stem>.txt`` for an image not below an
    ``images`` folder."""
    s = str(image)
    a, b = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    if a in s:
        return Path(b.join(s.rsplit(a, 1))).with_suffix(".txt")
    return root / "labels" / (image.stem + ".txt")


def _known_rows(root: Path) -> dict[tuple[str, int], dict[str, Any]]:
    """QMask's own rows: (label file, row number) -> the annotation's provenance."""
    return {(a["_files"].get("labels"), a.get("yolo_row")): a for a in provenance_annotations(root)
            if a.get("yolo_row") and a["_files"].get("labels")}


def yolo_row_mask(coords: np.ndarray, width: int, height: int) -> np.ndarray:
    """A row's normalised float32 coordinates -> ``[H, W]`` bool, as Ultralytics fills them
    (``2n`` values: a polygon) or, for 4 values, the box ``x_centre y_centre w h``."""
    c = np.asarray(coords, dtype=np.float32)
    if c.size == 4:
        xc, yc, bw, bh = (float(v) for v in c)
        x0, x1 = round((xc - bw / 2) * width), round((xc + bw / 2) * width)
        y0, y1 = round((yc - bh / 2) * height), round((yc + bh / 2) * height)
        out = np.zeros((height, width), dtype=bool)
        out[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = True
        return out
    seg = c.reshape(-1, 2).copy()
    seg[:, 0] *= np.float32(width)
    seg[:, 1] *= np.float32(height)
    return fill_int_polygon(seg.astype(np.int32), height, width)


def _read_label(label: Path, root: Path, names: list[str], w: int, h: int,
                known: dict[tuple[str, int], dict[str, Any]], skipped: list[str]) -> list[ImportedInstance]:
    try:
        text = label.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ExportError(f"Cannot read the label file {label}: {err}.") from err
    rel = _rel(label, root)
    out = []
    row = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        row += 1
        where = f"{label}:{lineno}"
        tokens = line.split()
        try:
            cls_f = float(tokens[0])
            coords = np.array(tokens[1:], dtype=np.float32)
        except ValueError:
            raise ExportError(f"{where}: not a label row (class index, then coordinates): {line.strip()[:60]!r}.") from None
        if not cls_f.is_integer() or cls_f < 0:
            raise ExportError(f"{where}: the class index {tokens[0]!r} is not a whole number.")
        cls = int(cls_f)
        if cls >= len(names):
            raise ExportError(f"{where}: class {cls}, but the class list has {len(names)} class(es) (0 to {len(names) - 1}).")
        if coords.size != 4 and (coords.size < 6 or coords.size % 2):
            raise ExportError(f"{where}: {coords.size} coordinate(s); a row holds a box (4) or a polygon "
                              "(at least 3 x, y pairs).")
        if not np.all(np.isfinite(coords)) or coords.min() < 0 or coords.max() > 1.01:
            raise ExportError(f"{where}: coordinates must be normalised to 0..1 (this row has "
                              f"{float(np.nanmin(coords)):g} to {float(np.nanmax(coords)):g}).")
        mask = yolo_row_mask(coords, w, h)
        attrs: dict[str, Any] = {"source": f"{rel}:{lineno}"}
        mine = known.get((rel, row))
        if mine is not None and mine.get("yolo_row_sha1") == row_digest(line):
            attrs.update({k: mine.get(k) for k in ("question", "answer", "accepted")})
        if mask.any():
            out.append(ImportedInstance.from_mask(mask, names[cls], attrs))
        else:
            skipped.append(f"{rel}:{lineno}: covers no pixel of the {w}x{h} image")
    return out


def _rel(path: Path, root: Path) -> str:
    try:
        return PurePosixPath(path.relative_to(root).as_posix()).as_posix()
    except ValueError:
        return path.as_posix()
