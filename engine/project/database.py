"""A project's SQLite file as :class:`~engine.project.store.Project` uses it: created or opened
(an older schema updated), one connection per thread, short write transactions, and the change
numbers of its own writes (so a reader tells them from other processes' writes).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..errors import ProjectError
from . import schema
from .schema import build_new
from .tables import next_seq

__all__ = ["ProjectDatabase", "CHUNK"]

CHUNK = 500  # ids per statement, and images per transaction of a bulk add


class ProjectDatabase:
    """The connections to one project file; thread-safe (each thread gets its own connection).

    ``path``: the project's file (named in messages); ``file``: the file SQLite opens, the
    project's or an updated copy of an older one opened to read only (in ``scratch``, a
    temporary folder removed on close). ``writer`` names this process in the edit log.
    """

    def __init__(self, path: Path, *, writer: str = "qmask", read_only: bool = False, file: Path | None = None,
                 scratch: Path | None = None) -> None:
        self.path = Path(path)
        self.file = self.path if file is None else Path(file)
        self.read_only = read_only  # opened to read only (an export): every write is refused
        self.writer = f"{writer}@{socket.gethostname()}:{os.getpid()}"
        self.notice = ""  # a message for the user about how the file was opened (e.g. updated)
        self._scratch = scratch
        self._verified: str | None = None  # "ok", or why the file is damaged (see verify)
        # Change numbers of this process's own writes, to tell them from other processes' writes.
        # A set, not the last number per image: a write still in its transaction has the next
        # number already, and the one before, committed, must still read as ours.
        self._own_seqs: set[int] = set()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    # -- opening --------------------------------------------------------------------------
    @classmethod
    def create(cls, path: Path, *, overwrite: bool = False, writer: str = "qmask") -> "ProjectDatabase":
        """A new, empty project file (``NAME.qmask.json`` is taken as ``NAME.qmask``)."""
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
    def open(cls, path: Path, *, writer: str = "qmask", read_only: bool = False) -> "ProjectDatabase":
        """An existing project file, its schema updated; ``read_only``: nothing is written, not
        even the update (an older file is read from an updated copy)."""
        schema.check_file(path)
        if read_only and schema.header_version(path) < schema.SCHEMA_VERSION:
            return cls._updated_copy(path, writer)
        return cls._opened(path, writer, read_only)

    @classmethod
    def _updated_copy(cls, path: Path, writer: str) -> "ProjectDatabase":
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
            db = cls(path, writer=writer, read_only=True, file=copy, scratch=folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        db.notice = (f"{path.name} has an older project schema: it was read from an updated copy and left as "
                     "it was (open it once in the app or with qmask batch to update it for good).")
        return db

    @classmethod
    def _opened(cls, path: Path, writer: str, read_only: bool = False) -> "ProjectDatabase":
        db = cls(path, writer=writer, read_only=read_only)
        try:
            schema.migrate(db.con(), path, read_only=read_only)
        except BaseException:
            db.close()
            raise
        return db

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

    # -- reading and writing --------------------------------------------------------------
    def con(self) -> sqlite3.Connection:
        """This thread's connection (rows as ``sqlite3.Row``)."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = schema.connect(self.file, read_only=self.read_only)
            con.row_factory = sqlite3.Row
            self._local.con = con
            with self._lock:
                self._connections.append(con)
        return con

    def read(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """The rows of one query; a damaged file is a ProjectError that says so."""
        try:
            return self.con().execute(sql, tuple(args)).fetchall()
        except sqlite3.DatabaseError as err:
            raise schema.read_error(err, self.path) from err

    def read_in(self, sql: str, ids: Sequence[Any], tail: str = "") -> Iterator[sqlite3.Row]:
        """The rows of ``{sql} IN (ids){tail}``, a query per chunk of ids (SQLite limits the
        number of variables in one statement)."""
        for i in range(0, len(ids), CHUNK):
            part = list(ids[i:i + CHUNK])
            yield from self.read(f"{sql} IN ({','.join('?' * len(part))}){tail}", part)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction; waits for other writers (busy timeout), never drops the change silently."""
        if self.read_only:
            raise ProjectError(f"The project {self.path} was opened to read only; nothing was written.")
        self.verify()
        con = self.con()
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

    def verify(self) -> None:
        """SQLite's quick check of the whole file, once (:func:`schema.check_integrity`): every
        write runs it first, so a damaged project is refused before anything is written to it.
        Raises ProjectError."""
        if self._verified is None:
            try:
                schema.check_integrity(self.con(), self.path)
                self._verified = "ok"
            except ProjectError as err:
                self._verified = str(err)
        if self._verified != "ok":
            raise ProjectError(self._verified)

    def checkpoint(self) -> None:
        """Copy the write-ahead journal into the project file (SQLite also does this by itself)."""
        if self.read_only:
            return
        try:
            self.con().execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.DatabaseError as err:
            raise ProjectError(f"Cannot write the project {self.path}: {schema.reason(err)}.") from err

    # -- change numbers -------------------------------------------------------------------
    def bump(self, con: sqlite3.Connection, image_id: int | None) -> None:
        """Give the image the next change number (inside ``con``'s transaction), remembered as
        this process's own change."""
        seq = next_seq(con)
        con.execute("UPDATE images SET seq = ? WHERE id = ?", (seq, image_id))
        self.own(seq)

    def own(self, seq: int) -> None:
        """Remember change number ``seq`` as this process's own write (a watcher skips it)."""
        with self._lock:
            self._own_seqs.add(seq)

    def is_own_write(self, seq: int) -> bool:
        """The change number ``seq`` is one of this process's own writes."""
        return seq in self._own_seqs

    def forget_own_writes(self, up_to: int) -> None:
        """Own change numbers up to ``up_to`` will not be asked about again (a reader has seen them)."""
        with self._lock:
            self._own_seqs = {s for s in self._own_seqs if s > up_to}
