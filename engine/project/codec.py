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
from ..errors import InputError, ProjectError, PromptError
from ..prompts import Box, Point
from .objects import OBJECT_SOURCES, ObjectRecord
from .records import STATUSES, Category, ImageRecord, clean_label
from .runs import INSTANCE_MODES, PreviousAnswer, QuestionRun

__all__ = [
    "point_to_json", "point_from_json", "box_to_json", "box_from_json", "previous_answer_to_json",
    "previous_answer_from_json", "points_asked_from_json", "heatmap_to_json", "heatmap_from_json",
    "category_to_json", "category_from_json", "run_to_json", "run_from_json", "run_extras_to_json",
    "run_extras_from_json", "object_to_json", "object_from_json", "object_extras_to_json", "object_extras_from_json",
    "image_to_json", "image_from_json", "check_mask_sizes",
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
        return Point(x=float(d["x"]), y=float(d["y"]), label=int(d.get("label", 1)),
                     score=None if d.get("score") is None else float(d["score"]),
                     source=d.get("source", "user"), created=float(d.get("created", 0.0)))
    except (KeyError, TypeError, ValueError) as err:
        raise ProjectError(f"{where}: not a valid point ({err}).") from err


def box_to_json(box: Box) -> list[float]:
    """``[x0, y0, x1, y1]`` in image pixels, unrounded (a reopened box is the same prompt)."""
    return [float(v) for v in (box.x0, box.y0, box.x1, box.y1)]


def box_from_json(value: Any, where: str = "box") -> Box:
    _expect(value, list, where)
    try:
        if len(value) != 4:
            raise ValueError(f"{len(value)} numbers, not 4 (x0, y0, x1, y1)")
        return Box(*(float(v) for v in value))
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
    try:
        shape = [int(v) for v in d["shape"]]
        scale = float(d["scale"])
        raw = base64.b64decode(d["f16"], validate=True)
    except (KeyError, TypeError, ValueError) as err:
        raise ProjectError(f"{where}: not a valid heat map ({err}).") from err
    if len(shape) != 2 or min(shape) <= 0 or len(raw) != 2 * shape[0] * shape[1]:
        raise ProjectError(f"{where}: heat-map data does not match its shape {shape}.")
    return (np.frombuffer(raw, dtype="<f2").astype(np.float32).reshape(shape) * np.float32(scale))


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
        M.rle_counts(value)
    except InputError as err:
        raise ProjectError(f"{where}: {err}") from err
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


def run_extras_to_json(run: QuestionRun) -> dict:
    """A run's small parts, in one form for the interchange file and the store's ``extra`` column:
    automatic points and models always; timings, notes, previous answers, the number of automatic
    points asked for and the objects it proposed when set."""
    d: dict[str, Any] = {"auto_points": [point_to_json(p) for p in run.auto_points], "models": dict(run.models)}
    if run.timings:
        d["timings"] = {k: round(float(v), 4) for k, v in run.timings.items()}
    if run.notes:
        d["notes"] = list(run.notes)
    if run.previous_answers:
        d["previous_answers"] = [previous_answer_to_json(a) for a in run.previous_answers]
    if run.points_asked is not None:
        d["points_asked"] = int(run.points_asked)
    if run.object_uids:
        d["object_uids"] = list(run.object_uids)
    return d


def run_extras_from_json(run: QuestionRun, d: Mapping[str, Any], where: str) -> QuestionRun:
    """Fill ``run`` from :func:`run_extras_to_json`'s fields of ``d`` (validated)."""
    run.auto_points = [point_from_json(p, f"{where}.auto_points[{i}]")
                       for i, p in enumerate(_get(d, "auto_points", list, where, default=[]))]
    run.models = {str(k): str(v) for k, v in _get(d, "models", dict, where, default={}).items()}
    run.timings = {str(k): _finite_number(v, f"{where}.timings.{k}")
                   for k, v in _get(d, "timings", dict, where, default={}).items()}
    run.notes = [str(n) for n in _get(d, "notes", list, where, default=[])]
    run.previous_answers = [previous_answer_from_json(a, f"{where}.previous_answers[{i}]")
                            for i, a in enumerate(_get(d, "previous_answers", list, where, default=[]))]
    run.points_asked = points_asked_from_json(d.get("points_asked"), f"{where}.points_asked")
    uids = _get(d, "object_uids", list, where, default=[])
    if not all(isinstance(u, str) for u in uids):
        raise ProjectError(f"{where}.object_uids: expected a list of strings.")
    run.object_uids = list(uids)
    return run


def run_to_json(run: QuestionRun) -> dict:
    d: dict[str, Any] = {
        "question": run.question, "answer": run.answer, "captions": list(run.captions),
        "itm_probability": _num(run.itm_probability),
        "heatmap": None if run.heatmap is None else heatmap_to_json(run.heatmap),
        "alpha": float(run.alpha), "instances": run.instances, "random_weights": bool(run.random_weights),
        "created": round(float(run.created), 3), "updated": round(float(run.updated), 3),
    }
    d.update(run_extras_to_json(run))
    return d


def run_from_json(d: Any, where: str) -> QuestionRun:
    _expect(d, Mapping, where)
    captions = _get(d, "captions", list, where, default=[])
    if not all(isinstance(c, str) for c in captions):
        raise ProjectError(f"{where}.captions: expected a list of strings.")
    alpha = _get(d, "alpha", float, where, default=0.5)
    if not 0.0 <= alpha <= 1.0:
        raise ProjectError(f"{where}.alpha: must be in [0, 1], found {alpha}.")
    instances = _get(d, "instances", str, where, default="one")
    if instances not in INSTANCE_MODES:
        raise ProjectError(f"{where}.instances: expected one of {', '.join(INSTANCE_MODES)}, found {instances!r}.")
    heat = d.get("heatmap")
    question = _get(d, "question", str, where)
    if not question.strip():
        raise ProjectError(f"{where}.question: a run needs a question.")
    run = QuestionRun(question=question, answer=_get(d, "answer", str, where, default=None, nullable=True),
                      captions=list(captions),
                      itm_probability=_get(d, "itm_probability", float, where, default=None, nullable=True),
                      heatmap=None if heat is None else heatmap_from_json(heat, f"{where}.heatmap"),
                      alpha=alpha, instances=instances,  # type: ignore[arg-type]
                      random_weights=_get(d, "random_weights", bool, where, default=False),
                      created=_get(d, "created", float, where, default=0.0),
                      updated=_get(d, "updated", float, where, default=0.0))
    return run_extras_from_json(run, d, where)


def object_extras_to_json(obj: ObjectRecord) -> dict:
    """An object's small parts (the interchange file and the store's ``extra`` column): prompts
    always; box, stroke layers and imported attributes when set."""
    d: dict[str, Any] = {"points": [point_to_json(p) for p in obj.points],
                         "auto_points": [point_to_json(p) for p in obj.auto_points]}
    if obj.box is not None:
        d["box"] = box_to_json(obj.box)
    if obj.stroke_add_rle is not None or obj.stroke_erase_rle is not None:
        d["strokes"] = {"add": obj.stroke_add_rle, "erase": obj.stroke_erase_rle}
    if obj.attributes:
        d["attributes"] = dict(obj.attributes)
    return d


def object_extras_from_json(obj: ObjectRecord, d: Mapping[str, Any], where: str) -> ObjectRecord:
    obj.points = [point_from_json(p, f"{where}.points[{i}]")
                  for i, p in enumerate(_get(d, "points", list, where, default=[]))]
    obj.auto_points = [point_from_json(p, f"{where}.auto_points[{i}]")
                       for i, p in enumerate(_get(d, "auto_points", list, where, default=[]))]
    obj.box = None if d.get("box") is None else box_from_json(d["box"], f"{where}.box")
    strokes = _get(d, "strokes", dict, where, default={})
    obj.stroke_add_rle = _rle_from_json(strokes.get("add"), f"{where}.strokes.add")
    obj.stroke_erase_rle = _rle_from_json(strokes.get("erase"), f"{where}.strokes.erase")
    obj.attributes = dict(_get(d, "attributes", dict, where, default={}))
    return obj


def object_to_json(obj: ObjectRecord) -> dict:
    d: dict[str, Any] = {
        "uid": obj.uid, "category": obj.category, "source": obj.source, "question": obj.question,
        "accepted": bool(obj.accepted), "proposal": bool(obj.proposal), "order": int(obj.order),
        "mask": obj.mask_rle, "auto_mask": obj.auto_mask_rle, "mask_score": _num(obj.mask_score),
        "mask_source": obj.mask_source,
        "created": round(float(obj.created), 3), "updated": round(float(obj.updated), 3),
    }
    d.update(object_extras_to_json(obj))
    return d


def object_from_json(d: Any, where: str) -> ObjectRecord:
    _expect(d, Mapping, where)
    uid = _get(d, "uid", str, where)
    if not (0 < len(uid) <= 64) or not uid.isalnum():
        raise ProjectError(f"{where}.uid: expected 1 to 64 letters or digits, found {uid!r}.")
    source = _get(d, "source", str, where, default="manual")
    if source not in OBJECT_SOURCES:
        raise ProjectError(f"{where}.source: expected one of {', '.join(OBJECT_SOURCES)}, found {source!r}.")
    mask_source = _get(d, "mask_source", str, where, default="auto")
    if mask_source not in ("auto", "user", "import"):
        raise ProjectError(f"{where}.mask_source: expected auto, user or import, found {mask_source!r}.")
    category = _get(d, "category", str, where, default=None, nullable=True)
    mask_rle = _rle_from_json(d.get("mask"), f"{where}.mask")
    auto = d.get("auto_mask")
    if mask_rle is not None and isinstance(auto, Mapping) and auto.get("counts") == mask_rle["counts"] \
            and list(auto.get("size", [])) == mask_rle["size"]:
        auto_mask_rle = dict(mask_rle)  # untouched mask: validated once
    else:
        auto_mask_rle = _rle_from_json(auto, f"{where}.auto_mask")
    order = _get(d, "order", int, where, default=0)
    obj = ObjectRecord(uid=uid, category=(clean_label(category) or None) if category is not None else None,
                       mask_rle=mask_rle, auto_mask_rle=auto_mask_rle,
                       mask_score=_get(d, "mask_score", float, where, default=None, nullable=True),
                       mask_source=mask_source,  # type: ignore[arg-type]
                       source=source,  # type: ignore[arg-type]
                       question=_get(d, "question", str, where, default=None, nullable=True),
                       accepted=_get(d, "accepted", bool, where, default=False),
                       proposal=_get(d, "proposal", bool, where, default=False),
                       order=_bounded_int(order, f"{where}.order"),
                       created=_get(d, "created", float, where, default=0.0),
                       updated=_get(d, "updated", float, where, default=0.0))
    return object_extras_from_json(obj, d, where)


def _finite_number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ProjectError(f"{where}: expected a finite number, found {value!r}.")
    return float(value)


def _bounded_int(value: int, where: str) -> int:
    if abs(value) > 2**62:  # SQLite integers are 64-bit
        raise ProjectError(f"{where}: {value} is out of range.")
    return int(value)


def points_asked_from_json(value: Any, where: str = "points_asked") -> int | None:
    """The number of automatic points asked for: a non-negative int, or None (not known)."""
    if value is None:
        return None
    _expect(value, int, where)
    if value < 0:
        raise ProjectError(f"{where}: must not be negative, found {value}.")
    return int(value)


def image_to_json(img: ImageRecord) -> dict:
    return {"path": img.path, "width": img.width, "height": img.height, "sha256": img.sha256,
            "status": img.status, "error": img.error, "added": round(float(img.added), 3),
            "objects": [object_to_json(o) for o in img.objects], "runs": [run_to_json(r) for r in img.runs]}


def image_from_json(d: Any, where: str, *, objects_and_runs: bool = True) -> ImageRecord:
    """An image of the interchange file; ``objects_and_runs`` False: its own fields only (a
    version-1 image, whose questions :mod:`engine.project.legacy` reads)."""
    _expect(d, Mapping, where)
    path = _get(d, "path", str, where)
    if not path:
        raise ProjectError(f"{where}.path: an image needs a path.")
    status = _get(d, "status", str, where, default="pending")
    if status not in STATUSES:
        raise ProjectError(f"{where}.status: expected one of {', '.join(STATUSES)}, found {status!r}.")
    width = _get(d, "width", int, where, default=None, nullable=True)
    height = _get(d, "height", int, where, default=None, nullable=True)
    for name, value in (("width", width), ("height", height)):
        if value is not None and not 0 < value <= 2**31:
            raise ProjectError(f"{where}.{name}: expected a positive image size, found {value}.")
    img = ImageRecord(path=path, width=width, height=height,
                      sha256=_get(d, "sha256", str, where, default=None, nullable=True),
                      status=status, error=_get(d, "error", str, where, default=None, nullable=True),  # type: ignore[arg-type]
                      added=_get(d, "added", float, where, default=0.0))
    if objects_and_runs:
        img.objects = [object_from_json(o, f"{where}.objects[{i}]")
                       for i, o in enumerate(_get(d, "objects", list, where, default=[]))]
        img.runs = [run_from_json(r, f"{where}.runs[{i}]")
                    for i, r in enumerate(_get(d, "runs", list, where, default=[]))]
        check_mask_sizes(img, where)
    return img


def check_mask_sizes(img: ImageRecord, where: str) -> None:
    """Every object's masks are the image's size (H x W), when the size is known."""
    if img.width is None or img.height is None:
        return
    for j, o in enumerate(img.objects):
        for name in ("mask_rle", "auto_mask_rle", "stroke_add_rle", "stroke_erase_rle"):
            rle = getattr(o, name)
            if rle is not None and list(rle["size"]) != [img.height, img.width]:
                raise ProjectError(f"{where}.objects[{j}]: mask size {rle['size']} does not "
                                   f"match the image ({img.height}x{img.width}, H x W).")
