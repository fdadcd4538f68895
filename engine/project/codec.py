"""Records as JSON: the interchange form of a project (``qmask export --format qmask-json``,
version-1 ``*.qmask.json`` files) and the small JSON parts of the SQLite store's rows.

Every ``*_from_json`` validates what it reads and raises :class:`~engine.errors.ProjectError`
naming the JSON path of the bad field (``where``).
"""

from __future__ import annotations

import base64
import math
from typing import Any, Mapping

import numpy as np

from ..imaging import masks as M
from ..imaging.images import max_pixels_default
from ..errors import InputError, ProjectError, PromptError
from ..prompts import Box, Point
from .records import STATUSES, Category, ImageRecord, PreviousAnswer, QuestionRecord

MAX_SIDE = 1 << 20  # pixels: an image side, or a heat-map side, read from a file (a mask must fit in memory)

__all__ = [
    "point_to_json", "point_from_json", "box_to_json", "box_from_json", "previous_answer_to_json",
    "previous_answer_from_json", "points_asked_from_json", "heatmap_to_json", "heatmap_from_json",
    "category_to_json", "category_from_json", "question_to_json", "question_extras_to_json", "question_from_json",
    "image_to_json", "image_from_json",
]


def point_to_json(p: Point) -> dict:
    d: dict[str, Any] = {"x": round(float(p.x), 3), "y": round(float(p.y), 3), "label": int(p.label),
                         "source": p.source, "created": round(float(p.created), 3)}
    if p.score is not None:
        d["score"] = float(p.score)
    return d


def point_from_json(d: Mapping[str, Any], where: str = "point") -> Point:
    _expect(d, Mapping, where)
    try:
        return Point(x=_get(d, "x", float, where), y=_get(d, "y", float, where),
                     label=_get(d, "label", int, where, default=1),
                     score=_get(d, "score", float, where, default=None, nullable=True),
                     source=_get(d, "source", str, where, default="user"),
                     created=_get(d, "created", float, where, default=0.0))
    except (TypeError, ValueError, PromptError) as err:
        raise ProjectError(f"{where}: not a valid point ({err}).") from err


def box_to_json(box: Box) -> list[float]:
    """``[x0, y0, x1, y1]`` in image pixels, unrounded (a reopened box is the same prompt)."""
    return [float(v) for v in (box.x0, box.y0, box.x1, box.y1)]


def box_from_json(value: Any, where: str = "box") -> Box:
    _expect(value, list, where)
    try:
        if len(value) != 4:
            raise ValueError(f"{len(value)} numbers, not 4 (x0, y0, x1, y1)")
        return Box(*(_finite(v, f"{where}[{i}]") for i, v in enumerate(value)))
    except (TypeError, ValueError, PromptError) as err:
        raise ProjectError(f"{where}: not a valid box ({err}).") from err


def previous_answer_to_json(a: PreviousAnswer) -> dict:
    return {"answer": a.answer, "alpha": round(float(a.alpha), 4), "edited": bool(a.edited),
            "time": round(float(a.time), 3)}


def previous_answer_from_json(d: Any, where: str = "previous_answer") -> PreviousAnswer:
    _expect(d, Mapping, where)
    return PreviousAnswer(answer=_get(d, "answer", str, where), alpha=_get(d, "alpha", float, where, default=0.5),
                          edited=_get(d, "edited", bool, where, default=False),
                          time=_get(d, "time", float, where, default=0.0))


def heatmap_to_json(heat: np.ndarray) -> dict:
    """``[G, G]`` float map -> ``{"shape", "scale", "f16"}`` (about 1.5 KB for 24x24)."""
    a = np.asarray(heat, dtype=np.float32)
    if a.ndim != 2:
        raise InputError(f"A heat map must be 2-D [G, G], not shape {a.shape}.")
    finite = np.isfinite(a)
    a = np.where(finite, a, 0.0).astype(np.float32)
    scale = float(np.abs(a).max()) if a.size else 0.0
    scaled = (a / scale) if scale > 0 else a
    data = scaled.astype("<f2").tobytes()
    return {"shape": [int(a.shape[0]), int(a.shape[1])], "scale": scale,
            "f16": base64.b64encode(data).decode("ascii")}


def heatmap_from_json(d: Mapping[str, Any], where: str = "heatmap") -> np.ndarray:
    _expect(d, Mapping, where)
    shape = _get(d, "shape", list, where)
    if len(shape) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_SIDE
                                  for v in shape):
        raise ProjectError(f"{where}.shape: expected [rows, columns], two positive integers.")
    scale = _get(d, "scale", float, where)
    try:
        raw = base64.b64decode(_get(d, "f16", str, where), validate=True)
    except ValueError as err:
        raise ProjectError(f"{where}: not a valid heat map ({err}).") from err
    if len(raw) != 2 * shape[0] * shape[1]:
        raise ProjectError(f"{where}: heat-map data does not match its shape {shape}.")
    heat = np.frombuffer(raw, dtype="<f2").astype(np.float32).reshape(shape) * np.float32(scale)
    return np.nan_to_num(heat, nan=0.0, posinf=0.0, neginf=0.0)  # as heatmap_to_json writes them


def _finite(value: Any, where: str) -> float:
    """A finite number (int or float, not bool) as float; else ProjectError naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProjectError(f"{where}: must be a finite number, found {value!r:.40}.")
    return float(value)


def _scalars(d: Mapping[str, Any], where: str) -> dict[str, str]:
    """A flat ``{name: text}`` object (models, meta): values must be text, numbers, true/false or null."""
    for k, v in d.items():
        if isinstance(v, (dict, list)):
            raise ProjectError(f"{where}.{k}: expected text, found {'an object' if isinstance(v, dict) else 'a list'}.")
    return {str(k): str(v) for k, v in d.items()}


def _expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ProjectError(f"{where}: expected {names}, found {type(value).__name__}.")
    return value


def _get(d: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str,
         default: Any = ..., nullable: bool = False) -> Any:
    """``d[key]`` checked against ``kind``; ``default`` when absent (required if not given)."""
    if key not in d:
        if default is ...:
            raise ProjectError(f"{where}: missing field '{key}'.")
        return default
    value = d[key]
    if value is None and nullable:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, float) and not math.isfinite(value):
        raise ProjectError(f"{where}.{key}: must be a finite number.")
    return _expect(value, kind, f"{where}.{key}")


def _rle_from_json(value: Any, where: str) -> dict | None:
    if value is None:
        return None
    try:
        h, w, _runs = M.rle_counts(value)
    except InputError as err:
        raise ProjectError(f"{where}: {err}") from err
    if h > MAX_SIDE or w > MAX_SIDE or h * w > max_pixels_default():
        raise ProjectError(f"{where}: a {h}x{w} mask is larger than QMask opens (QMASK_MAX_PIXELS).")
    counts = value["counts"]
    if isinstance(counts, (list, tuple)):  # keep memory compact: re-encode as a string
        return M.encode_rle(M.decode_rle(value))
    return {"size": [int(value["size"][0]), int(value["size"][1])],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else str(counts)}


def _num(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def category_to_json(c: Category) -> dict:
    d: dict[str, Any] = {"id": c.id, "name": c.name}
    if c.color is not None:
        d["color"] = list(c.color)
    return d


def category_from_json(d: Any, where: str) -> Category:
    _expect(d, Mapping, where)
    color = _get(d, "color", list, where, default=None, nullable=True)
    if color is not None and (len(color) != 3 or not all(isinstance(c, int) for c in color)):
        raise ProjectError(f"{where}.color: expected [R, G, B] integers.")
    name = _get(d, "name", str, where)
    if not name.strip():
        raise ProjectError(f"{where}.name: a category needs a name.")
    return Category(id=_get(d, "id", int, where), name=name,
               color=tuple(color) if color is not None else None)


def question_to_json(q: QuestionRecord) -> dict:
    d: dict[str, Any] = {
        "question": q.question,
        "answer": q.answer,
        "captions": list(q.captions),
        "itm_probability": _num(q.itm_probability),
        "heatmap": None if q.heatmap is None else heatmap_to_json(q.heatmap),
        "auto_points": [point_to_json(p) for p in q.auto_points],
        "points": [point_to_json(p) for p in q.points],
        "mask": q.mask_rle,
        "auto_mask": q.auto_mask_rle,
        "mask_score": _num(q.mask_score),
        "mask_source": q.mask_source,
        "label": q.label,
        "alpha": float(q.alpha),
        "models": dict(q.models),
        "random_weights": bool(q.random_weights),
        "accepted": bool(q.accepted),
        "created": round(float(q.created), 3),
        "updated": round(float(q.updated), 3),
    }
    d.update(question_extras_to_json(q))
    return d


def question_extras_to_json(q: QuestionRecord) -> dict:
    """A question's optional parts, present only when set, in one form for the interchange file
    and the store's ``extra`` column alike: timings, notes, stroke layers, box, previous answers,
    the number of automatic points asked for."""
    d: dict[str, Any] = {}
    if q.timings:
        d["timings"] = {k: round(float(v), 4) for k, v in q.timings.items()}
    if q.notes:
        d["notes"] = list(q.notes)
    if q.stroke_add_rle is not None or q.stroke_erase_rle is not None:
        d["strokes"] = {"add": q.stroke_add_rle, "erase": q.stroke_erase_rle}
    if q.box is not None:
        d["box"] = box_to_json(q.box)
    if q.previous_answers:
        d["previous_answers"] = [previous_answer_to_json(a) for a in q.previous_answers]
    if q.points_asked is not None:
        d["points_asked"] = int(q.points_asked)
    return d


def points_asked_from_json(value: Any, where: str = "points_asked") -> int | None:
    """The number of automatic points asked for: a non-negative int, or None (not known)."""
    if value is None:
        return None
    _expect(value, int, where)
    if value < 0:
        raise ProjectError(f"{where}: must not be negative, found {value}.")
    return int(value)


def question_from_json(d: Any, where: str) -> QuestionRecord:
    _expect(d, Mapping, where)
    question = _get(d, "question", str, where)
    captions = _get(d, "captions", list, where, default=[])
    if not all(isinstance(c, str) for c in captions):
        raise ProjectError(f"{where}.captions: expected a list of strings.")
    models = _get(d, "models", dict, where, default={})
    mask_source = _get(d, "mask_source", str, where, default="auto")
    if mask_source not in ("auto", "user", "import"):
        raise ProjectError(f"{where}.mask_source: expected auto, user or import, found {mask_source!r}.")
    heat = d.get("heatmap")
    alpha = _get(d, "alpha", float, where, default=0.5)
    if not 0.0 <= alpha <= 1.0:
        raise ProjectError(f"{where}.alpha: must be in [0, 1], found {alpha}.")
    mask_rle = _rle_from_json(d.get("mask"), f"{where}.mask")
    auto = d.get("auto_mask")
    if mask_rle is not None and isinstance(auto, Mapping) and auto.get("counts") == mask_rle["counts"] \
            and list(auto.get("size", [])) == mask_rle["size"]:
        auto_mask_rle = dict(mask_rle)  # untouched mask: validated once
    else:
        auto_mask_rle = _rle_from_json(auto, f"{where}.auto_mask")
    rec = QuestionRecord(
        question=question,
        answer=_get(d, "answer", str, where, default=None, nullable=True),
        captions=list(captions),
        itm_probability=_get(d, "itm_probability", float, where, default=None, nullable=True),
        heatmap=None if heat is None else heatmap_from_json(heat, f"{where}.heatmap"),
        auto_points=[point_from_json(p, f"{where}.auto_points[{i}]")
                     for i, p in enumerate(_get(d, "auto_points", list, where, default=[]))],
        points=[point_from_json(p, f"{where}.points[{i}]")
                for i, p in enumerate(_get(d, "points", list, where, default=[]))],
        mask_rle=mask_rle,
        auto_mask_rle=auto_mask_rle,
        mask_score=_get(d, "mask_score", float, where, default=None, nullable=True),
        mask_source=mask_source,  # type: ignore[arg-type]
        label=_get(d, "label", str, where, default=None, nullable=True),
        alpha=alpha,
        models=_scalars(models, f"{where}.models"),
        random_weights=_get(d, "random_weights", bool, where, default=False),
        accepted=_get(d, "accepted", bool, where, default=False),
        created=_get(d, "created", float, where, default=0.0),
        updated=_get(d, "updated", float, where, default=0.0),
        timings={str(k): _finite(v, f"{where}.timings.{k}")
                 for k, v in _get(d, "timings", dict, where, default={}).items()},
        notes=[_expect(n, str, f"{where}.notes[{i}]") for i, n in enumerate(_get(d, "notes", list, where, default=[]))],
    )
    strokes = _get(d, "strokes", dict, where, default={})
    rec.stroke_add_rle = _rle_from_json(strokes.get("add"), f"{where}.strokes.add")
    rec.stroke_erase_rle = _rle_from_json(strokes.get("erase"), f"{where}.strokes.erase")
    rec.box = None if d.get("box") is None else box_from_json(d["box"], f"{where}.box")
    rec.previous_answers = [previous_answer_from_json(a, f"{where}.previous_answers[{i}]")
                            for i, a in enumerate(_get(d, "previous_answers", list, where, default=[]))]
    rec.points_asked = points_asked_from_json(d.get("points_asked"), f"{where}.points_asked")
    return rec


def image_to_json(img: ImageRecord) -> dict:
    return {"path": img.path, "width": img.width, "height": img.height, "sha256": img.sha256,
            "status": img.status, "error": img.error, "added": round(float(img.added), 3),
            "questions": [question_to_json(q) for q in img.questions]}


def image_from_json(d: Any, where: str) -> ImageRecord:
    _expect(d, Mapping, where)
    path = _get(d, "path", str, where)
    if not path:
        raise ProjectError(f"{where}.path: an image needs a path.")
    status = _get(d, "status", str, where, default="pending")
    if status not in STATUSES:
        raise ProjectError(f"{where}.status: expected one of {', '.join(STATUSES)}, found {status!r}.")
    width = _get(d, "width", int, where, default=None, nullable=True)
    height = _get(d, "height", int, where, default=None, nullable=True)
    for name, side in (("width", width), ("height", height)):
        if side is not None and not 0 < side <= MAX_SIDE:
            raise ProjectError(f"{where}.{name}: must be from 1 to {MAX_SIDE} pixels, found {side}.")
    questions = [question_from_json(q, f"{where}.questions[{i}]")
                 for i, q in enumerate(_get(d, "questions", list, where, default=[]))]
    for j, q in enumerate(questions):
        for name in ("mask_rle", "auto_mask_rle"):
            rle = getattr(q, name)
            if rle is not None and width is not None and height is not None \
                    and list(rle["size"]) != [height, width]:
                raise ProjectError(f"{where}.questions[{j}]: mask size {rle['size']} does not "
                                   f"match the image ({height}x{width}, H x W).")
    return ImageRecord(path=path, width=width, height=height,
               sha256=_get(d, "sha256", str, where, default=None, nullable=True),
               status=status, error=_get(d, "error", str, where, default=None, nullable=True),  # type: ignore[arg-type]
               questions=questions, added=_get(d, "added", float, where, default=0.0))
