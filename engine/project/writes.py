"""The project store's writes: every method one short transaction where the change happens.

Each write bumps the image's change number (``seq``, so other processes find what changed),
refreshes the image row's list columns from its objects and latest run (so the list never reads
them) and appends to the edit log: what changed (which object, which question), from which
source (chain, user, import), by which writer, when. :class:`ProjectWrites` is a part of :class:`engine.project.store.Project`.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import PurePosixPath
from typing import Any, Iterable, Literal

from ..errors import InputError, ProjectError
from . import tables as T
from .objects import ObjectRecord
from .from_chain import proposals_from_chain
from .records import Category, ImageRecord, RelocateReport, clean_label, displayed_size, normalise_question
from .runs import QuestionRun

__all__ = ["ProjectWrites", "Source", "ORDERS", "shown_path", "NOT_UTF8"]

Source = Literal["chain", "user", "import"]
ORDERS = {  # image list orders, each served by an index
    "review": "status = 'failed', review DESC, id",
    "name": "name, id",
    "state": "state, id",
    "added": "id",
}
_CHUNK = 500
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


class ProjectWrites:
    """The write methods of :class:`~engine.project.store.Project` (which provides ``_write``,
    ``find_image``, ``rel_path`` and the rest)."""

    def add_image(self, path: str | os.PathLike[str], *, width: int | None = None,
                  height: int | None = None, sha256: str | None = None, read_size: bool = False) -> ImageRecord:
        """Add an image (or return the existing record, with its questions). ``read_size`` reads W x H."""
        rel = self.rel_path(path)
        existing = self.find_image(self.abs_path(rel))
        if existing is not None:
            if (width is not None and height is not None and existing.width is None) or (sha256 and not existing.sha256):
                if existing.width is None and width is not None and height is not None:
                    existing.width, existing.height = int(width), int(height)
                existing.sha256 = existing.sha256 or sha256
                self.update_image(existing)
            return existing
        if read_size and (width is None or height is None):
            width, height = displayed_size(self.abs_path(rel))
        self.add_images([self.abs_path(rel)],
                        sizes={rel: (int(width), int(height))} if width is not None and height is not None else None,
                        sha256={rel: sha256} if sha256 else None)
        return self.find_image(self.abs_path(rel))  # type: ignore[return-value]

    def add_images(self, paths: Iterable[str | os.PathLike[str]], *, sizes: dict[str, tuple[int, int]] | None = None,
                   sha256: dict[str, str] | None = None) -> int:
        """Add many images (existing ones untouched), a chunk per transaction; returns how many were new.

        ``sizes`` and ``sha256`` are keyed by the stored (relative) path. A path whose name is not
        UTF-8 cannot be stored (InputError, nothing added; :meth:`unstorable` finds them first)."""
        paths = list(paths)
        rels = [self.rel_path(p) for p in paths]
        bad = [p for p, rel in zip(paths, rels) if not _storable(rel)]
        if bad:
            raise InputError(f"{shown_path(bad[0])}: {NOT_UTF8}. No image was added.")
        added = 0
        now = time.time()
        for i in range(0, len(rels), _CHUNK):
            with self._write() as con:
                seq = T.next_seq(con)
                for rel in rels[i:i + _CHUNK]:
                    w, h = (sizes or {}).get(rel, (None, None))
                    cur = con.execute("INSERT OR IGNORE INTO images (path, name, width, height, sha256, added, seq) "
                                      "VALUES (?, ?, ?, ?, ?, ?, ?)",
                                      (rel, PurePosixPath(rel).name, w, h, (sha256 or {}).get(rel), now, seq))
                    added += cur.rowcount
            self._own(seq)  # a reader watching for other processes' changes skips this one
        return added

    def unstorable(self, paths: Iterable[str | os.PathLike[str]]) -> list[tuple[str, str]]:
        """``(path as shown, reason)`` of the paths a project cannot store (a name that is not UTF-8)."""
        return [(shown_path(p), NOT_UTF8) for p in paths if not _storable(self.rel_path(p))]

    def update_image(self, img: ImageRecord) -> None:
        """Write an image's own fields (size, hash, status, error; and path after a relocation)."""
        if img.id is None:
            raise ProjectError(f"{img.path} is not in the project {self.path.name}.")
        with self._write() as con:
            con.execute("UPDATE images SET path = ?, name = ?, width = ?, height = ?, sha256 = ?, status = ?, "
                        "error = ? WHERE id = ?",
                        (img.path, img.name, img.width, img.height, img.sha256, img.status, img.error, img.id))
            self._bump(con, img.id)
            T.refresh_summary(con, img.id)

    def put_object(self, img: ImageRecord, obj: ObjectRecord, *, source: Source = "user",
                   action: str = "edit") -> ObjectRecord:
        """Insert or update one object of this image, with an edit-log entry (one transaction); its
        review need and reasons are filled in."""
        self.put_changes(img, objects=[obj], source=source, action=action)
        return obj

    def put_changes(self, img: ImageRecord, *, objects: Iterable[ObjectRecord] = (),
                    removed: Iterable[str] = (), runs: Iterable[QuestionRun] = (), source: Source = "user",
                    action: str = "edit") -> dict[str, tuple[float, list[str]]]:
        """Several changes of one image in one transaction: runs written (a run replaces the
        image's run of the same question), objects written, objects removed (by uid); each object
        change and removal logged. Returns the review need and reasons of every object whose need
        was computed (those written, and the other objects of the runs they belong to), by uid;
        the objects written get theirs too."""
        if img.id is None:
            raise ProjectError(f"{img.path} is not in the project {self.path.name}.")
        objects, removed, runs = list(objects), list(removed), list(runs)
        with self._write() as con:
            for run in runs:
                T.upsert_run(con, img.id, run)
                T.log_edit(con, img.id, self.writer, source if source != "user" else "chain", action,
                           {"answer": run.answer, "models": run.models}, question_key=run.key)
            affected = {r.key for r in runs}
            reviews: dict[str, tuple[float, list[str]]] = {}
            for obj in objects:
                key = None if obj.question is None else normalise_question(obj.question)
                T.upsert_object(con, img.id, obj)
                reviews[obj.uid] = (obj.review, list(obj.reasons))
                T.log_edit(con, img.id, self.writer, source, action, _edit_detail(obj, source),
                           question_key=key, object_uid=obj.uid)
            if removed:
                affected |= {r[0] for r in con.execute(
                    f"SELECT DISTINCT run_key FROM objects WHERE image_id = ? AND uid IN ({','.join('?' * len(removed))})",
                    (img.id, *removed)) if r[0] is not None}
                T.delete_objects(con, img.id, removed)
                for uid in removed:
                    T.log_edit(con, img.id, self.writer, source, "remove", {}, object_uid=uid)
            if len(objects) > 1 or removed or runs:
                affected |= {normalise_question(o.question) for o in objects if o.question is not None}
                for key in affected:
                    reviews.update(T.refresh_run_reviews(con, img.id, key))
            self._bump(con, img.id)
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

    def remove_objects(self, img: ImageRecord, uids: Iterable[str], *, source: Source = "user") -> None:
        self.put_changes(img, removed=list(uids), source=source, action="remove")

    def put_run(self, img: ImageRecord, run: QuestionRun, *, source: Source = "chain", action: str = "run") -> None:
        """Insert or replace the image's run of ``run.question`` (one transaction)."""
        self.put_changes(img, runs=[run], source=source, action=action)

    def remove_run(self, img: ImageRecord, question: str, *, source: Source = "user") -> bool:
        """Drop the run of ``question`` (the objects it proposed stay: they are the image's)."""
        key = normalise_question(question)
        with self._write() as con:
            gone = con.execute("DELETE FROM runs WHERE image_id = ? AND key = ?", (img.id, key)).rowcount
            if gone:
                T.log_edit(con, img.id, self.writer, source, "remove run", {}, question_key=key)
                self._bump(con, img.id)
                T.refresh_summary(con, img.id)
        img.runs = [r for r in img.runs if r.key != key]
        return bool(gone)

    def record_chain(self, image_path: str | os.PathLike[str], chain: Any, *, category: str | None = None,
                     sha256: str | None = None, source: str = "batch") -> tuple[QuestionRun, list[ObjectRecord]]:
        """Store a ChainResult for an image (added if new): its run, and its proposals as objects."""
        run, objects = proposals_from_chain(chain, category=category, source=source)  # type: ignore[arg-type]
        self.record_run(image_path, run, objects, chain.image_size, sha256=sha256)
        return run, objects

    def record_run(self, image_path: str | os.PathLike[str], run: QuestionRun, objects: list[ObjectRecord],
                   size: tuple[int, int], *, sha256: str | None = None) -> list[ObjectRecord]:
        """:meth:`record_chain` for a run and objects already made from the chain (as ``qmask batch``
        does: a Ray worker sends these, not the chain's arrays); ``size`` (W, H). An earlier run
        of the same question is replaced, and of the objects it proposed those nobody touched
        (kept, edited, labelled, accepted) are replaced by the new proposals; the others stay.
        Returns the objects now on the image from this run."""
        w, h = size
        img = self.find_image(image_path) or self.add_image(image_path)
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
        with self._write() as con:  # the image, its run and its objects in one transaction
            con.execute("UPDATE images SET width = ?, height = ?, sha256 = ?, status = 'ok', error = NULL WHERE id = ?",
                        (img.width, img.height, img.sha256, img.id))
            T.upsert_run(con, img.id, run)
            T.log_edit(con, img.id, self.writer, "chain", "chain", {"answer": run.answer, "models": run.models},
                       question_key=run.key)
            T.delete_objects(con, img.id, stale)
            for obj in objects:
                T.upsert_object(con, img.id, obj, review=(0.0, []))
            T.refresh_run_reviews(con, img.id, run.key)
            self._bump(con, img.id)
            T.refresh_summary(con, img.id)
        return objects

    def clear_annotations(self, img: ImageRecord, *, source: Source = "chain", reason: str = "") -> None:
        """Drop every object and run of an image (its file changed: the masks no longer fit)."""
        with self._write() as con:
            con.execute("DELETE FROM objects WHERE image_id = ?", (img.id,))
            con.execute("DELETE FROM runs WHERE image_id = ?", (img.id,))
            T.log_edit(con, img.id, self.writer, source, "clear", {"reason": reason})
            self._bump(con, img.id)
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
        with self._write() as con:
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
                    T.log_edit(con, img.id, self.writer, "import", "import", _edit_detail(obj, "import"),
                               object_uid=obj.uid)
                T.refresh_summary(con, img.id)

    def move_images(self, moves: list[tuple[int, str]]) -> None:
        """New stored paths for images (id, relative path), in one transaction (a relocation)."""
        with self._write() as con:
            for image_id, rel in moves:
                old = con.execute("SELECT path FROM images WHERE id = ?", (image_id,)).fetchone()
                con.execute("UPDATE images SET path = ?, name = ? WHERE id = ?", (rel, PurePosixPath(rel).name, image_id))
                self._bump(con, image_id)
                T.log_edit(con, image_id, self.writer, "user", "relocate", {"from": old[0] if old else None, "to": rel})

    def relocate(self, new_folder: str | os.PathLike[str], **options: Any) -> "RelocateReport":
        """See :func:`engine.project.relocate.relocate`."""
        from .relocate import relocate

        return relocate(self, new_folder, **options)

    def ensure_category(self, name: str, color: tuple[int, int, int] | None = None) -> Category:
        """The category called ``name``, created with the next free id if new."""
        with self._write() as con:
            return T.ensure_category(con, name, color=color)

    def set_classes(self, names: Iterable[str]) -> list[Category]:
        """Add these classes to the class list, in order (those it has keep their ids and colours)."""
        with self._write() as con:
            return [T.ensure_category(con, n) for n in names if clean_label(n)]

    def rename_category(self, old: str, new: str) -> Category:
        """Rename a class; its objects follow (they refer to it by id). Refuses a name in use."""
        new = clean_label(new)
        if not new:
            raise InputError("A class needs a name.")
        with self._write() as con:
            row = con.execute("SELECT id FROM categories WHERE name = ?", (old,)).fetchone()
            if row is None:
                raise InputError(f"There is no class called {old!r}.")
            if new != old and con.execute("SELECT 1 FROM categories WHERE name = ?", (new,)).fetchone():
                raise InputError(f"There is a class called {new!r} already.")
            con.execute("UPDATE categories SET name = ? WHERE id = ?", (new, row[0]))
            for (image_id,) in con.execute("SELECT DISTINCT image_id FROM objects WHERE category_id = ?",
                                           (row[0],)).fetchall():
                self._bump(con, image_id)
            return Category(id=int(row[0]), name=new)

    def set_category_color(self, name: str, color: tuple[int, int, int] | None) -> None:
        with self._write() as con:
            con.execute("UPDATE categories SET color = ? WHERE name = ?",
                        (None if color is None else ",".join(str(int(c)) for c in color), name))

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (str(key), str(value)))

    # -- internals ------------------------------------------------------------------------
    def _bump(self, con: sqlite3.Connection, image_id: int | None) -> None:
        """Give the image the next change number, remembered as this Project's own change."""
        seq = T.next_seq(con)
        con.execute("UPDATE images SET seq = ? WHERE id = ?", (seq, image_id))
        self._own(seq)

    def _own(self, seq: int) -> None:
        with self._lock:
            self._own_seqs.add(seq)


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
