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
from typing import Any, Iterable, Iterator

from ..errors import InputError, ProjectError
from . import schema
from .objects import ObjectRecord
from .records import Category, Edit, ImageRecord, ImageRow
from .rows import RUN_COLUMNS, category_from_row, edit_from_row, image_from_row, object_from_row, run_from_row
from .runs import QuestionRun
from .schema import build_new
from .tables import OBJECT_SELECT
from .writes import ORDERS, ProjectWrites, _storable

__all__ = ["Project", "ImageRow", "Edit", "PROJECT_SUFFIX", "ORDERS"]

PROJECT_SUFFIX = ".qmask"
_CHUNK = 500


class Project(ProjectWrites):
    """A project file; see the module docstring. Open with :meth:`open`, :meth:`create` or
    :meth:`open_or_create` (which also take a version-1 ``.qmask.json``)."""

    def __init__(self, path: Path, *, writer: str = "qmask", read_only: bool = False) -> None:
        self.path = Path(path)
        self._db = self.path  # the file SQLite opens: the project's, or an updated copy (_updated_copy)
        self._scratch: Path | None = None  # a temporary folder removed on close
        self.read_only = read_only  # opened to read only (an export): every write is refused
        self._verified: str | None = None  # "ok", or why the file is damaged (see verify)
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
        if not os.access(p.parent, os.W_OK | os.X_OK):
            raise ProjectError(f"Cannot create the project {p}: the folder {p.parent} is not writable "
                               "(permission denied). Choose another folder.")
        try:
            build_new(p, lambda con: con.execute("INSERT INTO meta VALUES ('created', ?)", (repr(time.time()),)),
                      overwrite=overwrite)
        except FileExistsError:  # another process created it meanwhile
            raise ProjectError(f"{p} already exists; open it instead, or choose another name.") from None
        except (OSError, sqlite3.Error) as err:
            raise ProjectError(f"Cannot create the project {p}: {schema.reason(err)}. Nothing was written.") from err
        return cls._opened(p, writer)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, writer: str = "qmask", read_only: bool = False) -> "Project":
        """Open a project; a version-1 ``.qmask.json`` is converted once into ``NAME.qmask`` beside it.

        ``read_only``: for reading only (an export): nothing is written, not even in a damaged
        or a read-only folder's project, and every write method raises ProjectError."""
        p = Path(path).expanduser().absolute()
        if p.name.endswith(".json"):
            from .interchange import convert_json_project

            return convert_json_project(p, writer=writer, read_only=read_only)
        schema.check_file(p)
        if read_only and schema.header_version(p) < schema.SCHEMA_VERSION:
            return cls._updated_copy(p, writer)
        return cls._opened(p, writer, read_only)

    @classmethod
    def _updated_copy(cls, path: Path, writer: str) -> "Project":
        """A project of an older schema opened to read only: its file is left as it is, and read
        from an updated copy in a temporary folder (removed when the project is closed)."""
        import shutil
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="qmask-read-"))
        copy = folder / path.name
        try:
            shutil.copyfile(path, copy)
            for suffix in ("-wal", "-shm"):
                if Path(f"{path}{suffix}").exists():
                    shutil.copyfile(f"{path}{suffix}", f"{copy}{suffix}")
            cls._opened(copy, writer).close()
            project = cls(path, writer=writer, read_only=True)
            project._db, project._scratch = copy, folder
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        project.notice = (f"{path.name} has an older project schema: it was read from an updated copy and left as "
                          "it was (open it once in the app or with qmask batch to update it for good).")
        return project

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
    def _opened(cls, path: Path, writer: str, read_only: bool = False) -> "Project":
        project = cls(path, writer=writer, read_only=read_only)
        try:
            schema.migrate(project._con(), path, read_only=read_only)
        except BaseException:
            project.close()
            raise
        return project

    def verify(self) -> None:
        """SQLite's quick check of the whole file, once (:func:`schema.check_integrity`): every
        write runs it first, so a damaged project is refused before anything is written to it
        (the app starts it in the background when it opens a project). Raises ProjectError."""
        if self._verified is None:
            try:
                schema.check_integrity(self._con(), self.path)
                self._verified = "ok"
            except ProjectError as err:
                self._verified = str(err)
        if self._verified != "ok":
            raise ProjectError(self._verified)

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
        if self._scratch is not None:
            import shutil

            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def __enter__(self) -> "Project":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = schema.connect(self._db, read_only=self.read_only)
            con.row_factory = sqlite3.Row
            self._local.con = con
            with self._lock:
                self._connections.append(con)
        return con

    def _read(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._con().execute(sql, tuple(args)).fetchall()
        except sqlite3.DatabaseError as err:
            raise schema.read_error(err, self.path) from err

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction; waits for other writers (busy timeout), never drops the change silently."""
        if self.read_only:
            raise ProjectError(f"The project {self.path} was opened to read only; nothing was written.")
        self.verify()
        con = self._con()
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            raise ProjectError(f"The project {self.path} stayed busy (another QMask is writing it) for "
                               f"{schema.BUSY_TIMEOUT_S:.0f} s; your change was not saved: try again ({err}).") from err
        except sqlite3.DatabaseError as err:
            raise ProjectError(f"Cannot write the project {self.path}: {schema.reason(err)}.") from err
        try:
            yield con
            con.execute("COMMIT")
        except BaseException as err:
            try:
                con.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            if isinstance(err, sqlite3.Error):
                raise ProjectError(f"Cannot save to the project {self.path}: {schema.reason(err)}. Nothing of "
                                   "this change was written.") from err
            raise

    def checkpoint(self) -> None:
        """Copy the write-ahead journal into the project file (SQLite also does this by itself)."""
        if self.read_only:
            return
        try:
            self._con().execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.DatabaseError as err:
            raise ProjectError(f"Cannot write the project {self.path}: {schema.reason(err)}.") from err

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
        return [r[0] for r in self._read(f"SELECT id FROM images ORDER BY {ORDERS[order]}")]

    def image_index(self, order: str = "review") -> list[tuple[int, str]]:
        """``(id, stored path)`` of every image in a list order: two columns, no records."""
        if order not in ORDERS:
            raise InputError(f"Unknown order {order!r}; choose one of {', '.join(ORDERS)}.")
        return [(r[0], r[1]) for r in self._read(f"SELECT id, path FROM images ORDER BY {ORDERS[order]}")]

    def image_paths(self, ids: Iterable[int]) -> dict[int, str]:
        """Stored paths of these images (``reads["paths"]`` counts them)."""
        out: dict[int, str] = {}
        ids = list(ids)
        for i in range(0, len(ids), _CHUNK):
            part = ids[i:i + _CHUNK]
            out.update((r[0], r[1]) for r in self._read(f"SELECT id, path FROM images WHERE id IN "
                                                        f"({','.join('?' * len(part))})", part))
        self.reads["paths"] = self.reads.get("paths", 0) + len(out)
        return out

    def image_id(self, path: str | os.PathLike[str]) -> int | None:
        """The id of an image given its path (absolute, cwd-relative or stored form), or None."""
        stored = isinstance(path, str) and _storable(path)
        rows = self._read("SELECT id FROM images WHERE path = ?", (path,)) if stored else []
        if not rows and _storable(self.rel_path(path)):  # a name that is not UTF-8 is in no project
            rows = self._read("SELECT id FROM images WHERE path = ?", (self.rel_path(path),))
        return int(rows[0][0]) if rows else None

    def image_index_of(self, paths: Iterable[str | os.PathLike[str]]) -> list[tuple[int, str] | None]:
        """``(id, stored path)`` of each of these image paths (absolute or cwd-relative), None where
        the project has no such image: a query per chunk, not per path."""
        rels = [self.rel_path(p) for p in paths]
        found: dict[str, int] = {}
        wanted = list(dict.fromkeys(r for r in rels if _storable(r)))
        for i in range(0, len(wanted), _CHUNK):
            part = wanted[i:i + _CHUNK]
            found.update((r[1], r[0]) for r in self._read(f"SELECT id, path FROM images WHERE path IN "
                                                          f"({','.join('?' * len(part))})", part))
        return [(found[r], r) if r in found else None for r in rels]

    def holds_images_under(self, folder: str | os.PathLike[str]) -> bool:
        """Whether an image of the project lies in ``folder`` or below it (absolute or cwd-relative)."""
        prefix = self.rel_path(folder).rstrip("/") + "/"
        if not _storable(prefix):
            return False
        return bool(self._read("SELECT 1 FROM images WHERE substr(path, 1, ?) = ? LIMIT 1", (len(prefix), prefix)))

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
        stored = isinstance(path, str) and _storable(path)
        rows = self._read("SELECT id FROM images WHERE path = ?", (path,)) if stored else []
        if not rows and _storable(self.rel_path(path)):  # a name that is not UTF-8 is in no project
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
        return {(r[0], r[1]) for r in self._read(
            "SELECT i.path, q.key FROM runs q JOIN images i ON i.id = q.image_id WHERE i.status = 'ok'")}

    def object_summaries(self) -> dict[int, list[sqlite3.Row]]:
        """Per image id, its objects' small columns (id, uid, question, category, accepted,
        mask_area, mask_h, mask_w), in drawing order: what an export plans with, without reading
        objects."""
        out: dict[int, list[sqlite3.Row]] = {}
        try:
            for r in self._con().execute("SELECT o.image_id, o.id, o.uid, o.question, c.name AS category, "
                                         "o.accepted, o.mask_area, o.mask_h, o.mask_w FROM objects o LEFT JOIN "
                                         "categories c ON c.id = o.category_id ORDER BY o.image_id, o.draw_order, o.id"):
                out.setdefault(r["image_id"], []).append(r)
        except sqlite3.DatabaseError as err:
            raise schema.read_error(err, self.path) from err
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
