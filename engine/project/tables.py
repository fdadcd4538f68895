"""The SQL of the project's rows, inside a transaction the caller holds: categories, runs,
objects, the edit log and the image rows' list columns.

Shared by the store's writes (:mod:`engine.project.writes`), the JSON conversion
(:mod:`engine.project.interchange`) and the schema migration (:mod:`engine.project.legacy`), so
each kind of row is written by one piece of code.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from ..errors import InputError
from .objects import ObjectRecord
from .records import Category, clean_label
from .review import object_review as _object_review
from .rows import OBJECT_COLUMNS, RUN_COLUMNS, category_from_row, object_from_row, object_row, run_from_row, run_row
from .runs import QuestionRun

__all__ = ["ensure_category", "category_id", "upsert_run", "upsert_object", "delete_objects", "object_review",
           "run_for", "kept_of", "refresh_run_reviews", "refresh_summary", "next_seq", "log_edit", "list_state",
           "OBJECT_SELECT"]


def ensure_category(con: sqlite3.Connection, name: str, cat_id: int | None = None,
                    color: tuple[int, int, int] | None = None) -> Category:
    """The category called ``name``, created (with ``cat_id`` when it is free, else the next id)
    when new."""
    name = clean_label(name)
    if not name:
        raise InputError("A class needs a name.")
    row = con.execute("SELECT * FROM categories WHERE name = ?", (name,)).fetchone()
    if row is not None:
        return category_from_row(_named(con, row, "categories"))
    if cat_id is None or con.execute("SELECT 1 FROM categories WHERE id = ?", (cat_id,)).fetchone():
        cat_id = con.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM categories").fetchone()[0]
    con.execute("INSERT INTO categories (id, name, color) VALUES (?, ?, ?)",
                (cat_id, name, None if color is None else ",".join(str(int(c)) for c in color)))
    return Category(id=int(cat_id), name=name, color=color)


def _named(con: sqlite3.Connection, row: Any, table: str) -> Any:
    """A row addressable by column name whatever the connection's row factory."""
    if isinstance(row, sqlite3.Row):
        return row
    names = [d[1] for d in con.execute(f"PRAGMA table_info({table})")]
    return dict(zip(names, row))


def category_id(con: sqlite3.Connection, name: str | None) -> int | None:
    """The id of the category ``name`` (created when new); None for an unlabelled object."""
    return None if name is None or not clean_label(name) else ensure_category(con, name).id


def upsert_run(con: sqlite3.Connection, image_id: int, run: QuestionRun) -> None:
    """Insert the run, or replace the image's run of the same question."""
    row = run_row(run)
    con.execute(f"INSERT INTO runs (image_id, {', '.join(row)}) VALUES (?, {', '.join('?' * len(row))}) "
                "ON CONFLICT (image_id, key) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in row if c != "created"), (image_id, *row.values()))


def upsert_object(con: sqlite3.Connection, image_id: int, obj: ObjectRecord,
                  review: tuple[float, list[str]] | None = None) -> None:
    """Insert the object, or update the one with its uid. ``review`` (need, reasons) as
    :func:`object_review` gives it; computed here when not given (a run's review needs change
    with its other objects: :func:`refresh_run_reviews` after a change of several)."""
    if review is None:
        review = object_review(obj, run_for(con, image_id, obj), kept_of(con, image_id, obj))
    obj.review, obj.reasons = float(review[0]), list(review[1])
    row = object_row(obj)
    row["category_id"] = category_id(con, obj.category)
    row["review"] = obj.review
    row["reasons"] = json.dumps(obj.reasons, ensure_ascii=False) if obj.reasons else None
    cols = ", ".join(row)
    con.execute(f"INSERT INTO objects (image_id, {cols}) VALUES (?, {', '.join('?' * len(row))}) "
                "ON CONFLICT (uid) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in row if c not in ("created", "uid")),
                (image_id, *row.values()))


def delete_objects(con: sqlite3.Connection, image_id: int, uids: list[str]) -> int:
    gone = 0
    for uid in uids:
        gone += con.execute("DELETE FROM objects WHERE image_id = ? AND uid = ?", (image_id, uid)).rowcount
    return gone


def run_for(con: sqlite3.Connection, image_id: int, obj: ObjectRecord) -> QuestionRun | None:
    """The run that proposed ``obj`` (by its question), as stored; None for manual and imported objects."""
    if obj.question is None:
        return None
    from ..vqa.question import normalise_question

    cur = con.cursor()
    cur.row_factory = sqlite3.Row
    row = cur.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE image_id = ? AND key = ?",
                      (image_id, normalise_question(obj.question))).fetchone()
    return None if row is None else run_from_row(row)


def object_review(obj: ObjectRecord, run: QuestionRun | None, kept: int | None = None) -> tuple[float, list[str]]:
    return _object_review(obj, run, kept)


def kept_of(con: sqlite3.Connection, image_id: int, obj: ObjectRecord) -> int | None:
    """How many objects the run that proposed ``obj`` keeps (``obj`` counted once)."""
    if obj.question is None:
        return None
    from ..vqa.question import normalise_question

    others = con.execute("SELECT COUNT(*) FROM objects WHERE image_id = ? AND run_key = ? AND uid != ?",
                         (image_id, normalise_question(obj.question), obj.uid)).fetchone()[0]
    return int(others) + 1


def refresh_run_reviews(con: sqlite3.Connection, image_id: int, run_key: str) -> None:
    """Every object of a run gets its review need again (its answer, or the objects it keeps,
    changed: a count question can agree or disagree now)."""
    cur = con.cursor()
    cur.row_factory = sqlite3.Row
    row = cur.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE image_id = ? AND key = ?",
                      (image_id, run_key)).fetchone()
    run = None if row is None else run_from_row(row)
    members = [object_from_row(r) for r in cur.execute(f"{OBJECT_SELECT} WHERE o.image_id = ? AND o.run_key = ?",
                                                       (image_id, run_key)).fetchall()]
    for obj in members:
        need, reasons = object_review(obj, run, len(members))
        con.execute("UPDATE objects SET review = ?, reasons = ? WHERE uid = ?",
                    (need, json.dumps(reasons, ensure_ascii=False) if reasons else None, obj.uid))

def next_seq(con: sqlite3.Connection) -> int:
    return int(con.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM images").fetchone()[0])


def log_edit(con: sqlite3.Connection, image_id: int, writer: str, source: str, action: str, detail: dict, *,
             question_key: str | None = None, object_uid: str | None = None) -> None:
    con.execute("INSERT INTO edits (time, image_id, question_key, object_uid, source, action, writer, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), image_id, question_key, object_uid, source, action, writer,
                 json.dumps(detail, ensure_ascii=False, separators=(",", ":"), allow_nan=False)))


def list_state(status: str, objects: int, accepted: int, edited: bool, answered: bool, asked: bool) -> str:
    """What the image list shows for an image: failed, accepted (every object accepted), edited,
    answered, asked or new."""
    if status == "failed":
        return "failed"
    if objects and accepted == objects:
        return "accepted"
    if edited:
        return "edited"
    if answered:
        return "answered"
    if asked or objects:
        return "asked"
    return "new"


def refresh_summary(con: sqlite3.Connection, image_id: int) -> None:
    """The image row's list columns from its objects and latest run (the list never reads them)."""
    status = con.execute("SELECT status FROM images WHERE id = ?", (image_id,)).fetchone()[0]
    latest = con.execute("SELECT question, answer, heatmap IS NOT NULL FROM runs WHERE image_id = ? "
                         "ORDER BY updated DESC, id DESC LIMIT 1", (image_id,)).fetchone()
    n, accepted, review, edited = con.execute(
        "SELECT COUNT(*), COALESCE(SUM(accepted), 0), COALESCE(MAX(CASE WHEN accepted THEN 0 ELSE review END), 0), "
        "COALESCE(MAX(mask_source = 'user' OR source = 'manual'), 0) FROM objects WHERE image_id = ?",
        (image_id,)).fetchone()
    state = list_state(status, n, accepted, bool(edited), latest is not None and latest[1] is not None,
                       latest is not None and bool(latest[2]))
    con.execute("UPDATE images SET state = ?, review = ?, question = ?, answer = ?, accepted = ?, objects = ?, "
                "accepted_objects = ? WHERE id = ?",
                (state, review, None if latest is None else latest[0], None if latest is None else latest[1],
                 int(bool(n) and accepted == n), n, accepted, image_id))


OBJECT_SELECT = ("SELECT o.image_id, o.id, o.review, o.reasons, c.name AS category_name, "
                 + ", ".join(f"o.{c}" for c in OBJECT_COLUMNS if c != "review")
                 + " FROM objects o LEFT JOIN categories c ON c.id = o.category_id")
