"""What the dataset readers (YOLO, LabelMe, PNG masks) share: listing images, reading
QMask's own provenance file back, and filling polygons the way the formats' own readers do."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..imaging.images import IMAGE_EXTENSIONS
from .layout import PROVENANCE_DIR, PROVENANCE_NAME

__all__ = ["list_images", "provenance_annotations", "fill_int_polygon", "read_json", "JSON_NOT_READ"]

JSON_NOT_READ = "not readable JSON"


def read_json(path: Path, what: str = JSON_NOT_READ, kind: str = "") -> Any:
    """A dataset's JSON file, parsed with limits (:mod:`engine.runtime.untrusted_json`: nesting,
    numbers, text); ExportError naming the file, and the line where it stops being JSON.
    ``kind`` names the format in the missing-file message ("No COCO file at ...")."""
    from ..errors import ExportError
    from ..runtime.untrusted_json import UntrustedJSONError, load_untrusted

    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ExportError(f"No {kind + ' ' if kind else ''}file at {path}.") from None
    except OSError as err:
        raise ExportError(f"Cannot read {path}: {err.strerror or err}.") from err
    try:
        return load_untrusted(raw)
    except UntrustedJSONError as err:
        if err.lineno is not None:
            reason = str(err).removeprefix("broken JSON: ").split(": line")[0]
            raise ExportError(f"{path}:{err.lineno}: {what} ({reason}, column {err.colno}). Nothing was "
                              "imported.") from None
        raise ExportError(f"{path}: {what}: {err}. Nothing was imported.") from None


def list_images(folder: Path) -> list[Path]:
    """Image files below ``folder`` (recursively, hidden entries and ``provenance/`` skipped), sorted."""
    out = []
    for dirpath, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != PROVENANCE_DIR)
        out += [Path(dirpath) / f for f in files if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(out)


def provenance_annotations(root: Path) -> list[dict[str, Any]]:
    """The annotations listed in ``root/provenance/qmask-provenance.json`` (a QMask export's),
    each with its image's ``files`` as ``_files`` and its ``source`` (path), ``stem`` and
    ``split`` as ``_image``; ``[]`` when there is none or it cannot be read (it only adds
    what the dataset files do not hold: answers, questions, where the images were)."""
    from ..errors import ExportError

    path = root / PROVENANCE_DIR / PROVENANCE_NAME
    try:
        doc = read_json(path)
        out = []
        for image in doc["images"]:
            for ann in image["annotations"]:
                out.append({**ann, "_files": image.get("files") or {},
                            "_image": {k: image.get(k) for k in ("source", "stem", "split")}})
        return out
    except (ExportError, KeyError, TypeError):
        return []


def fill_int_polygon(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """``cv2.fillPoly`` of one polygon with ``[N, 2]`` integer (x, y) pixel-centre vertices:
    its inside and its boundary, as Ultralytics and supervision fill; ``[H, W]`` bool."""
    import cv2

    mask = np.zeros((height, width), dtype=np.uint8)
    cv2.fillPoly(mask, [np.asarray(points, dtype=np.int32).reshape(-1, 1, 2)], 1)
    return mask.astype(bool)
