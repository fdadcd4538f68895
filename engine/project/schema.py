"""The project file: an SQLite database (WAL journal) with a versioned schema.

A ``.qmask`` file is checked before SQLite opens it (:func:`check_file`): the header must be
SQLite's, carry QMask's application id, and the file must hold every page its header counts.
A damaged file (truncated, not a database) or one from a newer QMask is refused with a clear
message and left byte for byte as it was. Older schemas go through :data:`MIGRATIONS`, each one
transaction.

Concurrency: WAL lets readers run while one writer commits; writers queue on SQLite's lock,
waiting up to :data:`BUSY_TIMEOUT_S` (the app, ``qmask batch`` and ``qmask import --merge``
may all write one project at once). ``synchronous=NORMAL``: a committed transaction survives a
crash or ``kill -9`` of the process (not necessarily a power cut, which needs ``FULL``).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

from ..errors import ProjectError

try:
    import resource
except ImportError:  # Windows: no file-size limits to name
    resource = None  # type: ignore[assignment]

__all__ = ["SCHEMA_VERSION", "APPLICATION_ID", "BUSY_TIMEOUT_S", "MIGRATIONS", "TABLES", "check_file",
           "check_tables", "check_integrity", "connect", "initialise", "migrate", "reason", "build_new", "header_version"]

SCHEMA_VERSION = 3
APPLICATION_ID = 0x514D534B  # "QMSK"
BUSY_TIMEOUT_S = 30.0
_MAGIC = b"SQLite format 3\x00"

# Schema version 3 (2 plus ``runs.word_maps``). An image holds objects (instances, each with a category of the class list)
# and question runs (the evidence a question produced, proposing objects). Image rows carry what
# the image list shows (state, review need, the latest question and answer, object counts) so
# that the list never reads objects; ``seq`` grows with every change, so a reader finds what
# other processes wrote since it last looked.
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
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
    seq INTEGER NOT NULL DEFAULT 0,
    objects INTEGER NOT NULL DEFAULT 0,
    accepted_objects INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX images_review ON images (status = 'failed', review DESC, id);
CREATE INDEX images_name ON images (name, id);
CREATE INDEX images_state ON images (state, id);
CREATE INDEX images_seq ON images (seq);
""" + "\n".join(f"{statement};" for statement in ("""CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT,
    itm_probability REAL,
    alpha REAL NOT NULL DEFAULT 0.5,
    instances TEXT NOT NULL DEFAULT 'one',
    random_weights INTEGER NOT NULL DEFAULT 0,
    heatmap BLOB,
    heat_rows INTEGER,
    heat_cols INTEGER,
    heat_scale REAL,
    word_maps BLOB,
    captions BLOB,
    extra TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    updated REAL NOT NULL,
    UNIQUE (image_id, key)
)""", """CREATE TABLE objects (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    category_id INTEGER REFERENCES categories (id) ON DELETE SET NULL,
    source TEXT NOT NULL DEFAULT 'manual',
    question TEXT,
    run_key TEXT,
    accepted INTEGER NOT NULL DEFAULT 0,
    proposal INTEGER NOT NULL DEFAULT 0,
    draw_order INTEGER NOT NULL DEFAULT 0,
    mask_source TEXT NOT NULL DEFAULT 'auto',
    mask_score REAL,
    review REAL NOT NULL DEFAULT 0,
    reasons TEXT,
    mask TEXT,
    mask_h INTEGER,
    mask_w INTEGER,
    mask_area INTEGER,
    auto_mask TEXT,
    auto_same INTEGER NOT NULL DEFAULT 0,
    extra TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    updated REAL NOT NULL
)""", "CREATE INDEX objects_image ON objects (image_id, draw_order, id)",
    "CREATE INDEX objects_review ON objects (accepted, review DESC)")) + """
CREATE TABLE edits (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    image_id INTEGER NOT NULL,
    question_key TEXT,
    source TEXT NOT NULL CHECK (source IN ('chain', 'user', 'import')),
    action TEXT NOT NULL,
    writer TEXT NOT NULL,
    detail TEXT,
    object_uid TEXT
);
CREATE INDEX edits_image ON edits (image_id, id);
"""
_V2_TABLES = _SCHEMA[_SCHEMA.index("CREATE TABLE runs"):_SCHEMA.index("CREATE TABLE edits")]


def _objects_from_questions(con: sqlite3.Connection) -> None:
    """Schema 1 -> 2: every question record becomes a question run and, where it holds a mask,
    prompts or an accept flag, an object (:func:`engine.project.legacy.split_legacy`), nothing
    lost; the edit log's entries of a question name its object too."""
    from .legacy import objects_from_question_rows

    con.execute("ALTER TABLE images ADD COLUMN objects INTEGER NOT NULL DEFAULT 0")
    con.execute("ALTER TABLE images ADD COLUMN accepted_objects INTEGER NOT NULL DEFAULT 0")
    con.execute("ALTER TABLE edits ADD COLUMN object_uid TEXT")
    for statement in _V2_TABLES.split(";"):
        if statement.strip():
            con.execute(statement)
    objects_from_question_rows(con)
    con.execute("DROP TABLE questions")

def _word_maps_column(con: sqlite3.Connection) -> None:
    """Schema 2 -> 3: a run keeps its per-word heat maps (:func:`engine.project.rows.word_maps_blob`).
    A schema-1 project gets the column already, with the runs table step 1 -> 2 lays out."""
    if "word_maps" not in {row[1] for row in con.execute("PRAGMA table_info(runs)")}:
        con.execute("ALTER TABLE runs ADD COLUMN word_maps BLOB")


TABLES = ("meta", "categories", "images", "runs", "objects", "edits")
_RESTORE = "It was left as it was; restore it from a backup, or from a `qmask export ... --format qmask-json` copy."

# version -> SQL (or a function of the connection) turning schema ``version`` into ``version + 1``.
MIGRATIONS: dict[int, str | Callable[[sqlite3.Connection], None]] = {1: _objects_from_questions,
                                                                   2: _word_maps_column}


def check_file(path: Path) -> None:
    """Refuse, without writing anything, a file that is not a QMask project or is damaged."""
    try:
        with open(path, "rb") as f:
            header = f.read(100)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError as err:
        raise ProjectError(f"No project file at {path}.") from err
    except OSError as err:
        raise ProjectError(f"Cannot read the project file {path}: {err.strerror or err}.") from err
    if len(header) < 100 or not header.startswith(_MAGIC):
        raise ProjectError(f"{path} is not a QMask project (not an SQLite database). It was left as it was.")
    app_id = int.from_bytes(header[68:72], "big")
    if app_id != APPLICATION_ID:
        raise ProjectError(f"{path} is an SQLite database but not a QMask project. It was left as it was.")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    if page_size < 512 or size < page_size * pages or size % page_size:
        raise ProjectError(f"{path} is damaged: the file is shorter than its header says (truncated copy or "
                           f"disk?). {_RESTORE}")


def header_version(path: Path) -> int:
    """The schema version a project file's header says (SQLite's user_version, bytes 60-63),
    read without SQLite; 0 when it cannot be read (SQLite then says why)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return 0
    return int.from_bytes(head[60:64], "big") if len(head) == 64 else 0


def check_tables(con: sqlite3.Connection, path: Path) -> None:
    """Refuse a project missing one of QMask's tables (cheap: reads the schema page only)."""
    try:
        found = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as err:
        raise ProjectError(f"{path} is damaged ({err}). {_RESTORE}") from err
    missing = [t for t in TABLES if t not in found]
    if missing:
        raise ProjectError(f"{path} is damaged: its table{'s' if len(missing) > 1 else ''} "
                           f"{', '.join(missing)} {'are' if len(missing) > 1 else 'is'} missing. {_RESTORE}")


def check_integrity(con: sqlite3.Connection, path: Path) -> None:
    """SQLite's ``quick_check`` (every page's structure; O(file size)): what the store runs
    before its first write, so a damaged file is never written to."""
    try:
        first = con.execute("PRAGMA quick_check(1)").fetchone()[0]
    except sqlite3.DatabaseError as err:
        first = str(err)
    if first != "ok":
        what = "; ".join(line for line in str(first).splitlines() if not line.startswith("***"))
        raise ProjectError(f"{path} is damaged (SQLite's check: {what}); QMask does not write to it. {_RESTORE}")


def read_error(err: sqlite3.DatabaseError, path: Path) -> ProjectError:
    """A failed read in words: SQLite's "malformed" means a damaged file."""
    if isinstance(err, sqlite3.DatabaseError) and "malformed" in str(err):
        return ProjectError(f"{path} is damaged ({err}). {_RESTORE}")
    return ProjectError(f"Cannot read the project {path}: {reason(err)}.")


def reason(err: BaseException) -> str:
    """An OS or SQLite error in words. SQLite reports a write past a file-size limit
    (``ulimit -f``; Python ignores SIGXFSZ, so the write fails with EFBIG) as "disk I/O error"."""
    text = getattr(err, "strerror", None) or str(err)
    if resource is not None and ("disk I/O error" in text or getattr(err, "errno", None) == 27):  # EFBIG
        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY:
            return f"file too large: this process may write files of at most {soft:,} bytes (ulimit -f)"
    return text


def connect(path: Path, *, create: bool = False, read_only: bool = False,
            shown: Path | None = None) -> sqlite3.Connection:
    """A connection with QMask's settings (autocommit mode: the store opens its own transactions).

    ``read_only``: nothing is ever written through it (``query_only``). In a folder this process
    may write, the file is opened as usual, so SQLite removes its ``-wal``/``-shm`` files again at
    the end (a ``mode=ro`` connection cannot, and leaves them behind); in a read-only folder it
    is opened ``mode=ro`` when a writer's ``-wal`` is there to share, else ``immutable`` (nobody
    can write a WAL project in a folder where its journal cannot be made). ``shown``: the path
    messages name (a new project's temporary file is not the user's).
    """
    shown = shown or path
    target, uri = str(path), False
    if read_only and not os.access(path.parent, os.W_OK | os.X_OK):
        mode = "mode=ro" if Path(f"{path}-wal").exists() else "immutable=1"
        target, uri = f"file:{quote(str(path))}?{mode}", True
    try:
        con = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False,
                              uri=uri)
    except sqlite3.Error as err:
        raise ProjectError(f"Cannot open the project {shown}: {reason(err)}.") from err
    try:
        if create:
            con.execute("PRAGMA journal_mode=WAL")
        if read_only:
            con.execute("PRAGMA query_only=ON")
        else:
            con.execute("PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA foreign_keys=ON")
    except sqlite3.Error as err:
        con.close()
        raise ProjectError(f"Cannot open the project {shown}: {reason(err)}.") from err
    return con


def initialise(con: sqlite3.Connection) -> None:
    """Lay out the current schema in a new, empty database."""
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                con.execute(statement)
        con.execute(f"PRAGMA application_id={APPLICATION_ID}")
        con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:  # a failed COMMIT may have ended it; keep the first error
            con.execute("ROLLBACK")
        raise


def migrate(con: sqlite3.Connection, path: Path, *, read_only: bool = False) -> None:
    """Bring an older schema up to date (each step one transaction); refuse a newer one, and a
    project missing a table. ``read_only``: an older schema is refused (nothing may be written)."""
    try:
        version = con.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as err:
        raise ProjectError(f"Cannot open the project {path}: {reason(err)}.") from err
    if version > SCHEMA_VERSION:
        raise ProjectError(f"{path} was written by a newer QMask (project schema {version}; this QMask "
                           f"reads up to {SCHEMA_VERSION}). Update QMask to open it; the file was left as it was.")
    if version < 1:
        raise ProjectError(f"{path} has no QMask schema (version {version}). It was left as it was.")
    if version < SCHEMA_VERSION and read_only:
        raise ProjectError(f"{path} has an older project schema ({version}); open it once in the app or with "
                           "`qmask batch` to update it, then try again. It was left as it was.")
    if version < SCHEMA_VERSION:
        check_integrity(con, path)
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise ProjectError(f"{path}: no migration from project schema {version}.")
        con.execute("BEGIN IMMEDIATE")
        try:
            if callable(step):
                step(con)
            else:
                for statement in step.split(";"):
                    if statement.strip():
                        con.execute(statement)
            version += 1
            con.execute(f"PRAGMA user_version={version}")
            con.execute("COMMIT")
        except BaseException as err:
            con.execute("ROLLBACK")
            if isinstance(err, sqlite3.Error):
                raise ProjectError(f"{path}: updating the project schema from version {version} failed ({err}). "
                                   "The file was left as it was.") from err
            raise
    check_tables(con, path)


def build_new(dest: Path, fill: Callable[[sqlite3.Connection], Any], *, overwrite: bool = False) -> None:
    """Lay out a new project under a temporary name beside ``dest``, run ``fill`` in one
    transaction, and move it into place: a project appears whole or not at all, and a failure
    leaves nothing behind. Raises FileExistsError (see :func:`_publish`), OSError, sqlite3.Error."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.new")
    try:
        con = connect(tmp, create=True, shown=dest)
        try:
            initialise(con)
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
