"""A project: one SQLite file (``NAME.qmask``), written change by change.

Quick use (the app, ``qmask batch`` and ``qmask import`` all go through this)::

    project = Project.open_or_create("work/birds.qmask")   # a v1 .qmask.json is converted once
    image = project.add_image("work/images/a.jpg", width=640, height=480)  # path -> relative
    project.record_chain(image.path, chain, label="bird")   # one transaction
    record.set_mask(edited, source="user"); project.put_question(image, record, source="user")

Every write method is one short transaction: nothing is written in bulk later, there is no
``save``. Reads return copies (:mod:`engine.project.records`); the image list reads
:class:`ImageRow` summaries (no question records) and an image's records load when asked.
Several processes may write one project at once (see :mod:`engine.project.schema`): each change
lands; when two change the same record the later wins and the edit log keeps both.

One :class:`Project` may be used from several threads: each thread gets its own connection.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Iterator, Literal

from ..errors import InputError, ProjectError
from . import schema
from .records import (Category, ImageRecord, QuestionRecord, RelocateReport, displayed_size, normalise_question,
                      record_from_chain)
from .rows import (QUESTION_COLUMNS, category_from_row, image_from_row, list_state, question_from_row,
                   question_row)

__all__ = ["Project", "ImageRow", "Edit", "PROJECT_SUFFIX", "Source", "ORDERS"]

PROJECT_SUFFIX = ".qmask"
Source = Literal["chain", "user", "import"]
ORDERS = {  # image list orders, each served by an index
    "review": "status = 'failed', review DESC, id",
    "name": "name, id",
    "state": "state, id",
    "added": "id",
}
_CHUNK = 500


@dataclass(frozen=True)
class ImageRow:
    """What the image list shows of an image, without its question records."""

    id: int
    path: str
    status: str  # pending, ok, failed
    error: str | None
    state: str  # new, asked, answered, edited, accepted, failed
    review: float  # review need in [0, 1]
    question: str | None  # the latest question, and its answer
    answer: str | None
    accepted: bool
    seq: int

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name


@dataclass(frozen=True)
class Edit:
    """One entry of the append-only edit log."""

    id: int
    time: float
    image_id: int
    question_key: str | None
    source: str
    action: str
    writer: str
    detail: dict


class Project:
    """A project file; see the module docstring. Open with :meth:`open`, :meth:`create` or
    :meth:`open_or_create` (which also take a version-1 ``.qmask.json``)."""

    def __init__(self, path: Path, *, writer: str = "qmask") -> None:
        self.path = Path(path)
        self.writer = f"{writer}@{socket.gethostname()}:{os.getpid()}"
        self.notice = ""  # a message for the user about how the project was opened (e.g. converted)
        self.reads = {"images": 0, "questions": 0}  # records read (tests count what the app reads)
        self.own_seq: dict[int, int] = {}  # image id -> change number of this Project's last write to it
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    # -- opening --------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike[str], *, overwrite: bool = False, writer: str = "qmask") -> "Project":
        """A new, empty project file."""
        p = Path(path).expanduser().absolute()
        if p.name.endswith(".qmask.json"):
            p = p.with_name(p.name[: -len(".json")])
        if p.exists() and not overwrite:
            raise ProjectError(f"{p} already exists; open it instead, or choose another name.")
        if not p.parent.is_dir():
            raise ProjectError(f"The folder {p.parent} does not exist.")
        tmp = p.with_name(f".{p.name}.{os.getpid()}.new")
        try:
            con = schema.connect(tmp, create=True)
            try:
                schema.initialise(con)
                con.execute("BEGIN IMMEDIATE")
                con.execute("INSERT INTO meta VALUES ('created', ?)", (repr(time.time()),))
                con.execute("COMMIT")
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                con.close()
            _publish(tmp, p, overwrite)  # a project appears whole or not at all
        except FileExistsError:  # another process created it meanwhile
            for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                leftover.unlink(missing_ok=True)
            raise ProjectError(f"{p} already exists; open it instead, or choose another name.") from None
        except (OSError, sqlite3.Error) as err:
            for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                leftover.unlink(missing_ok=True)
            raise ProjectError(f"Cannot create the project {p}: {getattr(err, 'strerror', None) or err}.") from err
        return cls._opened(p, writer)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, writer: str = "qmask") -> "Project":
        """Open a project; a version-1 ``.qmask.json`` is converted once into ``NAME.qmask`` beside it."""
        p = Path(path).expanduser().absolute()
        if p.name.endswith(".json"):
            from .interchange import convert_json_project

            return convert_json_project(p, writer=writer)
        schema.check_file(p)
        return cls._opened(p, writer)

    @classmethod
    def open_or_create(cls, path: str | os.PathLike[str], *, writer: str = "qmask") -> "Project":
        p = Path(path).expanduser()
        if p.exists() or (p.name.endswith(".json") and p.with_name(p.name[:-5]).exists()):
            return cls.open(p, writer=writer)
        try:
            return cls.create(p, writer=writer)
        except ProjectError:
            target = p.with_name(p.name[:-5]) if p.name.endswith(".qmask.json") else p
            if target.exists():  # another process (a second batch) created it first: use theirs
                return cls.open(target, writer=writer)
            raise

    @classmethod
    def _opened(cls, path: Path, writer: str) -> "Project":
        project = cls(path, writer=writer)
        con = project._con()
        try:
            schema.migrate(con, path)
        except BaseException:
            project.close()
            raise
        return project

    def close(self) -> None:
        """Close every connection (the last one out checkpoints the WAL and removes it)."""
        with self._lock:
            for con in self._connections:
                try:
                    con.close()
                except sqlite3.Error:
                    pass
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> "Project":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = schema.connect(self.path)
            con.row_factory = sqlite3.Row
            self._local.con = con
            with self._lock:
                self._connections.append(con)
        return con

    def _read(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._con().execute(sql, tuple(args)).fetchall()
        except sqlite3.DatabaseError as err:
            raise ProjectError(f"Cannot read the project {self.path}: {err}.") from err

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction; waits for other writers (busy timeout), never drops the change silently."""
        con = self._con()
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            raise ProjectError(f"The project {self.path} stayed busy (another QMask is writing it) for "
                               f"{schema.BUSY_TIMEOUT_S:.0f} s; your change was not saved: try again ({err}).") from err
        except sqlite3.DatabaseError as err:
            raise ProjectError(f"Cannot write the project {self.path}: {err}.") from err
        try:
            yield con
            con.execute("COMMIT")
        except BaseException as err:
            try:
                con.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            if isinstance(err, sqlite3.Error):
                raise ProjectError(f"Cannot save to the project {self.path}: {err}. Nothing of this change "
                                   "was written.") from err
            raise

    def checkpoint(self) -> None:
        """Copy the write-ahead journal into the project file (SQLite also does this by itself)."""
        try:
            self._con().execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.DatabaseError as err:
            raise ProjectError(f"Cannot write the project {self.path}: {err}.") from err

    def data_version(self) -> int:
        """Changes when another connection (another process) commits: cheap to poll."""
        return int(self._read("PRAGMA data_version")[0][0])

    # -- paths ----------------------------------------------------------------------------
    @property
    def folder(self) -> Path:
        return self.path.parent

    def rel_path(self, image_path: str | os.PathLike[str]) -> str:
        """The stored form of an image path: relative to the project folder, ``/``-separated."""
        # string functions, not Path objects: a batch calls this several times per image
        p = os.path.normpath(os.path.join(os.getcwd(), os.path.expanduser(os.fspath(image_path))))
        try:
            rel = os.path.relpath(p, os.path.normpath(self.folder))
        except ValueError:  # another drive on Windows
            return Path(p).as_posix()
        return rel if os.sep == "/" else PurePosixPath(*Path(rel).parts).as_posix()

    def abs_path(self, image: ImageRecord | ImageRow | str) -> Path:
        rel = image if isinstance(image, str) else image.path
        p = Path(rel)
        return p if p.is_absolute() else Path(os.path.normpath(self.folder / p))

    # -- reading --------------------------------------------------------------------------
    def count_images(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM images")[0][0])

    def image_ids(self, order: str = "review") -> list[int]:
        """Every image id, in a list order (:data:`ORDERS`): failed images last for "review"."""
        if order not in ORDERS:
            raise InputError(f"Unknown order {order!r}; choose one of {', '.join(ORDERS)}.")
        return [r[0] for r in self._con().execute(f"SELECT id FROM images ORDER BY {ORDERS[order]}")]

    def image_index(self, order: str = "review") -> list[tuple[int, str]]:
        """``(id, stored path)`` of every image in a list order: two columns, no records."""
        if order not in ORDERS:
            raise InputError(f"Unknown order {order!r}; choose one of {', '.join(ORDERS)}.")
        return [(r[0], r[1]) for r in self._con().execute(f"SELECT id, path FROM images ORDER BY {ORDERS[order]}")]

    def image_rows(self, ids: Iterable[int]) -> dict[int, ImageRow]:
        """List summaries of these images (no question records)."""
        out: dict[int, ImageRow] = {}
        ids = list(ids)
        for i in range(0, len(ids), _CHUNK):
            part = ids[i:i + _CHUNK]
            rows = self._read("SELECT id, path, status, error, state, review, question, answer, accepted, seq "
                              f"FROM images WHERE id IN ({','.join('?' * len(part))})", part)
            for r in rows:
                out[r["id"]] = ImageRow(r["id"], r["path"], r["status"], r["error"], r["state"], r["review"],
                                        r["question"], r["answer"], bool(r["accepted"]), r["seq"])
        self.reads["images"] += len(out)
        return out

    def changed_since(self, seq: int) -> tuple[list[ImageRow], int]:
        """Images changed (by anyone) after change number ``seq``, and the newest change number."""
        rows = self._read("SELECT id FROM images WHERE seq > ? ORDER BY seq", (seq,))
        found = self.image_rows(r[0] for r in rows)
        return list(found.values()), max([seq] + [r.seq for r in found.values()])

    def last_seq(self) -> int:
        return int(self._read("SELECT COALESCE(MAX(seq), 0) FROM images")[0][0])

    def _questions(self, image_ids: list[int]) -> dict[int, list[QuestionRecord]]:
        out: dict[int, list[QuestionRecord]] = {i: [] for i in image_ids}
        cols = ", ".join(QUESTION_COLUMNS)
        for i in range(0, len(image_ids), _CHUNK):
            part = image_ids[i:i + _CHUNK]
            for r in self._read(f"SELECT image_id, {cols} FROM questions WHERE image_id IN "
                                f"({','.join('?' * len(part))}) ORDER BY id", part):
                out[r["image_id"]].append(question_from_row(r))
                self.reads["questions"] += 1
        return out

    def get_image(self, image_id: int, *, questions: bool = True) -> ImageRecord | None:
        rows = self._read("SELECT * FROM images WHERE id = ?", (image_id,))
        if not rows:
            return None
        self.reads["images"] += 1
        qs = self._questions([image_id])[image_id] if questions else []
        return image_from_row(rows[0], qs)

    def find_image(self, path: str | os.PathLike[str], *, questions: bool = True) -> ImageRecord | None:
        """The record of an image given its path (absolute, cwd-relative or stored form)."""
        rows = self._read("SELECT id FROM images WHERE path = ?", (str(path),)) if isinstance(path, str) else []
        if not rows:
            rows = self._read("SELECT id FROM images WHERE path = ?", (self.rel_path(path),))
        return self.get_image(rows[0][0], questions=questions) if rows else None

    def iter_images(self, *, questions: bool = True, order: str = "added",
                    where: str = "", args: Iterable[Any] = ()) -> Iterator[ImageRecord]:
        """Every image (optionally filtered by an SQL condition on ``images``), a chunk at a time:
        memory does not grow with the project."""
        clause = f"WHERE {where}" if where else ""
        ids = [r[0] for r in self._read(f"SELECT id FROM images {clause} ORDER BY {ORDERS[order]}", args)]
        for i in range(0, len(ids), _CHUNK):
            part = ids[i:i + _CHUNK]
            rows = {r["id"]: r for r in self._read(f"SELECT * FROM images WHERE id IN ({','.join('?' * len(part))})", part)}
            qs = self._questions(part) if questions else {}
            for image_id in part:
                if image_id in rows:
                    self.reads["images"] += 1
                    yield image_from_row(rows[image_id], qs.get(image_id, []))

    def known_questions(self) -> set[tuple[str, str]]:
        """``(image path, question key)`` of every question of every image processed without error."""
        return {(r[0], r[1]) for r in self._con().execute(
            "SELECT i.path, q.key FROM questions q JOIN images i ON i.id = q.image_id WHERE i.status = 'ok'")}

    def question_summaries(self) -> dict[int, list[sqlite3.Row]]:
        """Per image id, its questions' small columns (key, question, label, accepted, mask_area,
        mask_h, mask_w), in record order: what an export plans with, without reading records."""
        out: dict[int, list[sqlite3.Row]] = {}
        for r in self._con().execute("SELECT image_id, key, question, label, accepted, mask_area, mask_h, mask_w "
                                     "FROM questions ORDER BY image_id, id"):
            out.setdefault(r["image_id"], []).append(r)
        return out

    @property
    def categories(self) -> list[Category]:
        return [category_from_row(r) for r in self._read("SELECT * FROM categories ORDER BY id")]

    def category(self, name: str | None) -> Category | None:
        rows = self._read("SELECT * FROM categories WHERE name = ?", (name,))
        return category_from_row(rows[0]) if rows else None

    @property
    def meta(self) -> dict[str, str]:
        return {r["key"]: r["value"] for r in self._read("SELECT key, value FROM meta")}

    def count_accepted(self, ids: list[int] | None = None) -> int:
        """Images with an accepted mask: all of them, or among ``ids``."""
        if ids is None or len(ids) >= self.count_images():
            return int(self._read("SELECT COUNT(*) FROM images WHERE accepted")[0][0])
        total = 0
        for i in range(0, len(ids), _CHUNK):
            part = ids[i:i + _CHUNK]
            total += self._read(f"SELECT COUNT(*) FROM images WHERE accepted AND id IN ({','.join('?' * len(part))})",
                                part)[0][0]
        return int(total)

    def summary(self) -> dict[str, int]:
        r = self._read("SELECT COUNT(*), SUM(status = 'ok'), SUM(status = 'failed'), SUM(status = 'pending') "
                       "FROM images")[0]
        q = self._read("SELECT COUNT(*), SUM(accepted) FROM questions")[0]
        return {"images": r[0], "ok": r[1] or 0, "failed": r[2] or 0, "pending": r[3] or 0,
                "questions": q[0], "accepted": q[1] or 0}

    def missing_images(self) -> list[ImageRecord]:
        """Records whose file is not where the project says (reads every image row, not their questions)."""
        return [img for img in self.iter_images(questions=False) if not self.abs_path(img).is_file()]

    def edits(self, image_id: int | None = None) -> list[Edit]:
        rows = self._read("SELECT * FROM edits" + (" WHERE image_id = ?" if image_id is not None else "")
                          + " ORDER BY id", () if image_id is None else (image_id,))
        return [Edit(r["id"], r["time"], r["image_id"], r["question_key"], r["source"], r["action"],
                     r["writer"], json.loads(r["detail"] or "{}")) for r in rows]

    # -- writing (each method one transaction) ---------------------------------------------
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

        ``sizes`` and ``sha256`` are keyed by the stored (relative) path."""
        rels = [self.rel_path(p) for p in paths]
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
        w, h = chain.image_size
        img = self.find_image(image_path, questions=False) or self.add_image(image_path)
        img.mark_ok(w, h)
        img.sha256 = sha256 or img.sha256
        record = record_from_chain(chain, label=label)
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
        """Add images with their (new) question records, a chunk of images per transaction.

        Categories first (their ``id`` is kept when free). An image already in the project gets
        the new size, status and hash; a question it already has is kept as it is.
        """
        with self._write() as con:
            for c in categories:
                self._ensure_category(con, c.name, c.id or None)
        for i in range(0, len(images), _CHUNK // 2):
            with self._write() as con:
                for img in images[i:i + _CHUNK // 2]:
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
        name = str(name).strip()
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
        self.own_seq[int(image_id or 0)] = seq

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


def _publish(tmp: Path, dest: Path, overwrite: bool) -> None:
    """Move a finished new project into place; without ``overwrite`` never replace a file that
    appeared meanwhile (two ``qmask batch`` creating one project at once: the second opens the
    first's, it does not replace it). Raises FileExistsError then."""
    if overwrite:
        os.replace(tmp, dest)
        return
    try:
        os.link(tmp, dest)  # atomic, and fails if dest exists
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check, then rename
        if dest.exists():
            raise FileExistsError(dest) from None
        os.replace(tmp, dest)
        return
    tmp.unlink()


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
    from .codec import point_to_json

    return {"points": [point_to_json(p) for p in record.points], "mask": record.mask_rle,
            "mask_source": record.mask_source, "label": record.label, "accepted": record.accepted,
            "alpha": record.alpha, "answer": record.answer}
