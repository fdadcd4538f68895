"""A project: one SQLite file (``NAME.qmask``), written change by change.

Quick use (the app, ``qmask batch`` and ``qmask import`` all go through this)::

    project = Project.open_or_create("work/birds.qmask")   # a v1 .qmask.json is converted once
    image = project.add_image("work/images/a.jpg", width=640, height=480)  # path -> relative
    project.record_chain(image.path, chain, category="bird")  # its run and proposals, one transaction
    obj.set_mask(edited, source="user"); project.put_object(image, obj, source="user")

Every write method is one short transaction: nothing is written in bulk later, there is no
``save``. Reads return copies (:mod:`engine.project.records`); the image list reads
:class:`ImageRow` summaries (no objects) and an image's objects and runs load when asked.
Several processes may write one project at once (see :mod:`engine.project.schema`): each change
lands; when two change the same record the later wins and the edit log keeps both.

One :class:`Project` may be used from several threads: each thread gets its own connection.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Iterator

from ..errors import InputError, ProjectError
from . import schema
from .objects import ObjectRecord
from .records import Category, Edit, ImageRecord, ImageRow
from .rows import RUN_COLUMNS, category_from_row, edit_from_row, image_from_row, object_from_row, run_from_row
from .runs import QuestionRun
from .tables import OBJECT_SELECT
from .writes import ORDERS, ProjectWrites

__all__ = ["Project", "ImageRow", "Edit", "PROJECT_SUFFIX", "ORDERS"]

PROJECT_SUFFIX = ".qmask"
_CHUNK = 500


class Project(ProjectWrites):
    """A project file; see the module docstring. Open with :meth:`open`, :meth:`create` or
    :meth:`open_or_create` (which also take a version-1 ``.qmask.json``)."""

    def __init__(self, path: Path, *, writer: str = "qmask") -> None:
        self.path = Path(path)
        self.writer = f"{writer}@{socket.gethostname()}:{os.getpid()}"
        self.notice = ""  # a message for the user about how the project was opened (e.g. converted)
        self.reads = {"images": 0, "objects": 0, "runs": 0}  # records read (tests count what the app reads)
        # Change numbers of this Project's own writes, to tell them from other processes' writes.
        # A set, not the last number per image: a write still in its transaction has the next
        # number already, and the one before, committed, must still read as ours.
        self._own_seqs: set[int] = set()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def is_own_write(self, seq: int) -> bool:
        """The change number ``seq`` is one of this Project's own writes."""
        return seq in self._own_seqs

    def forget_own_writes(self, up_to: int) -> None:
        """Own change numbers up to ``up_to`` will not be asked about again (a reader has seen them)."""
        with self._lock:
            self._own_seqs = {s for s in self._own_seqs if s > up_to}

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
        try:
            build_new(p, lambda con: con.execute("INSERT INTO meta VALUES ('created', ?)", (repr(time.time()),)),
                      overwrite=overwrite)
        except FileExistsError:  # another process created it meanwhile
            raise ProjectError(f"{p} already exists; open it instead, or choose another name.") from None
        except (OSError, sqlite3.Error) as err:
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
        """List summaries of these images (no objects, no runs)."""
        out: dict[int, ImageRow] = {}
        ids = list(ids)
        for i in range(0, len(ids), _CHUNK):
            part = ids[i:i + _CHUNK]
            rows = self._read("SELECT id, path, status, error, state, review, question, answer, accepted, seq, "
                              f"objects, accepted_objects FROM images WHERE id IN ({','.join('?' * len(part))})", part)
            for r in rows:
                out[r["id"]] = ImageRow(r["id"], r["path"], r["status"], r["error"], r["state"], r["review"],
                                        r["question"], r["answer"], bool(r["accepted"]), r["seq"], r["objects"],
                                        r["accepted_objects"])
        self.reads["images"] += len(out)
        return out

    def changed_since(self, seq: int) -> tuple[list[ImageRow], int]:
        """Images changed (by anyone) after change number ``seq``, and the newest change number."""
        rows = self._read("SELECT id FROM images WHERE seq > ? ORDER BY seq", (seq,))
        found = self.image_rows(r[0] for r in rows)
        return list(found.values()), max([seq] + [r.seq for r in found.values()])

    def last_seq(self) -> int:
        return int(self._read("SELECT COALESCE(MAX(seq), 0) FROM images")[0][0])

    def _objects(self, image_ids: list[int]) -> dict[int, list[ObjectRecord]]:
        out: dict[int, list[ObjectRecord]] = {i: [] for i in image_ids}
        for i in range(0, len(image_ids), _CHUNK):
            part = image_ids[i:i + _CHUNK]
            for r in self._read(f"{OBJECT_SELECT} WHERE o.image_id IN ({','.join('?' * len(part))}) "
                                "ORDER BY o.image_id, o.draw_order, o.id", part):
                out[r["image_id"]].append(object_from_row(r))
                self.reads["objects"] += 1
        return out

    def _runs(self, image_ids: list[int]) -> dict[int, list[QuestionRun]]:
        out: dict[int, list[QuestionRun]] = {i: [] for i in image_ids}
        cols = ", ".join(RUN_COLUMNS)
        for i in range(0, len(image_ids), _CHUNK):
            part = image_ids[i:i + _CHUNK]
            for r in self._read(f"SELECT image_id, {cols} FROM runs WHERE image_id IN "
                                f"({','.join('?' * len(part))}) ORDER BY id", part):
                out[r["image_id"]].append(run_from_row(r))
                self.reads["runs"] += 1
        return out

    def get_image(self, image_id: int, *, records: bool = True) -> ImageRecord | None:
        """An image with its objects and runs (``records`` False: its own fields only)."""
        rows = self._read("SELECT * FROM images WHERE id = ?", (image_id,))
        if not rows:
            return None
        self.reads["images"] += 1
        if not records:
            return image_from_row(rows[0])
        return image_from_row(rows[0], self._objects([image_id])[image_id], self._runs([image_id])[image_id])

    def find_image(self, path: str | os.PathLike[str], *, records: bool = True) -> ImageRecord | None:
        """The record of an image given its path (absolute, cwd-relative or stored form)."""
        rows = self._read("SELECT id FROM images WHERE path = ?", (str(path),)) if isinstance(path, str) else []
        if not rows:
            rows = self._read("SELECT id FROM images WHERE path = ?", (self.rel_path(path),))
        return self.get_image(rows[0][0], records=records) if rows else None

    def iter_images(self, *, records: bool = True, order: str = "added",
                    where: str = "", args: Iterable[Any] = ()) -> Iterator[ImageRecord]:
        """Every image (optionally filtered by an SQL condition on ``images``), a chunk at a time:
        memory does not grow with the project."""
        clause = f"WHERE {where}" if where else ""
        ids = [r[0] for r in self._read(f"SELECT id FROM images {clause} ORDER BY {ORDERS[order]}", args)]
        for i in range(0, len(ids), _CHUNK):
            part = ids[i:i + _CHUNK]
            rows = {r["id"]: r for r in self._read(f"SELECT * FROM images WHERE id IN ({','.join('?' * len(part))})", part)}
            objs = self._objects(part) if records else {}
            runs = self._runs(part) if records else {}
            for image_id in part:
                if image_id in rows:
                    self.reads["images"] += 1
                    yield image_from_row(rows[image_id], objs.get(image_id, []), runs.get(image_id, []))

    def known_questions(self) -> set[tuple[str, str]]:
        """``(image path, question key)`` of every run of every image processed without error."""
        return {(r[0], r[1]) for r in self._con().execute(
            "SELECT i.path, q.key FROM runs q JOIN images i ON i.id = q.image_id WHERE i.status = 'ok'")}

    def object_summaries(self) -> dict[int, list[sqlite3.Row]]:
        """Per image id, its objects' small columns (id, uid, question, category, accepted,
        mask_area, mask_h, mask_w), in drawing order: what an export plans with, without reading
        objects."""
        out: dict[int, list[sqlite3.Row]] = {}
        for r in self._con().execute("SELECT o.image_id, o.id, o.uid, o.question, c.name AS category, o.accepted, "
                                     "o.mask_area, o.mask_h, o.mask_w FROM objects o LEFT JOIN categories c "
                                     "ON c.id = o.category_id ORDER BY o.image_id, o.draw_order, o.id"):
            out.setdefault(r["image_id"], []).append(r)
        return out

    def review_queue(self, limit: int = 100) -> list[tuple[int, str, float]]:
        """The objects most in need of a person, ``(image id, object uid, need)``, highest first
        (accepted objects need none)."""
        return [(r[0], r[1], float(r[2])) for r in self._read(
            "SELECT image_id, uid, review FROM objects WHERE NOT accepted ORDER BY review DESC, id LIMIT ?",
            (int(limit),))]

    @property
    def categories(self) -> list[Category]:
        return [category_from_row(r) for r in self._read("SELECT * FROM categories ORDER BY id")]

    def category_counts(self) -> dict[int, int]:
        """Per category id, how many objects have it."""
        return {int(r[0]): int(r[1]) for r in self._read(
            "SELECT category_id, COUNT(*) FROM objects WHERE category_id IS NOT NULL GROUP BY category_id")}

    def category(self, name: str | None) -> Category | None:
        rows = self._read("SELECT * FROM categories WHERE name = ?", (name,))
        return category_from_row(rows[0]) if rows else None

    @property
    def meta(self) -> dict[str, str]:
        return {r["key"]: r["value"] for r in self._read("SELECT key, value FROM meta")}

    def count_accepted(self, ids: list[int] | None = None) -> int:
        """Images whose every object is accepted (done): all of them, or among ``ids``."""
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
        o = self._read("SELECT COUNT(*), SUM(accepted) FROM objects")[0]
        q = self._read("SELECT COUNT(*) FROM runs")[0]
        return {"images": r[0], "ok": r[1] or 0, "failed": r[2] or 0, "pending": r[3] or 0,
                "objects": o[0], "accepted": o[1] or 0, "questions": q[0]}

    def missing_images(self) -> list[ImageRecord]:
        """Records whose file is not where the project says (reads every image row, not their objects)."""
        return [img for img in self.iter_images(records=False) if not self.abs_path(img).is_file()]

    def edits_for(self, image_ids: list[int]) -> dict[int, list[Edit]]:
        """The edit logs of these images, a chunk per query (exports read them alongside records)."""
        out: dict[int, list[Edit]] = {}
        for i in range(0, len(image_ids), _CHUNK):
            part = image_ids[i:i + _CHUNK]
            for r in self._read(f"SELECT * FROM edits WHERE image_id IN ({','.join('?' * len(part))}) ORDER BY id",
                                part):
                out.setdefault(r["image_id"], []).append(edit_from_row(r))
        return out

    def edits(self, image_id: int | None = None) -> list[Edit]:
        rows = self._read("SELECT * FROM edits" + (" WHERE image_id = ?" if image_id is not None else "")
                          + " ORDER BY id", () if image_id is None else (image_id,))
        return [edit_from_row(r) for r in rows]


def build_new(dest: Path, fill: Callable[[sqlite3.Connection], Any], *, overwrite: bool = False) -> None:
    """Lay out a new project under a temporary name beside ``dest``, run ``fill`` in one
    transaction, and move it into place: a project appears whole or not at all, and a failure
    leaves nothing behind. Raises FileExistsError (see :func:`_publish`), OSError, sqlite3.Error."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.new")
    try:
        con = schema.connect(tmp, create=True)
        try:
            schema.initialise(con)
            con.execute("BEGIN IMMEDIATE")
            fill(con)
            con.execute("COMMIT")
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            con.close()
        _publish(tmp, dest, overwrite)
    except BaseException:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)
        raise


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
