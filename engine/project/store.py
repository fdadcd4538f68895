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
import sqlite3
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Iterator

from ..errors import InputError, ProjectError
from . import schema
from .database import CHUNK, ProjectDatabase
from .from_chain import proposals_from_chain
from .objects import ObjectRecord
from .records import Category, Edit, ImageRecord, ImageRow, RelocateReport, displayed_size
from .rows import RUN_COLUMNS, category_from_row, edit_from_row, image_from_row, object_from_row, run_from_row
from .runs import QuestionRun
from .tables import OBJECT_SELECT
from .writes import NOT_UTF8, ORDERS, ProjectWriter, Source, _storable, shown_path

__all__ = ["Project", "ImageRow", "Edit", "PROJECT_SUFFIX", "ORDERS"]

PROJECT_SUFFIX = ".qmask"


class Project:
    """A project file; see the module docstring. Open with :meth:`open`, :meth:`create` or
    :meth:`open_or_create` (which also take a version-1 ``.qmask.json``).

    It reads through its :class:`~engine.project.database.ProjectDatabase` and writes through a
    :class:`~engine.project.writes.ProjectWriter` on it; the methods that take image files
    (``add_image``, ``record_chain``, ...) find or add their records here first.
    """

    def __init__(self, db: ProjectDatabase) -> None:
        self._db = db
        self._writes = ProjectWriter(db)
        self.path = db.path
        self.read_only = db.read_only  # opened to read only (an export): every write is refused
        self.writer = db.writer  # this process, as the edit log names it
        self.notice = db.notice  # a message for the user about how the project was opened (e.g. converted)
        self.reads = {"images": 0, "objects": 0, "runs": 0}  # records read (tests count what the app reads)

    # -- opening and the file -------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike[str], *, overwrite: bool = False, writer: str = "qmask") -> "Project":
        """A new, empty project file."""
        return cls(ProjectDatabase.create(Path(path), overwrite=overwrite, writer=writer))

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, writer: str = "qmask", read_only: bool = False) -> "Project":
        """Open a project; a version-1 ``.qmask.json`` is converted once into ``NAME.qmask`` beside it.

        ``read_only``: for reading only (an export): nothing is written, not even in a damaged
        or a read-only folder's project, and every write method raises ProjectError."""
        p = Path(path).expanduser().absolute()
        if p.name.endswith(".json"):
            from .interchange import convert_json_project

            return convert_json_project(p, writer=writer, read_only=read_only)
        return cls(ProjectDatabase.open(p, writer=writer, read_only=read_only))

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

    def verify(self) -> None:
        """SQLite's quick check of the whole file, once (every write runs it first; the app, in
        the background when it opens a project). Raises ProjectError."""
        self._db.verify()

    def close(self) -> None:
        """Close every connection (the last one out checkpoints the WAL and removes it)."""
        self._db.close()

    def __enter__(self) -> "Project":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def checkpoint(self) -> None:
        """Copy the write-ahead journal into the project file (SQLite also does this by itself)."""
        self._db.checkpoint()

    def data_version(self) -> int:
        """Changes when another connection (another process) commits: cheap to poll."""
        return int(self._read("PRAGMA data_version")[0][0])

    def is_own_write(self, seq: int) -> bool:
        """The change number ``seq`` is one of this Project's own writes."""
        return self._db.is_own_write(seq)

    def forget_own_writes(self, up_to: int) -> None:
        """Own change numbers up to ``up_to`` will not be asked about again (a reader has seen them)."""
        self._db.forget_own_writes(up_to)

    def _read(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return self._db.read(sql, args)

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
        out = {r[0]: r[1] for r in self._db.read_in("SELECT id, path FROM images WHERE id", list(ids))}
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
        found.update((r[1], r[0]) for r in self._db.read_in("SELECT id, path FROM images WHERE path", wanted))
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
        for r in self._db.read_in("SELECT id, path, status, error, state, review, question, answer, accepted, seq, "
                                  "objects, accepted_objects FROM images WHERE id", list(ids)):
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
        for r in self._db.read_in(f"{OBJECT_SELECT} WHERE o.image_id", image_ids,
                                  " ORDER BY o.image_id, o.draw_order, o.id"):
            out[r["image_id"]].append(object_from_row(r))
            self.reads["objects"] += 1
        return out

    def _runs(self, image_ids: list[int]) -> dict[int, list[QuestionRun]]:
        out: dict[int, list[QuestionRun]] = {i: [] for i in image_ids}
        for r in self._db.read_in(f"SELECT image_id, {', '.join(RUN_COLUMNS)} FROM runs WHERE image_id", image_ids,
                                  " ORDER BY id"):
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
        for i in range(0, len(ids), CHUNK):
            part = ids[i:i + CHUNK]
            rows = {r["id"]: r for r in self._db.read_in("SELECT * FROM images WHERE id", part)}
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
            for r in self._db.con().execute("SELECT o.image_id, o.id, o.uid, o.question, c.name AS category, "
                                            "o.accepted, o.mask_area, o.mask_h, o.mask_w FROM objects o LEFT JOIN "
                                            "categories c ON c.id = o.category_id "
                                            "ORDER BY o.image_id, o.draw_order, o.id"):
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
        return sum(int(r[0]) for r in self._db.read_in("SELECT COUNT(*) FROM images WHERE accepted AND id", ids))

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
        for r in self._db.read_in("SELECT * FROM edits WHERE image_id", image_ids, " ORDER BY id"):
            out.setdefault(r["image_id"], []).append(edit_from_row(r))
        return out

    def edits(self, image_id: int | None = None) -> list[Edit]:
        rows = self._read("SELECT * FROM edits" + (" WHERE image_id = ?" if image_id is not None else "")
                          + " ORDER BY id", () if image_id is None else (image_id,))
        return [edit_from_row(r) for r in rows]

    # -- writing (each method one transaction: ProjectWriter's, on records) ------------------
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
        return self._writes.add_images(rels, sizes=sizes, sha256=sha256)

    def unstorable(self, paths: Iterable[str | os.PathLike[str]]) -> list[tuple[str, str]]:
        """``(path as shown, reason)`` of the paths a project cannot store (a name that is not UTF-8)."""
        return [(shown_path(p), NOT_UTF8) for p in paths if not _storable(self.rel_path(p))]

    def update_image(self, img: ImageRecord) -> None:
        """Write an image's own fields (size, hash, status, error; and path after a relocation)."""
        self._writes.update_image(img)

    def put_changes(self, img: ImageRecord, *, objects: Iterable[ObjectRecord] = (),
                    removed: Iterable[str] = (), runs: Iterable[QuestionRun] = (), source: Source = "user",
                    action: str = "edit") -> dict[str, tuple[float, list[str]]]:
        """Runs, objects and removals of one image in one transaction (:meth:`ProjectWriter.put_changes`)."""
        return self._writes.put_changes(img, objects=objects, removed=removed, runs=runs, source=source,
                                        action=action)

    def put_object(self, img: ImageRecord, obj: ObjectRecord, *, source: Source = "user",
                   action: str = "edit") -> ObjectRecord:
        """Insert or update one object of this image, with an edit-log entry (one transaction); its
        review need and reasons are filled in."""
        self.put_changes(img, objects=[obj], source=source, action=action)
        return obj

    def remove_objects(self, img: ImageRecord, uids: Iterable[str], *, source: Source = "user") -> None:
        self.put_changes(img, removed=list(uids), source=source, action="remove")

    def put_run(self, img: ImageRecord, run: QuestionRun, *, source: Source = "chain", action: str = "run") -> None:
        """Insert or replace the image's run of ``run.question`` (one transaction)."""
        self.put_changes(img, runs=[run], source=source, action=action)

    def remove_run(self, img: ImageRecord, question: str, *, source: Source = "user") -> bool:
        """Drop the run of ``question`` (the objects it proposed stay: they are the image's)."""
        return self._writes.remove_run(img, question, source=source)

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
        img = self.find_image(image_path) or self.add_image(image_path)
        return self._writes.record_run(img, run, objects, size, sha256=sha256)

    def clear_annotations(self, img: ImageRecord, *, source: Source = "chain", reason: str = "") -> None:
        """Drop every object and run of an image (its file changed: the masks no longer fit)."""
        self._writes.clear_annotations(img, source=source, reason=reason)

    def import_records(self, images: list[ImageRecord], categories: Iterable[Category] = ()) -> None:
        """Add images with their new objects and runs in one transaction (:meth:`ProjectWriter.import_records`)."""
        self._writes.import_records(images, categories)

    def move_images(self, moves: list[tuple[int, str]]) -> None:
        """New stored paths for images (id, relative path), in one transaction (a relocation)."""
        self._writes.move_images(moves)

    def relocate(self, new_folder: str | os.PathLike[str], **options: Any) -> RelocateReport:
        """See :func:`engine.project.relocate.relocate`."""
        from .relocate import relocate

        return relocate(self, new_folder, **options)

    def ensure_category(self, name: str, color: tuple[int, int, int] | None = None) -> Category:
        """The category called ``name``, created with the next free id if new."""
        return self._writes.ensure_category(name, color)

    def set_classes(self, names: Iterable[str]) -> list[Category]:
        """Add these classes to the class list, in order (those it has keep their ids and colours)."""
        return self._writes.set_classes(names)

    def rename_category(self, old: str, new: str) -> Category:
        """Rename a class; its objects follow (they refer to it by id). Refuses a name in use."""
        return self._writes.rename_category(old, new)

    def set_category_color(self, name: str, color: tuple[int, int, int] | None) -> None:
        self._writes.set_category_color(name, color)

    def set_meta(self, key: str, value: str) -> None:
        self._writes.set_meta(key, value)
