"""Version-1 projects as QMask wrote them before objects (one record per image and question, its
one mask, label and accept flag), for the conversion tests: the same document written as a
schema-1 SQLite project (the schema and the row layout of QMask at d7bcbb6, copied here so the
tests need no old checkout) or as a version-1 ``.qmask.json``.

A document is the version-1 JSON form: ``{"categories": [...], "meta": {...}, "images": [{...,
"questions": [question dicts as v1 question_to_json wrote them]}]}``; :func:`v1_question` makes one.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from engine.imaging.masks import decode_rle, encode_rle
from engine.project.codec import heatmap_to_json
from engine.vqa.question import normalise_question

APPLICATION_ID = 0x514D534B  # "QMSK", as every QMask project
V1_SCHEMA = """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE categories (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    color TEXT
);
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    sha256 TEXT,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ok', 'failed')),
    error TEXT,
    added REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'new',
    review REAL NOT NULL DEFAULT 0,
    question TEXT,
    answer TEXT,
    accepted INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX images_review ON images (status = 'failed', review DESC, id);
CREATE INDEX images_name ON images (name, id);
CREATE INDEX images_state ON images (state, id);
CREATE INDEX images_seq ON images (seq);
CREATE TABLE questions (
    id INTEGER PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT,
    label TEXT,
    accepted INTEGER NOT NULL DEFAULT 0,
    mask_source TEXT NOT NULL DEFAULT 'auto',
    itm_probability REAL,
    mask_score REAL,
    alpha REAL NOT NULL DEFAULT 0.5,
    random_weights INTEGER NOT NULL DEFAULT 0,
    review REAL NOT NULL DEFAULT 0,
    mask TEXT,
    mask_h INTEGER,
    mask_w INTEGER,
    mask_area INTEGER,
    auto_mask TEXT,
    auto_same INTEGER NOT NULL DEFAULT 0,
    heatmap BLOB,
    heat_rows INTEGER,
    heat_cols INTEGER,
    heat_scale REAL,
    captions BLOB,
    extra TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    updated REAL NOT NULL,
    UNIQUE (image_id, key)
);
CREATE TABLE edits (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    image_id INTEGER NOT NULL,
    question_key TEXT,
    source TEXT NOT NULL CHECK (source IN ('chain', 'user', 'import')),
    action TEXT NOT NULL,
    writer TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX edits_image ON edits (image_id, id);
"""
_OPTIONAL = ("timings", "notes", "strokes", "box", "previous_answers", "points_asked")  # v1 extras, when set


def point(x: float, y: float, label: int = 1, source: str = "auto", score: float | None = 0.5,
          created: float = 1.0) -> dict:
    d: dict[str, Any] = {"x": float(x), "y": float(y), "label": int(label), "source": source, "created": created}
    if score is not None:
        d["score"] = float(score)
    return d


def v1_question(question: str, *, mask: np.ndarray | None = None, auto_mask: np.ndarray | None = None,
                heat: np.ndarray | None = None, answer: str | None = None, label: str | None = None,
                mask_source: str = "auto", accepted: bool = False, points: list | None = None,
                auto_points: list | None = None, captions: list[str] | None = None, itm: float | None = None,
                score: float | None = None, alpha: float = 0.5, models: dict | None = None,
                random_weights: bool = False, created: float = 10.0, updated: float = 20.0,
                **extras: Any) -> dict:
    """A version-1 question record in its JSON form (``extras``: timings, notes, strokes (masks
    ``{"add", "erase"}``), box, previous_answers, points_asked)."""
    rle = None if mask is None else encode_rle(mask)
    d = {"question": question, "answer": answer, "captions": list(captions or []), "itm_probability": itm,
         "heatmap": None if heat is None else heatmap_to_json(heat),
         "auto_points": list(auto_points or []), "points": list(points or []), "mask": rle,
         "auto_mask": rle if auto_mask is None else encode_rle(auto_mask), "mask_score": score,
         "mask_source": mask_source, "label": label, "alpha": float(alpha), "models": dict(models or {}),
         "random_weights": bool(random_weights), "accepted": bool(accepted), "created": created, "updated": updated}
    for key in _OPTIONAL:
        if key in extras:
            value = extras[key]
            if key == "strokes":
                value = {k: None if m is None else encode_rle(m) for k, m in value.items()}
            d[key] = value
    return d


def v1_row(q: dict) -> dict:
    """The ``questions`` row of a version-1 record (all but ``id`` and ``image_id``), laid out as
    schema-1 QMask's ``question_row`` wrote it."""
    mask, auto = q["mask"], q["auto_mask"]
    same = mask is not None and auto is not None and auto["counts"] == mask["counts"]
    heat = q["heatmap"]
    extra = {"points": q["points"], "auto_points": q["auto_points"], "models": q["models"]}
    extra.update({k: q[k] for k in _OPTIONAL if k in q})
    return {
        "key": normalise_question(q["question"]), "question": q["question"], "answer": q["answer"],
        "label": q["label"], "accepted": int(q["accepted"]), "mask_source": q["mask_source"],
        "itm_probability": q["itm_probability"], "mask_score": q["mask_score"], "alpha": q["alpha"],
        "random_weights": int(q["random_weights"]), "review": 0.25,
        "mask": None if mask is None else mask["counts"],
        "mask_h": None if mask is None else mask["size"][0], "mask_w": None if mask is None else mask["size"][1],
        "mask_area": None if mask is None else int(decode_rle(mask).sum()),
        "auto_mask": None if auto is None or same else json.dumps(auto), "auto_same": int(same),
        "heatmap": None if heat is None else base64.b64decode(heat["f16"]),
        "heat_rows": None if heat is None else heat["shape"][0], "heat_cols": None if heat is None else heat["shape"][1],
        "heat_scale": None if heat is None else heat["scale"],
        "captions": zlib.compress(json.dumps(q["captions"]).encode("utf-8"), 6) if q["captions"] else None,
        "extra": json.dumps(extra, separators=(",", ":")), "created": q["created"], "updated": q["updated"],
    }


def v1_edits(q: dict) -> list[tuple[str, str, dict]]:
    """What schema-1 QMask logged of a record: (source, action, detail) in order."""
    if q["mask_source"] == "import":
        return [("import", "import", {"label": q["label"]})]
    out = [("chain", "chain", {"answer": q["answer"]})]
    if q["mask_source"] == "user" or q["points"] != q["auto_points"]:
        out.append(("user", "edit", {"points": q["points"], "label": q["label"]}))
    if q["accepted"]:
        out.append(("user", "accept", {"label": q["label"]}))
    return out


def write_v1_sqlite(path: Path, doc: dict) -> Path:
    """``doc`` as a schema-1 project file (its edit log as v1 QMask wrote it, and one relocation
    per image logged without a question)."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.executescript(V1_SCHEMA)
    con.execute(f"PRAGMA application_id={APPLICATION_ID}")
    con.execute("PRAGMA user_version=1")
    con.execute("INSERT INTO meta VALUES ('created', ?)", (repr(doc.get("created", 1.5)),))
    for k, v in doc.get("meta", {}).items():
        con.execute("INSERT INTO meta VALUES (?, ?)", (k, v))
    for c in doc.get("categories", []):
        con.execute("INSERT INTO categories (id, name) VALUES (?, ?)", (c["id"], c["name"]))
    t = 1000.0
    for seq, img in enumerate(doc["images"], start=1):
        latest = img["questions"][-1] if img["questions"] else None
        image_id = con.execute(
            "INSERT INTO images (path, name, width, height, sha256, status, error, added, state, review, question, "
            "answer, accepted, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (img["path"], Path(img["path"]).name, img["width"], img["height"], img.get("sha256"), img["status"],
             img.get("error"), img.get("added", 0.0), "answered" if latest else "new", 0.25,
             None if latest is None else latest["question"], None if latest is None else latest["answer"],
             int(any(q["accepted"] for q in img["questions"])), seq)).lastrowid
        for q in img["questions"]:
            row = v1_row(q)
            con.execute(f"INSERT INTO questions (image_id, {', '.join(row)}) VALUES (?, {', '.join('?' * len(row))})",
                        (image_id, *row.values()))
            for source, action, detail in v1_edits(q):
                t += 1
                con.execute("INSERT INTO edits (time, image_id, question_key, source, action, writer, detail) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?)", (t, image_id, row["key"], source, action,
                                                             "qmask@old:1", json.dumps(detail)))
        t += 1
        con.execute("INSERT INTO edits (time, image_id, question_key, source, action, writer, detail) "
                    "VALUES (?, ?, NULL, 'user', 'relocate', 'qmask@old:1', '{}')", (t, image_id))
    con.commit()
    con.close()
    return path


def write_v1_json(path: Path, doc: dict) -> Path:
    """``doc`` as a version-1 ``.qmask.json``."""
    full = {"schema": "qmask.project", "version": 1, "created": doc.get("created", 1.5), "modified": 2.5,
            "meta": doc.get("meta", {}), "categories": doc.get("categories", []), "images": doc["images"]}
    path.write_text(json.dumps(full, indent=1))
    return path
