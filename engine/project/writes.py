"""The project store's writes: every method one short transaction where the change happens.

Each write bumps the image's change number (``seq``, so other processes find what changed),
refreshes the image row's list columns from its objects and latest run (so the list never reads
them) and appends to the edit log: what changed (which object, which question), from which
source (chain, user, import), by which writer, when. :class:`ProjectWriter` writes records (paths
in their stored form) through a :class:`~engine.project.database.ProjectDatabase`; a
:class:`~engine.project.store.Project` holds one and offers its methods with those that take files.
"""

from __future__ import annotations

import os
import time
from pathlib import PurePosixPath
from typing import Iterable, Literal

from ..errors import InputError, ProjectError
from . import tables as T
from .database import CHUNK, ProjectDatabase
from .objects import ObjectRecord
from .records import Category, ImageRecord, clean_label, normalise_question
from .runs import QuestionRun

__all__ = ["ProjectWriter", "Source", "ORDERS", "shown_path", "NOT_UTF8"]

Source = Literal["chain", "user", "import"]
ORDERS = {  # image list orders, each served by an index
    "review": "status = 'failed', review DESC, id",
    "name": "name, id",
    "state": "state, id",
    "added": "id",
}
NOT_UTF8 = ("its file name is not valid UTF-8 text, which a project cannot store; rename the file "
            "(for example with convmv) to include it")


def shown_path(path: str | os.PathLike[str]) -> str:
    """A path for a message: bytes that are not UTF-8 (a name Python read with surrogateescape)
    shown as ``\\xff`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _storable(rel: str) -> bool:
    """``rel`` can be stored: SQLite text is UTF-8, a surrogateescape'd name is not."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class ProjectWriter:
    """The writes of a project, on records: each method one transaction of ``db``."""

    def __init__(self, db: ProjectDatabase) -> None:
        self._db = db

    def add_images(self, rels: list[str], *, sizes: dict[str, tuple[int, int]] | None = None,
                   sha256: dict[str, str] | None = None) -> int:
        """Add images by stored path (existing ones untouched), a chunk per transaction; returns
        how many were new. ``sizes`` and ``sha256`` are keyed by the stored path."""
        added = 0
        now = time.time()
        for i in range(0, len(rels), CHUNK):
            with self._db.write() as con:
                seq = T.next_seq(con)
                for rel in rels[i:i + CHUNK]:
                    w, h = (sizes or {}).get(rel, (None, None))
                    cur = con.execute("INSERT OR IGNORE INTO images (path, name, width, height, sha256, added, seq) "
                                      "VALUES (?, ?, ?, ?, ?, ?, ?)",
                                      (rel, PurePosixPath(rel).name, w, h, (sha256 or {}).get(rel), now, seq))
                    added += cur.rowcount
            self._db.own(seq)  # a reader watching for other processes' changes skips this one
        return added

    def update_image(self, img: ImageRecord) -> None:
        """Write an image's own fields (size, hash, status, error; and path after a relocation)."""
        if img.id is None:
            raise ProjectError(f"{img.path} is not in the project {self._db.path.name}.")
        with self._db.write() as con:
            con.execute("UPDATE images SET path = ?, name = ?, width = ?, height = ?, sha256 = ?, status = ?, "
                        "error = ? WHERE id = ?",
                        (img.path, img.name, img.width, img.height, img.sha256, img.status, img.error, img.id))
            self._db.bump(con, img.id)
            T.refresh_summary(con, img.id)

    def put_changes(self, img: ImageRecord, *, objects: Iterable[ObjectRecord] = (),
                    removed: Iterable[str] = (), runs: Iterable[QuestionRun] = (), source: Source = "user",
                    action: str = "edit") -> dict[str, tuple[float, list[str]]]:
        """Several changes of one image in one transaction: runs written (a run replaces the
        image's run of the same question), objects written, objects removed (by uid); each object
        change and removal logged. Returns the review need and reasons of every object whose need
        was computed (those written, and the other objects of the runs they belong to), by uid;
        the objects written get theirs too."""
        if img.id is None:
            raise ProjectError(f"{img.path} is not in the project {self._db.path.name}.")
        objects, removed, runs = list(objects), list(removed), list(runs)
        with self._db.write() as con:
            for run in runs:
                T.upsert_run(con, img.id, run)
                T.log_edit(con, img.id, self._db.writer, source if source != "user" else "chain", action,
                           {"answer": run.answer, "models": run.models}, question_key=run.key)
            affected = {r.key for r in runs}
            reviews: dict[str, tuple[float, list[str]]] = {}
            for obj in objects:
                key = None if obj.question is None else normalise_question(obj.question)
                T.upsert_object(con, img.id, obj)
                reviews[obj.uid] = (obj.review, list(obj.reasons))
                T.log_edit(con, img.id, self._db.writer, source, action, _edit_detail(obj, source),
                           question_key=key, object_uid=obj.uid)
            if removed:
                affected |= {r[0] for r in con.execute(
                    f"SELECT DISTINCT run_key FROM objects WHERE image_id = ? AND uid IN ({','.join('?' * len(removed))})",
                    (img.id, *removed)) if r[0] is not None}
                T.delete_objects(con, img.id, removed)
                for uid in removed:
                    T.log_edit(con, img.id, self._db.writer, source, "remove", {}, object_uid=uid)
            if len(objects) > 1 or removed or runs:
                affected |= {normalise_question(o.question) for o in objects if o.question is not None}
                for key in affected:
                    reviews.update(T.refresh_run_reviews(con, img.id, key))
            self._db.bump(con, img.id)
            T.refresh_summary(con, img.id)
        for run in runs:
            img.runs = [r for r in img.runs if r.key != run.key] + [run]
        gone = set(removed)
        kept = {o.uid: o for o in img.objects if o.uid not in gone}
        kept.update({o.uid: o for o in objects})
        img.objects = sorted(kept.values(), key=lambda o: o.order)
        for obj in objects:
            obj.review, obj.reasons = reviews.get(obj.uid, (obj.review, obj.reasons))
        return reviews

    def remove_run(self, img: ImageRecord, question: str, *, source: Source = "user") -> bool:
        """Drop the run of ``question`` (the objects it proposed stay: they are the image's)."""
        key = normalise_question(question)
        with self._db.write() as con:
            gone = con.execute("DELETE FROM runs WHERE image_id = ? AND key = ?", (img.id, key)).rowcount
            if gone:
                T.log_edit(con, img.id, self._db.writer, source, "remove run", {}, question_key=key)
                self._db.bump(con, img.id)
                T.refresh_summary(con, img.id)
        img.runs = [r for r in img.runs if r.key != key]
        return bool(gone)

    def record_run(self, img: ImageRecord, run: QuestionRun, objects: list[ObjectRecord],
                   size: tuple[int, int], *, sha256: str | None = None) -> list[ObjectRecord]:
        """A chain's run and the objects it proposed, on an image of the project (see
        :meth:`engine.project.store.Project.record_run`); ``size`` (W, H)."""
        w, h = size
        img.mark_ok(w, h)
        img.sha256 = sha256 or img.sha256
        stale = [o.uid for o in img.objects if o.question is not None
                 and normalise_question(o.question) == run.key and not o.touched]
        top = max((o.order for o in img.objects if o.uid not in stale), default=-1)
        for i, obj in enumerate(objects):
            obj.order = top + 1 + i
        run.object_uids = [o.uid for o in objects] + [o.uid for o in img.objects
                                                      if o.question is not None and o.uid not in stale
                                                      and normalise_question(o.question) == run.key]
        with self._db.write() as con:  # the image, its run and its objects in one transaction
            con.execute("UPDATE images SET width = ?, height = ?, sha256 = ?, status = 'ok', error = NULL WHERE id = ?",
                        (img.width, img.height, img.sha256, img.id))
            T.upsert_run(con, img.id, run)
            T.log_edit(con, img.id, self._db.writer, "chain", "chain", {"answer": run.answer, "models": run.models},
                       question_key=run.key)
            T.delete_objects(con, img.id, stale)
            for obj in objects:
                T.upsert_object(con, img.id, obj, review=(0.0, []))
            T.refresh_run_reviews(con, img.id, run.key)
            self._db.bump(con, img.id)
            T.refresh_summary(con, img.id)
        return objects

    def clear_annotations(self, img: ImageRecord, *, source: Source = "chain", reason: str = "") -> None:
        """Drop every object and run of an image (its file changed: the masks no longer fit)."""
        with self._db.write() as con:
            con.execute("DELETE FROM objects WHERE image_id = ?", (img.id,))
            con.execute("DELETE FROM runs WHERE image_id = ?", (img.id,))
            T.log_edit(con, img.id, self._db.writer, source, "clear", {"reason": reason})
            self._db.bump(con, img.id)
            T.refresh_summary(con, img.id)
        img.objects.clear()
        img.runs.clear()

    def import_records(self, images: list[ImageRecord], categories: Iterable[Category] = ()) -> None:
        """Add images with their (new) objects and runs, all in one transaction: an import that
        fails half way (disk full, I/O error) leaves the project as it was.

        Categories first (their ``id`` is kept when free). An image already in the project gets
        the new size, status and hash; an object whose uid it already has, or a run of a question
        it already has, is kept as it is. Other writers wait for the import (SQLite's busy
        timeout); the records are read and checked before, so the transaction holds inserts only.
        """
        with self._db.write() as con:
            for c in categories:
                T.ensure_category(con, c.name, c.id or None, c.color)
            for img in images:
                seq = T.next_seq(con)
                con.execute("INSERT INTO images (path, name, width, height, sha256, status, error, added, seq) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET "
                            "width = excluded.width, height = excluded.height, status = excluded.status, "
                            "error = excluded.error, sha256 = COALESCE(images.sha256, excluded.sha256), "
                            "seq = excluded.seq",
                            (img.path, img.name, img.width, img.height, img.sha256, img.status, img.error,
                             img.added, seq))
                img.id = con.execute("SELECT id FROM images WHERE path = ?", (img.path,)).fetchone()[0]
                top = con.execute("SELECT COALESCE(MAX(draw_order), -1) FROM objects WHERE image_id = ?",
                                  (img.id,)).fetchone()[0]
                for run in img.runs:
                    if not con.execute("SELECT 1 FROM runs WHERE image_id = ? AND key = ?",
                                       (img.id, run.key)).fetchone():
                        T.upsert_run(con, img.id, run)
                runs = {r.key: r for r in img.runs}
                kept = {k: sum(1 for o in img.objects if o.question and normalise_question(o.question) == k)
                        for k in runs}
                for obj in img.objects:
                    if con.execute("SELECT 1 FROM objects WHERE uid = ?", (obj.uid,)).fetchone():
                        continue
                    top += 1
                    obj.order = top
                    key = normalise_question(obj.question) if obj.question else None
                    review = T.object_review(obj, runs[key], kept[key]) if key in runs else None
                    T.upsert_object(con, img.id, obj, review=review)
                    T.log_edit(con, img.id, self._db.writer, "import", "import", _edit_detail(obj, "import"),
                               object_uid=obj.uid)
                T.refresh_summary(con, img.id)

    def move_images(self, moves: list[tuple[int, str]]) -> None:
        """New stored paths for images (id, relative path), in one transaction (a relocation)."""
        with self._db.write() as con:
            for image_id, rel in moves:
                old = con.execute("SELECT path FROM images WHERE id = ?", (image_id,)).fetchone()
                con.execute("UPDATE images SET path = ?, name = ? WHERE id = ?", (rel, PurePosixPath(rel).name, image_id))
                self._db.bump(con, image_id)
                T.log_edit(con, image_id, self._db.writer, "user", "relocate", {"from": old[0] if old else None, "to": rel})

    def ensure_category(self, name: str, color: tuple[int, int, int] | None = None) -> Category:
        """The category called ``name``, created with the next free id if new."""
        with self._db.write() as con:
            return T.ensure_category(con, name, color=color)

    def set_classes(self, names: Iterable[str]) -> list[Category]:
        """Add these classes to the class list, in order (those it has keep their ids and colours)."""
        with self._db.write() as con:
            return [T.ensure_category(con, n) for n in names if clean_label(n)]

    def rename_category(self, old: str, new: str) -> Category:
        """Rename a class; its objects follow (they refer to it by id). Refuses a name in use."""
        new = clean_label(new)
        if not new:
            raise InputError("A class needs a name.")
        with self._db.write() as con:
            row = con.execute("SELECT id FROM categories WHERE name = ?", (old,)).fetchone()
            if row is None:
                raise InputError(f"There is no class called {old!r}.")
            if new != old and con.execute("SELECT 1 FROM categories WHERE name = ?", (new,)).fetchone():
                raise InputError(f"There is a class called {new!r} already.")
            con.execute("UPDATE categories SET name = ? WHERE id = ?", (new, row[0]))
            for (image_id,) in con.execute("SELECT DISTINCT image_id FROM objects WHERE category_id = ?",
                                           (row[0],)).fetchall():
                self._db.bump(con, image_id)
            return Category(id=int(row[0]), name=new)

    def set_category_color(self, name: str, color: tuple[int, int, int] | None) -> None:
        with self._db.write() as con:
            con.execute("UPDATE categories SET color = ? WHERE name = ?",
                        (None if color is None else ",".join(str(int(c)) for c in color), name))

    def set_meta(self, key: str, value: str) -> None:
        with self._db.write() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (str(key), str(value)))

def _edit_detail(obj: ObjectRecord, source: str) -> dict:
    """What the edit log keeps of an object's change: a person's or an import's work whole
    (points, box, mask, category, acceptance), the chain's by reference."""
    if source == "chain":
        return {"question": obj.question, "category": obj.category}
    from .codec import box_to_json, point_to_json

    return {"points": [point_to_json(p) for p in obj.points],
            "box": None if obj.box is None else box_to_json(obj.box), "mask": obj.mask_rle,
            "mask_source": obj.mask_source, "category": obj.category, "accepted": obj.accepted,
            "proposal": obj.proposal, "order": obj.order}
