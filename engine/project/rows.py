"""Records to database rows and back.

Masks stay COCO RLE (the ``counts`` string and the size); an untouched automatic mask is a flag,
not a second copy. Heat maps are float16 blobs of ``map / scale`` (``[G, G]`` cells), a run's
per-word maps one zlib-compressed blob of uint8 maps (:func:`word_maps_blob`), captions a
zlib-compressed JSON list (they are most of a run's bytes), the small rest one JSON object.
Nothing is decoded until a record is asked for.
"""

from __future__ import annotations

import json
import math
import zlib
from typing import Any

import numpy as np

from ..errors import ProjectError
from .codec import object_extras_from_json, object_extras_to_json, run_extras_from_json, run_extras_to_json
from .objects import OBJECT_SOURCES, ObjectRecord
from .records import STATUSES, Category, Edit, ImageRecord, clean_label
from .review import rle_area
from .runs import INSTANCE_MODES, QuestionRun

__all__ = ["RUN_COLUMNS", "OBJECT_COLUMNS", "run_row", "run_from_row", "object_row", "object_from_row",
           "image_from_row", "IMAGE_COLUMNS", "category_from_row", "edit_from_row", "heat_blob", "heat_from_blob",
           "word_maps_blob", "word_maps_from_blob"]

RUN_COLUMNS = ("key", "question", "answer", "itm_probability", "alpha", "instances", "random_weights", "heatmap",
               "heat_rows", "heat_cols", "heat_scale", "word_maps", "captions", "extra", "created", "updated")
OBJECT_COLUMNS = ("uid", "source", "question", "run_key", "accepted", "proposal", "draw_order", "mask_source",
                  "mask_score", "mask", "mask_h", "mask_w", "mask_area", "auto_mask", "auto_same", "extra",
                  "created", "updated")
IMAGE_COLUMNS = ("id", "path", "width", "height", "sha256", "status", "error", "added")


def _finite(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def heat_blob(heatmap: np.ndarray | None) -> tuple[bytes | None, int | None, int | None, float | None]:
    """``[Gh, Gw]`` map -> (float16 blob of map / scale, rows, cols, scale); Nones for no map."""
    if heatmap is None:
        return None, None, None, None
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.ndim != 2:
        raise ProjectError(f"A heat map must be 2-D [G, G], not shape {heat.shape}.")
    heat = np.where(np.isfinite(heat), heat, 0.0).astype(np.float32)
    scale = float(np.abs(heat).max()) if heat.size else 0.0
    blob = ((heat / scale) if scale > 0 else heat).astype("<f2").tobytes()
    return blob, int(heat.shape[0]), int(heat.shape[1]), scale


def heat_from_blob(blob: bytes | None, rows: Any, cols: Any, scale: Any) -> np.ndarray | None:
    if blob is None:
        return None
    return np.frombuffer(blob, dtype="<f2").astype(np.float32).reshape(int(rows), int(cols)) * np.float32(scale)


def word_maps_blob(word_maps: list[tuple[str, np.ndarray]]) -> bytes | None:
    """A run's per-word maps (``(word, [Gh, Gw] float)`` pairs, all one shape) as one blob; None
    for none. Each map is kept as uint8 between its own minimum and maximum (256 levels, as many as
    a colour map shows): a JSON header ``{"words", "shape": [K, Gh, Gw], "low", "high"}``, a
    newline, then the ``[K, Gh, Gw]`` uint8 array, the whole zlib-compressed."""
    if not word_maps:
        return None
    words = [str(w) for w, _ in word_maps]
    maps = np.stack([np.nan_to_num(np.asarray(m, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
                     for _, m in word_maps])
    if maps.ndim != 3:
        raise ProjectError(f"Per-word maps must be 2-D [G, G], not shape {maps.shape[1:]}.")
    low, high = maps.min(axis=(1, 2)), maps.max(axis=(1, 2))
    span = np.where(high > low, high - low, 1.0)[:, None, None]
    levels = np.rint((maps - low[:, None, None]) / span * 255.0).astype(np.uint8)
    header = json.dumps({"words": words, "shape": list(maps.shape), "low": low.tolist(), "high": high.tolist()},
                        ensure_ascii=False, separators=(",", ":"))
    return zlib.compress(header.encode("utf-8") + b"\n" + levels.tobytes(), 6)


def word_maps_from_blob(blob: bytes | None) -> list[tuple[str, np.ndarray]]:
    """:func:`word_maps_blob` back to ``(word, [Gh, Gw] float32)`` pairs (within a 255th of each
    map's range of what was written). Raises ValueError for a blob that does not hold that."""
    if not blob:
        return []
    raw = zlib.decompress(blob)
    head, _, data = raw.partition(b"\n")
    header = json.loads(head.decode("utf-8"))
    k, rows, cols = (int(v) for v in header["shape"])
    words, low, high = list(header["words"]), np.asarray(header["low"], np.float32), np.asarray(header["high"], np.float32)
    if len(words) != k or low.shape != (k,) or high.shape != (k,) or len(data) != k * rows * cols:
        raise ValueError("the per-word maps do not match their header")
    levels = np.frombuffer(data, dtype=np.uint8).reshape(k, rows, cols).astype(np.float32)
    maps = low[:, None, None] + levels / np.float32(255.0) * (high - low)[:, None, None]
    return [(str(w), maps[i]) for i, w in enumerate(words)]


def run_row(run: QuestionRun) -> dict[str, Any]:
    """The ``runs`` columns of a run (all but ``id`` and ``image_id``)."""
    blob, rows, cols, scale = heat_blob(run.heatmap)
    return {
        "key": run.key, "question": run.question, "answer": run.answer,
        "itm_probability": _finite(run.itm_probability), "alpha": float(run.alpha),
        "instances": run.instances if run.instances in INSTANCE_MODES else "one",
        "random_weights": int(bool(run.random_weights)),
        "heatmap": blob, "heat_rows": rows, "heat_cols": cols, "heat_scale": scale,
        "word_maps": word_maps_blob(run.word_maps),
        "captions": zlib.compress(json.dumps(list(run.captions), ensure_ascii=False).encode("utf-8"), 6)
        if run.captions else None,
        "extra": json.dumps(run_extras_to_json(run), ensure_ascii=False, separators=(",", ":"), allow_nan=False),
        "created": float(run.created), "updated": float(run.updated),
    }


def run_from_row(row: Any) -> QuestionRun:
    """A run from a ``runs`` row (a ``sqlite3.Row`` or mapping with the columns above)."""
    try:
        captions = json.loads(zlib.decompress(row["captions"]).decode("utf-8")) if row["captions"] else []
        run = QuestionRun(question=row["question"], answer=row["answer"], captions=[str(c) for c in captions],
                          itm_probability=row["itm_probability"],
                          heatmap=heat_from_blob(row["heatmap"], row["heat_rows"], row["heat_cols"], row["heat_scale"]),
                          word_maps=word_maps_from_blob(row["word_maps"]),
                          alpha=float(row["alpha"]), instances=row["instances"],
                          random_weights=bool(row["random_weights"]),
                          created=float(row["created"]), updated=float(row["updated"]))
        return run_extras_from_json(run, json.loads(row["extra"] or "{}"), "run")
    except (ValueError, TypeError, KeyError, zlib.error, ProjectError) as err:
        raise ProjectError(f"A question run of the project is damaged ({err}).") from err


def object_row(obj: ObjectRecord) -> dict[str, Any]:
    """The ``objects`` columns of an object (all but ``id``, ``image_id``, ``category_id`` and
    ``review``, which the store sets)."""
    from ..vqa.question import normalise_question

    mask, auto = obj.mask_rle, obj.auto_mask_rle
    same = mask is not None and auto is not None and auto["counts"] == mask["counts"] \
        and list(auto["size"]) == list(mask["size"])
    return {
        "uid": obj.uid, "source": obj.source if obj.source in OBJECT_SOURCES else "manual",
        "question": obj.question, "run_key": None if obj.question is None else normalise_question(obj.question),
        "accepted": int(bool(obj.accepted)), "proposal": int(bool(obj.proposal)), "draw_order": int(obj.order),
        "mask_source": obj.mask_source, "mask_score": _finite(obj.mask_score),
        "mask": None if mask is None else mask["counts"],
        "mask_h": None if mask is None else int(mask["size"][0]),
        "mask_w": None if mask is None else int(mask["size"][1]),
        "mask_area": None if mask is None else rle_area(mask),
        "auto_mask": None if auto is None or same else json.dumps(auto),
        "auto_same": int(same),
        "extra": json.dumps(object_extras_to_json(obj), ensure_ascii=False, separators=(",", ":"), allow_nan=False),
        "created": float(obj.created), "updated": float(obj.updated),
    }


def object_from_row(row: Any) -> ObjectRecord:
    """An object from an ``objects`` row joined with its category's name (``category_name``)."""
    try:
        mask = None
        if row["mask"] is not None:
            mask = {"size": [int(row["mask_h"]), int(row["mask_w"])], "counts": row["mask"]}
        auto = dict(mask) if row["auto_same"] and mask is not None else \
            (json.loads(row["auto_mask"]) if row["auto_mask"] else None)
        obj = ObjectRecord(uid=row["uid"], category=row["category_name"], mask_rle=mask, auto_mask_rle=auto,
                           mask_score=row["mask_score"], mask_source=row["mask_source"], source=row["source"],
                           question=row["question"], accepted=bool(row["accepted"]), proposal=bool(row["proposal"]),
                           order=int(row["draw_order"]), review=float(row["review"]),
                           reasons=[str(r) for r in json.loads(row["reasons"] or "[]")],
                           created=float(row["created"]), updated=float(row["updated"]))
        return object_extras_from_json(obj, json.loads(row["extra"] or "{}"), "object")
    except (ValueError, TypeError, KeyError, ProjectError) as err:  # (a bad part of ``extra`` names its field)
        raise ProjectError(f"An object of the project is damaged ({err}).") from err


def image_from_row(row: Any, objects: list[ObjectRecord] | None = None,
                   runs: list[QuestionRun] | None = None) -> ImageRecord:
    status = row["status"]
    return ImageRecord(path=row["path"], width=row["width"], height=row["height"], sha256=row["sha256"],
                       status=status if status in STATUSES else "pending", error=row["error"],
                       objects=list(objects or []), runs=list(runs or []), added=float(row["added"]),
                       id=int(row["id"]))


def edit_from_row(row: Any) -> Edit:
    """An edit-log entry from an ``edits`` row."""
    return Edit(row["id"], row["time"], row["image_id"], row["question_key"], row["object_uid"], row["source"],
                row["action"], row["writer"], json.loads(row["detail"] or "{}"))


def category_from_row(row: Any) -> Category:
    color = tuple(int(c) for c in row["color"].split(",")) if row["color"] else None
    return Category(id=int(row["id"]), name=clean_label(row["name"]) or row["name"], color=color)  # type: ignore[arg-type]
