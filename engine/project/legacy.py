"""Version-1 question records (one mask per question), read only to convert them into objects.

Before objects, a project held one record per (image, question): the question's evidence (heat
map, captions, answer) and its one mask, label and accept flag together. :func:`split_legacy`
turns such a record into a :class:`~engine.project.runs.QuestionRun` (the evidence) and, when it
holds anything a person or the chain made of the image (a mask, prompts, strokes, an accept
flag), one :class:`~engine.project.objects.ObjectRecord`. Nothing is lost:

- the mask, the automatic mask, points, box, stroke layers, accept flag and times go to the object;
- the label becomes the object's category when it names a class of the project (a label was
  made a class when a person typed it or accepted the mask); a label the app derived from the
  answer and nobody confirmed is not a class decision (the answer itself stays in the run);
- the question, answer, captions, heat map, previous answers and notes go to the run.

Used by the SQLite migration from schema 1 (:mod:`engine.project.schema`) and by the JSON
interchange file's version 1 (:mod:`engine.project.interchange`).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..errors import ProjectError
from .codec import (_expect, _get, _rle_from_json, box_from_json, heatmap_from_json, point_from_json,
                    points_asked_from_json, previous_answer_from_json)
from .objects import ObjectRecord
from .runs import PreviousAnswer, QuestionRun

__all__ = ["LegacyQuestion", "split_legacy", "legacy_from_row", "legacy_from_json"]


@dataclass
class LegacyQuestion:
    """The fields of a version-1 question record (no behaviour: it is only converted)."""

    question: str
    answer: str | None = None
    captions: list[str] = field(default_factory=list)
    itm_probability: float | None = None
    heatmap: np.ndarray | None = None
    auto_points: list = field(default_factory=list)
    points: list = field(default_factory=list)
    mask_rle: dict | None = None
    auto_mask_rle: dict | None = None
    mask_score: float | None = None
    mask_source: str = "auto"
    label: str | None = None
    alpha: float = 0.5
    models: dict[str, str] = field(default_factory=dict)
    random_weights: bool = False
    accepted: bool = False
    created: float = 0.0
    updated: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    stroke_add_rle: dict | None = None
    stroke_erase_rle: dict | None = None
    box: Any = None
    previous_answers: list[PreviousAnswer] = field(default_factory=list)
    points_asked: int | None = None


def split_legacy(q: LegacyQuestion, classes: set[str]) -> tuple[QuestionRun | None, ObjectRecord | None]:
    """The run and the object of a version-1 record, each None when the record holds none (an
    imported mask had a made-up question, "cat (2)", and no evidence: it is an object alone);
    ``classes``: the project's category names (see the module docstring for the label rule)."""
    evidence = not (q.mask_source == "import" and q.answer is None and q.heatmap is None)
    run = None if not evidence else QuestionRun(question=q.question, answer=q.answer, captions=list(q.captions),
                      itm_probability=q.itm_probability, heatmap=q.heatmap, auto_points=list(q.auto_points),
                      points_asked=q.points_asked, alpha=float(q.alpha), instances="one", models=dict(q.models),
                      random_weights=bool(q.random_weights), timings=dict(q.timings), notes=list(q.notes),
                      previous_answers=list(q.previous_answers), created=q.created, updated=q.updated)
    holds = q.mask_rle is not None or q.points or q.box is not None or q.accepted \
        or q.stroke_add_rle is not None or q.stroke_erase_rle is not None
    if not holds:
        return run, None
    label = (q.label or "").strip() or None
    obj = ObjectRecord(category=label if label in classes else None, mask_rle=q.mask_rle,
                       auto_mask_rle=q.auto_mask_rle, mask_score=q.mask_score,
                       mask_source=q.mask_source if q.mask_source in ("auto", "user", "import") else "user",  # type: ignore[arg-type]
                       points=list(q.points), auto_points=list(q.auto_points), box=q.box,
                       stroke_add_rle=q.stroke_add_rle, stroke_erase_rle=q.stroke_erase_rle,
                       source="import" if q.mask_source == "import" else "question",
                       question=q.question if run is not None else None,
                       accepted=bool(q.accepted), proposal=False, created=q.created, updated=q.updated)
    if run is not None:
        run.object_uids = [obj.uid]
    return run, obj


def legacy_from_row(row: Any) -> LegacyQuestion:
    """A version-1 ``questions`` row (``sqlite3.Row``) as a :class:`LegacyQuestion`."""
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
        strokes = extra.get("strokes") or {}
        return LegacyQuestion(
            question=row["question"], answer=row["answer"], captions=[str(c) for c in captions],
            itm_probability=row["itm_probability"], heatmap=heat,
            auto_points=[point_from_json(p, "auto_points") for p in extra.get("auto_points", [])],
            points=[point_from_json(p, "points") for p in extra.get("points", [])],
            mask_rle=mask, auto_mask_rle=auto, mask_score=row["mask_score"], mask_source=row["mask_source"],
            label=row["label"], alpha=float(row["alpha"]),
            models={str(k): str(v) for k, v in extra.get("models", {}).items()},
            random_weights=bool(row["random_weights"]), accepted=bool(row["accepted"]),
            created=float(row["created"]), updated=float(row["updated"]),
            timings={str(k): float(v) for k, v in extra.get("timings", {}).items()},
            notes=[str(n) for n in extra.get("notes", [])],
            stroke_add_rle=strokes.get("add"), stroke_erase_rle=strokes.get("erase"),
            box=None if extra.get("box") is None else box_from_json(extra["box"]),
            previous_answers=[previous_answer_from_json(a) for a in extra.get("previous_answers", [])],
            points_asked=points_asked_from_json(extra.get("points_asked")))
    except (ValueError, TypeError, KeyError, zlib.error) as err:
        raise ProjectError(f"A question record of the project is damaged ({err}).") from err


def legacy_from_json(d: Any, where: str) -> LegacyQuestion:
    """A version-1 interchange question (``images[i].questions[j]``), validated."""
    _expect(d, Mapping, where)
    captions = _get(d, "captions", list, where, default=[])
    if not all(isinstance(c, str) for c in captions):
        raise ProjectError(f"{where}.captions: expected a list of strings.")
    mask_source = _get(d, "mask_source", str, where, default="auto")
    if mask_source not in ("auto", "user", "import"):
        raise ProjectError(f"{where}.mask_source: expected auto, user or import, found {mask_source!r}.")
    alpha = _get(d, "alpha", float, where, default=0.5)
    if not 0.0 <= alpha <= 1.0:
        raise ProjectError(f"{where}.alpha: must be in [0, 1], found {alpha}.")
    mask_rle = _rle_from_json(d.get("mask"), f"{where}.mask")
    auto = d.get("auto_mask")
    if mask_rle is not None and isinstance(auto, Mapping) and auto.get("counts") == mask_rle["counts"] \
            and list(auto.get("size", [])) == mask_rle["size"]:
        auto_mask_rle = dict(mask_rle)
    else:
        auto_mask_rle = _rle_from_json(auto, f"{where}.auto_mask")
    strokes = _get(d, "strokes", dict, where, default={})
    heat = d.get("heatmap")
    return LegacyQuestion(
        question=_get(d, "question", str, where),
        answer=_get(d, "answer", str, where, default=None, nullable=True),
        captions=list(captions),
        itm_probability=_get(d, "itm_probability", float, where, default=None, nullable=True),
        heatmap=None if heat is None else heatmap_from_json(heat, f"{where}.heatmap"),
        auto_points=[point_from_json(p, f"{where}.auto_points[{i}]")
                     for i, p in enumerate(_get(d, "auto_points", list, where, default=[]))],
        points=[point_from_json(p, f"{where}.points[{i}]")
                for i, p in enumerate(_get(d, "points", list, where, default=[]))],
        mask_rle=mask_rle, auto_mask_rle=auto_mask_rle,
        mask_score=_get(d, "mask_score", float, where, default=None, nullable=True),
        mask_source=mask_source,
        label=_get(d, "label", str, where, default=None, nullable=True),
        alpha=alpha,
        models={str(k): str(v) for k, v in _get(d, "models", dict, where, default={}).items()},
        random_weights=_get(d, "random_weights", bool, where, default=False),
        accepted=_get(d, "accepted", bool, where, default=False),
        created=_get(d, "created", float, where, default=0.0),
        updated=_get(d, "updated", float, where, default=0.0),
        timings={str(k): float(v) for k, v in _get(d, "timings", dict, where, default={}).items()},
        notes=[str(n) for n in _get(d, "notes", list, where, default=[])],
        stroke_add_rle=_rle_from_json(strokes.get("add"), f"{where}.strokes.add"),
        stroke_erase_rle=_rle_from_json(strokes.get("erase"), f"{where}.strokes.erase"),
        box=None if d.get("box") is None else box_from_json(d["box"], f"{where}.box"),
        previous_answers=[previous_answer_from_json(a, f"{where}.previous_answers[{i}]")
                          for i, a in enumerate(_get(d, "previous_answers", list, where, default=[]))],
        points_asked=points_asked_from_json(d.get("points_asked"), f"{where}.points_asked"))


def objects_from_question_rows(con: Any) -> None:
    """The schema 1 -> 2 migration's data step (inside its transaction): each ``questions`` row
    as a run and an object, the edit log's entries of a question naming its object, and every
    image row's list columns recomputed from its objects."""
    import sqlite3

    from . import tables

    classes = {r[0] for r in con.execute("SELECT name FROM categories")}
    cur = con.cursor()
    cur.row_factory = sqlite3.Row  # (columns by name, whatever the connection's factory)
    orders: dict[int, int] = {}
    for row in cur.execute("SELECT * FROM questions ORDER BY image_id, id"):
        image_id = int(row["image_id"])
        run, obj = split_legacy(legacy_from_row(row), classes)
        if run is not None:
            tables.upsert_run(con, image_id, run)
        if obj is not None:
            obj.order = orders.get(image_id, 0)
            orders[image_id] = obj.order + 1
            tables.upsert_object(con, image_id, obj, review=tables.object_review(obj, run, 1 if run else None))
            con.execute("UPDATE edits SET object_uid = ? WHERE image_id = ? AND question_key = ?",
                        (obj.uid, image_id, row["key"]))
    for (image_id,) in con.execute("SELECT id FROM images").fetchall():
        tables.refresh_summary(con, image_id)
