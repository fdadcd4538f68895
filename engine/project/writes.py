"""The project store's writes: every method one short transaction where the change happens.

Each write bumps the image's change number (``seq``, so other processes find what changed),
refreshes the image row's list columns from its latest question (so the list never reads
records) and appends to the edit log: what changed, from which source (chain, user, import),
by which writer, when. :class:`ProjectWrites` is a part of :class:`engine.project.store.Project`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Iterable, Literal

from ..errors import InputError, ProjectError
from .records import (Category, ImageRecord, QuestionRecord, RelocateReport, clean_label, displayed_size,
                      normalise_question, record_from_chain)
from .rows import category_from_row, list_state, question_row

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
                seq = self._next_seq(con)
                for rel in rels[i:i + _CHUNK]:
                    w, h = (sizes or {}).get(rel, (None, None))
                    cur = con.execute("INSERT OR IGNORE INTO images (path, name, width, height, sha256, added, seq) "
                                      "VALUES (?, ?, ?, ?, ?, ?, ?)",
                                      (rel, PurePosixPath(rel).name, w, h, (sha256 or {}).get(rel), now, seq))
                    added += cur.rowcount
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
            self._refresh_summary(con, img.id)

    def put_question(self, img: ImageRecord, record: QuestionRecord, *, source: Source = "user",
                     action: str = "edit") -> QuestionRecord:
        """Insert or replace the record of ``record.question`` on this image, with an edit-log entry."""
        if img.id is None:
            raise ProjectError(f"{img.path} is not in the project {self.path.name}.")
        row = question_row(record)
        cols = ", ".join(row)
        with self._write() as con:
            con.execute(f"INSERT INTO questions (image_id, {cols}) VALUES (?, {', '.join('?' * len(row))}) "
                        f"ON CONFLICT (image_id, key) DO UPDATE SET "
                        + ", ".join(f"{c} = excluded.{c}" for c in row if c != "created"),
                        (img.id, *row.values()))
            self._log(con, img.id, record.key, source, action, _edit_detail(record, source))
            self._bump(con, img.id)
            self._refresh_summary(con, img.id)
        img.upsert_question(record)
        return record

    def remove_question(self, img: ImageRecord, question: str, *, source: Source = "user") -> bool:
        key = normalise_question(question)
        with self._write() as con:
            gone = con.execute("DELETE FROM questions WHERE image_id = ? AND key = ?", (img.id, key)).rowcount
            if gone:
                self._log(con, img.id, key, source, "remove", {})
                self._bump(con, img.id)
                self._refresh_summary(con, img.id)
        img.remove_question(question)
        return bool(gone)

    def record_chain(self, image_path: str | os.PathLike[str], chain: Any, *, label: str | None = None,
                     sha256: str | None = None) -> QuestionRecord:
        """Store a ChainResult for an image (added if new), replacing an older run of the same question."""
        return self.record_result(image_path, record_from_chain(chain, label=label), chain.image_size, sha256=sha256)

    def record_result(self, image_path: str | os.PathLike[str], record: QuestionRecord, size: tuple[int, int], *,
                      sha256: str | None = None) -> QuestionRecord:
        """:meth:`record_chain` for a record already made from the chain (``record_from_chain``, as
        ``qmask batch`` does: a Ray worker sends the record, not the chain's arrays); ``size`` (W, H)."""
        w, h = size
        label = record.label
        img = self.find_image(image_path, questions=False) or self.add_image(image_path)
        img.mark_ok(w, h)
        img.sha256 = sha256 or img.sha256
        row = question_row(record)
        cols = ", ".join(row)
        with self._write() as con:  # the image, its category and its record in one transaction
            if label is not None:
                self._ensure_category(con, label)
            con.execute("UPDATE images SET width = ?, height = ?, sha256 = ?, status = 'ok', error = NULL WHERE id = ?",
                        (img.width, img.height, img.sha256, img.id))
            con.execute(f"INSERT OR REPLACE INTO questions (image_id, {cols}) VALUES (?, {', '.join('?' * len(row))})",
                        (img.id, *row.values()))
            self._log(con, img.id, record.key, "chain", "chain", _edit_detail(record, "chain"))
            self._bump(con, img.id)
            self._refresh_summary(con, img.id)
        return record

    def clear_questions(self, img: ImageRecord, *, source: Source = "chain", reason: str = "") -> None:
        """Drop every question of an image (its file changed: the masks no longer fit)."""
        with self._write() as con:
            con.execute("DELETE FROM questions WHERE image_id = ?", (img.id,))
            self._log(con, img.id, None, source, "clear", {"reason": reason})
            self._bump(con, img.id)
            self._refresh_summary(con, img.id)
        img.questions.clear()

    def import_records(self, images: list[ImageRecord], categories: Iterable[Category] = ()) -> None:
        """Add images with their (new) question records, all in one transaction: an import that
        fails half way (disk full, I/O error) leaves the project as it was.

        Categories first (their ``id`` is kept when free). An image already in the project gets
        the new size, status and hash; a question it already has is kept as it is. Other
        writers wait for the import (SQLite's busy timeout); the records are read and checked
        before, so the transaction holds inserts only.
        """
        with self._write() as con:
            for c in categories:
                self._ensure_category(con, c.name, c.id or None)
            for img in images:
                seq = self._next_seq(con)
                con.execute("INSERT INTO images (path, name, width, height, sha256, status, error, added, seq) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET "
                            "width = excluded.width, height = excluded.height, status = excluded.status, "
                            "error = excluded.error, sha256 = COALESCE(images.sha256, excluded.sha256), "
                            "seq = excluded.seq",
                            (img.path, img.name, img.width, img.height, img.sha256, img.status, img.error,
                             img.added, seq))
                img.id = con.execute("SELECT id FROM images WHERE path = ?", (img.path,)).fetchone()[0]
                for q in img.questions:
                    row = question_row(q)
                    cur = con.execute(f"INSERT OR IGNORE INTO questions (image_id, {', '.join(row)}) "
                                      f"VALUES (?, {', '.join('?' * len(row))})", (img.id, *row.values()))
                    if cur.rowcount:
                        self._log(con, img.id, q.key, "import", "import", _edit_detail(q, "import"))
                self._refresh_summary(con, img.id)

    def move_images(self, moves: list[tuple[int, str]]) -> None:
        """New stored paths for images (id, relative path), in one transaction (a relocation)."""
        with self._write() as con:
            for image_id, rel in moves:
                old = con.execute("SELECT path FROM images WHERE id = ?", (image_id,)).fetchone()
                con.execute("UPDATE images SET path = ?, name = ? WHERE id = ?", (rel, PurePosixPath(rel).name, image_id))
                self._bump(con, image_id)
                self._log(con, image_id, None, "user", "relocate", {"from": old[0] if old else None, "to": rel})

    def relocate(self, new_folder: str | os.PathLike[str], **options: Any) -> "RelocateReport":
        """See :func:`engine.project.relocate.relocate`."""
        from .relocate import relocate

        return relocate(self, new_folder, **options)

    def ensure_category(self, name: str) -> Category:
        """The category called ``name``, created with the next free id if new."""
        with self._write() as con:
            return self._ensure_category(con, name)

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (str(key), str(value)))

    # -- internals ------------------------------------------------------------------------
    def _ensure_category(self, con: sqlite3.Connection, name: str, cat_id: int | None = None) -> Category:
        name = clean_label(name)
        if not name:
            raise InputError("A label needs a name.")
        row = con.execute("SELECT * FROM categories WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return category_from_row(row)
        if cat_id is None or con.execute("SELECT 1 FROM categories WHERE id = ?", (cat_id,)).fetchone():
            cat_id = con.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM categories").fetchone()[0]
        con.execute("INSERT INTO categories (id, name) VALUES (?, ?)", (cat_id, name))
        return Category(id=int(cat_id), name=name)

    @staticmethod
    def _next_seq(con: sqlite3.Connection) -> int:
        return int(con.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM images").fetchone()[0])

    def _bump(self, con: sqlite3.Connection, image_id: int | None) -> None:
        """Give the image the next change number, remembered as this Project's own change."""
        seq = self._next_seq(con)
        con.execute("UPDATE images SET seq = ? WHERE id = ?", (seq, image_id))
        with self._lock:
            self._own_seqs.add(seq)

    def _log(self, con: sqlite3.Connection, image_id: int, key: str | None, source: str, action: str,
             detail: dict) -> None:
        con.execute("INSERT INTO edits (time, image_id, question_key, source, action, writer, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (time.time(), image_id, key, source, action, self.writer,
                     json.dumps(detail, ensure_ascii=False, separators=(",", ":"))))

    @staticmethod
    def _refresh_summary(con: sqlite3.Connection, image_id: int) -> None:
        """The image row's list columns from its latest question (the list never reads records)."""
        status = con.execute("SELECT status FROM images WHERE id = ?", (image_id,)).fetchone()[0]
        latest = con.execute("SELECT question, answer, accepted, mask_source, heatmap IS NOT NULL AS asked "
                             "FROM questions WHERE image_id = ? ORDER BY updated DESC, id DESC LIMIT 1",
                             (image_id,)).fetchone()
        review, accepted = con.execute("SELECT COALESCE(MAX(review), 0), COALESCE(MAX(accepted), 0) "
                                       "FROM questions WHERE image_id = ?", (image_id,)).fetchone()
        state = list_state(status, None if latest is None else _Latest(*latest))
        con.execute("UPDATE images SET state = ?, review = ?, question = ?, answer = ?, accepted = ? WHERE id = ?",
                    (state, review, None if latest is None else latest[0], None if latest is None else latest[1],
                     accepted, image_id))




@dataclass
class _Latest:  # the columns list_state needs, as record attributes
    question: str
    answer: str | None
    accepted: int
    mask_source: str
    asked: int

    @property
    def heatmap(self) -> object | None:
        return True if self.asked else None


def _edit_detail(record: QuestionRecord, source: str) -> dict:
    """What the edit log keeps of a change: a person's or an import's work whole (points, mask,
    label, acceptance), the chain's by reference (its answer and models)."""
    if source == "chain":
        return {"answer": record.answer, "models": record.models}
    from .codec import box_to_json, point_to_json

    return {"points": [point_to_json(p) for p in record.points],
            "box": None if record.box is None else box_to_json(record.box), "mask": record.mask_rle,
            "mask_source": record.mask_source, "label": record.label, "accepted": record.accepted,
            "alpha": record.alpha, "answer": record.answer}
