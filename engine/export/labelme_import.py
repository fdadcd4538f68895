"""Import LabelMe JSON files (a folder of them, searched recursively, or one file), read as
labelme reads them.

- The image: ``imagePath`` relative to the JSON file (Windows separators accepted); else the
  file of that name in ``images_dir``, or anywhere below the folder. Its size: ``imageWidth``
  and ``imageHeight`` (labelme's frame: the image with its EXIF orientation applied).
- Shapes: ``polygon`` (PIL's polygon with outline and fill, as labelme's ``shape_to_mask``: pixel
  centres, boundary included), ``rectangle``, ``circle``, and ``mask`` (the PNG placed at its
  rounded top-left, as ``shapes_to_label`` does). ``point``, ``line`` and ``linestrip`` outline
  nothing and are skipped (said in the report). Shapes of one label sharing a ``group_id`` are
  one instance (labelme's and supervision's reading); a shape without one is its own.
- An instance's question: its shapes' ``description`` (where QMask writes it), else the label;
  ``flags.accepted`` its acceptance; from QMask's own export (``provenance/`` beside), the
  answer too.
- JSON that is not LabelMe's (no ``shapes``) is skipped with a note; a LabelMe file with a
  broken shape stops the import, naming the file and the shape; nothing is written.
"""

from __future__ import annotations

import math
import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from ..errors import ExportError
from .imported import ImportedDataset, ImportedImage, ImportedInstance
from .labelme import decode_mask_shape
from .layout import PROVENANCE_DIR
from .reading import provenance_annotations, read_json

__all__ = ["read_labelme", "shape_mask", "is_labelme_file"]

_REGIONS = ("polygon", "rectangle", "circle", "mask")


def is_labelme_file(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("shapes"), list) and "imagePath" in doc


def read_labelme(source: str | os.PathLike[str], images_dir: str | os.PathLike[str] | None = None) -> ImportedDataset:
    """Read and check LabelMe files whole (nothing is written)."""
    src = Path(source).expanduser().absolute()
    if not src.exists():
        raise ExportError(f"No LabelMe file or folder at {src}.")
    root = src if src.is_dir() else src.parent
    files = [src] if src.is_file() else _json_files(src)
    extra = Path(images_dir).expanduser().absolute() if images_dir is not None else None
    if extra is not None and not extra.is_dir():
        raise ExportError(f"The images folder {extra} does not exist.")
    dataset = ImportedDataset(format="labelme")
    known = {(a["_files"].get("annotations"), a.get("labelme_group_id")): a for a in provenance_annotations(root)
             if a.get("labelme_group_id")}
    name_index: dict[str, list[Path]] | None = None
    for path in files:
        doc = _load(path)
        if not is_labelme_file(doc):
            dataset.skipped.append(f"{_rel(path, root)}: not a LabelMe file (no 'shapes' and 'imagePath')")
            continue
        image_path = PureWindowsPath(str(doc["imagePath"])).as_posix() if doc["imagePath"] else ""
        candidate = path.parent / image_path if image_path else path.with_suffix("")
        if not candidate.is_file():
            name = PurePosixPath(image_path).name
            if extra is not None and (extra / name).is_file():
                candidate = extra / name
            elif name:
                if name_index is None:
                    name_index = _index(extra or root)
                matches = sorted(name_index.get(name, []))
                candidate = matches[0] if matches else candidate
        w, h = doc.get("imageWidth"), doc.get("imageHeight")
        if not (isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0):
            if not candidate.is_file():
                raise ExportError(f"{path}: no 'imageWidth'/'imageHeight' and the image {image_path!r} is not found, "
                                  "so its shapes cannot be placed.")
            w = h = None  # read from the file by the seam
        item = ImportedImage(path=candidate, width=w, height=h, source=_rel(path, root),
                             name=_rel(candidate, root) if candidate.is_file() else image_path)
        dataset.images.append(item)
        if w is None:
            from ..project import displayed_size

            w, h = displayed_size(candidate)
            item.width, item.height = w, h
        item.instances = _instances(doc, path, root, h, w, known, dataset.skipped)  # type: ignore[arg-type]
    categories: list[str] = []
    for im in dataset.images:
        for inst in im.instances:
            if inst.category not in categories:
                categories.append(inst.category)
    dataset.categories = categories
    if not dataset.images:
        raise ExportError(f"No LabelMe files in {src}.")
    return dataset


def _json_files(folder: Path) -> list[Path]:
    out = []
    for dirpath, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != PROVENANCE_DIR)
        out += [Path(dirpath) / f for f in files if f.lower().endswith(".json") and not f.startswith(".")]
    return sorted(out)


def _index(root: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            found.setdefault(f, []).append(Path(dirpath) / f)
    return found


def _load(path: Path) -> Any:
    return read_json(path)


def shape_mask(shape: dict, height: int, width: int) -> np.ndarray | None:
    """One region shape -> ``[H, W]`` bool as labelme rasterises it; None for shapes that
    outline no region (point, line, linestrip). ValueError for a malformed shape."""
    from PIL import Image, ImageDraw

    kind = shape.get("shape_type") or "polygon"
    if kind == "mask":
        if not isinstance(shape.get("mask"), str):
            raise ValueError("a mask shape needs its base64 PNG in 'mask'")
        return decode_mask_shape(shape, height, width)
    if kind not in _REGIONS:
        return None
    pts = shape.get("points")
    if not isinstance(pts, list) or not pts or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                        and math.isfinite(v) for v in p) for p in pts):
        raise ValueError("'points' must be a list of [x, y] numbers")
    xy = [(float(x), float(y)) for x, y in pts]
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    if kind == "rectangle":
        if len(xy) != 2:
            raise ValueError("a rectangle has 2 points")
        (x0, y0), (x1, y1) = xy
        draw.rectangle(((min(x0, x1), min(y0, y1)), (max(x0, x1), max(y0, y1))), outline=1, fill=1)
    elif kind == "circle":
        if len(xy) != 2:
            raise ValueError("a circle has 2 points (centre, a point on it)")
        (cx, cy), (px, py) = xy
        d = math.hypot(cx - px, cy - py)
        draw.ellipse(((cx - d, cy - d), (cx + d, cy + d)), outline=1, fill=1)
    else:
        while len(xy) < 3:  # a 1-px line or a single pixel, as QMask writes them with 3 points
            xy.append(xy[0])
        draw.polygon(xy, outline=1, fill=1)
    return np.asarray(canvas, dtype=bool)


def _instances(doc: dict, path: Path, root: Path, h: int, w: int, known: dict, skipped: list[str]) -> list[ImportedInstance]:
    rel = _rel(path, root)
    groups: dict[Any, dict[str, Any]] = {}
    for i, shape in enumerate(doc["shapes"]):
        where = f"{path}: shapes[{i}]"
        if not isinstance(shape, dict) or not isinstance(shape.get("label"), str) or not shape["label"].strip():
            raise ExportError(f"{where}: a shape needs a 'label'.")
        try:
            mask = shape_mask(shape, h, w)
        except (ValueError, TypeError, OSError) as err:
            raise ExportError(f"{where}: {err}.") from err
        if mask is None:
            skipped.append(f"{rel}: shapes[{i}] is a {shape.get('shape_type')}, which outlines no region")
            continue
        gid = shape.get("group_id")
        key = (shape["label"], gid) if isinstance(gid, int) and not isinstance(gid, bool) else ("", i)
        g = groups.setdefault(key, {"label": shape["label"], "mask": np.zeros((h, w), bool), "shape": shape,
                                    "group_id": gid, "first": i})
        g["mask"] |= mask
    out = []
    for g in groups.values():
        if not g["mask"].any():
            skipped.append(f"{rel}: shapes[{g['first']}] covers no pixel of the {w}x{h} image")
            continue
        shape = g["shape"]
        attrs: dict[str, Any] = {"source": f"{rel}: shapes[{g['first']}]"}
        if isinstance(shape.get("description"), str) and shape["description"].strip():
            attrs["question"] = shape["description"]
        flags = shape.get("flags")
        if isinstance(flags, dict) and isinstance(flags.get("accepted"), bool):
            attrs["accepted"] = flags["accepted"]
        mine = known.get((rel, g["group_id"]))
        if mine is not None and mine.get("question") == attrs.get("question"):
            attrs["answer"] = mine.get("answer")
        out.append(ImportedInstance.from_mask(g["mask"], g["label"], attrs))
    return out


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()
