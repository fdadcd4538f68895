"""Records to database rows and back.

Masks stay COCO RLE (the ``counts`` string and the size); an untouched automatic mask is a flag,
not a second copy. Heat maps are float16 blobs of ``map / scale`` (``[G, G]`` cells), captions a
zlib-compressed JSON list (they are most of a record's bytes), the small rest one JSON object.
Nothing is decoded until a record is asked for.
"""

from __future__ import annotations

import json
import math
import zlib
from typing import Any

import numpy as np

from ..errors import ProjectError
from .codec import (box_from_json, point_from_json, point_to_json, points_asked_from_json, previous_answer_from_json,
                    question_extras_to_json)
from .records import STATUSES, Category, Edit, ImageRecord, QuestionRecord, clean_label
from .review import question_review_priority, rle_area

__all__ = ["QUESTION_COLUMNS", "question_row", "question_from_row", "image_from_row", "IMAGE_COLUMNS",
           "list_state", "category_from_row", "edit_from_row"]

QUESTION_COLUMNS = ("key", "question", "answer", "label", "accepted", "mask_source", "itm_probability",
                    "mask_score", "alpha", "random_weights", "review", "mask", "mask_h", "mask_w",
                    "mask_area", "auto_mask", "auto_same", "heatmap", "heat_rows", "heat_cols",
                    "heat_scale", "captions", "extra", "created", "updated")
IMAGE_COLUMNS = ("id", "path", "width", "height", "sha256", "status", "error", "added")


def _finite(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def question_row(q: QuestionRecord) -> dict[str, Any]:
    """The ``questions`` columns of a record (all but ``id`` and ``image_id``)."""
    mask = q.mask_rle
    auto = q.auto_mask_rle
    same = mask is not None and auto is not None and auto["counts"] == mask["counts"] \
        and list(auto["size"]) == list(mask["size"])
    heat = blob = None
    rows = cols = None
    scale = None
    if q.heatmap is not None:
        heat = np.asarray(q.heatmap, dtype=np.float32)
        if heat.ndim != 2:
            raise ProjectError(f"A heat map must be 2-D [G, G], not shape {heat.shape}.")
        heat = np.where(np.isfinite(heat), heat, 0.0).astype(np.float32)
        scale = float(np.abs(heat).max()) if heat.size else 0.0
        blob = ((heat / scale) if scale > 0 else heat).astype("<f2").tobytes()
        rows, cols = heat.shape
    extra: dict[str, Any] = {
        "points": [point_to_json(p) for p in q.points],
        "auto_points": [point_to_json(p) for p in q.auto_points],
        "models": dict(q.models),
    }
    extra.update(question_extras_to_json(q))
    return {
        "key": q.key, "question": q.question, "answer": q.answer,
        "label": None if q.label is None else (clean_label(q.label) or None),
        "accepted": int(bool(q.accepted)), "mask_source": q.mask_source,
        "itm_probability": _finite(q.itm_probability), "mask_score": _finite(q.mask_score),
        "alpha": float(q.alpha), "random_weights": int(bool(q.random_weights)),
        "review": question_review_priority(q),
        "mask": None if mask is None else mask["counts"],
        "mask_h": None if mask is None else int(mask["size"][0]),
        "mask_w": None if mask is None else int(mask["size"][1]),
        "mask_area": None if mask is None else rle_area(mask),
        "auto_mask": None if auto is None or same else json.dumps(auto),
        "auto_same": int(same),
        "heatmap": blob, "heat_rows": rows, "heat_cols": cols, "heat_scale": scale,
        "captions": zlib.compress(json.dumps(list(q.captions), ensure_ascii=False).encode("utf-8"), 6)
        if q.captions else None,
        "extra": json.dumps(extra, ensure_ascii=False, separators=(",", ":")),
        "created": float(q.created), "updated": float(q.updated),
    }


def question_from_row(row: Any) -> QuestionRecord:
    """A record from a ``questions`` row (a ``sqlite3.Row`` or mapping with the columns above)."""
    try:
        extra = json.loads(row["extra"] or "{}")
        mask = None
        if row["mask"] is not None:
            mask = {"size": [int(row["mask_h"]), int(row["mask_w"])], "counts": row["mask"]}
        auto = dict(mask) if row["auto_same"] and mask is not None else \
            (json.loads(row["auto_mask"]) if row["auto_mask"] else None)
        heat = None
        if row["heatmap"] is not None:
            heat = (np.frombuffer(row["heatmap"], dtype="<f2").astype(np.float32)
                    .reshape(int(row["heat_rows"]), int(row["heat_cols"])) * np.float32(row["heat_scale"]))
        captions = json.loads(zlib.decompress(row["captions"]).decode("utf-8")) if row["captions"] else []
        return QuestionRecord(
            question=row["question"], answer=row["answer"], captions=captions,
            itm_probability=row["itm_probability"], heatmap=heat,
            auto_points=[point_from_json(p, "auto_points") for p in extra.get("auto_points", [])],
            points=[point_from_json(p, "points") for p in extra.get("points", [])],
            mask_rle=mask, auto_mask_rle=auto, mask_score=row["mask_score"],
            mask_source=row["mask_source"], label=row["label"], alpha=float(row["alpha"]),
            models={str(k): str(v) for k, v in extra.get("models", {}).items()},
            random_weights=bool(row["random_weights"]), accepted=bool(row["accepted"]),
            created=float(row["created"]), updated=float(row["updated"]),
            timings={str(k): float(v) for k, v in extra.get("timings", {}).items()},
            notes=[str(n) for n in extra.get("notes", [])],
            stroke_add_rle=_stroke_layer(extra, "add"), stroke_erase_rle=_stroke_layer(extra, "erase"),
            box=None if extra.get("box") is None else box_from_json(extra["box"]),
            previous_answers=[previous_answer_from_json(a) for a in extra.get("previous_answers", [])],
            points_asked=points_asked_from_json(extra.get("points_asked")))
    except (ValueError, TypeError, KeyError, zlib.error) as err:
        raise ProjectError(f"A question record of the project is damaged ({err}).") from err


def _stroke_layer(extra: dict, name: str) -> dict | None:
    """One stroke layer's RLE from a row's ``extra`` (validated when decoded)."""
    layer = (extra.get("strokes") or {})[name] if "strokes" in extra else None
    if layer is not None and not (isinstance(layer, dict) and "size" in layer and "counts" in layer):
        raise TypeError(f"the stroke layer {name!r} is not an RLE")
    return layer


def image_from_row(row: Any, questions: list[QuestionRecord] | None = None) -> ImageRecord:
    status = row["status"]
    return ImageRecord(path=row["path"], width=row["width"], height=row["height"], sha256=row["sha256"],
                       status=status if status in STATUSES else "pending", error=row["error"],
                       questions=list(questions or []), added=float(row["added"]), id=int(row["id"]))


def edit_from_row(row: Any) -> Edit:
    """An edit-log entry from an ``edits`` row."""
    return Edit(row["id"], row["time"], row["image_id"], row["question_key"], row["source"], row["action"],
                row["writer"], json.loads(row["detail"] or "{}"))


def category_from_row(row: Any) -> Category:
    color = tuple(int(c) for c in row["color"].split(",")) if row["color"] else None
    return Category(id=int(row["id"]), name=row["name"], color=color)  # type: ignore[arg-type]


def list_state(status: str, latest: QuestionRecord | None) -> str:
    """What the image list shows for an image: failed, accepted, edited, answered, asked or new."""
    if status == "failed":
        return "failed"
    if latest is None:
        return "new"
    if latest.accepted:
        return "accepted"
    if latest.mask_source == "user":
        return "edited"
    if latest.answer is not None:
        return "answered"
    if latest.heatmap is not None:
        return "asked"
    return "new"
