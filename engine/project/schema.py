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
from typing import Callable

from ..errors import ProjectError

__all__ = ["SCHEMA_VERSION", "APPLICATION_ID", "BUSY_TIMEOUT_S", "MIGRATIONS", "check_file",
           "connect", "initialise", "migrate"]

SCHEMA_VERSION = 2
APPLICATION_ID = 0x514D534B  # "QMSK"
BUSY_TIMEOUT_S = 30.0
_MAGIC = b"SQLite format 3\x00"

# Schema version 2. An image holds objects (instances, each with a category of the class list)
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

# version -> SQL (or a function of the connection) turning schema ``version`` into ``version + 1``.
MIGRATIONS: dict[int, str | Callable[[sqlite3.Connection], None]] = {1: _objects_from_questions}


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
                           "disk?). It was left as it was; restore it from a backup, or from a "
                           "`qmask export ... --format qmask-json` copy.")


def connect(path: Path, *, create: bool = False) -> sqlite3.Connection:
    """A connection with QMask's settings (autocommit mode: the store opens its own transactions)."""
    try:
        con = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                              check_same_thread=False)
    except sqlite3.Error as err:
        raise ProjectError(f"Cannot open the project {path}: {err}.") from err
    try:
        if create:
            con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA foreign_keys=ON")
    except sqlite3.Error as err:
        con.close()
        raise ProjectError(f"Cannot open the project {path}: {err}.") from err
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
        con.execute("ROLLBACK")
        raise


def migrate(con: sqlite3.Connection, path: Path) -> None:
    """Bring an older schema up to date (each step one transaction); refuse a newer one."""
    version = con.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise ProjectError(f"{path} was written by a newer QMask (project schema {version}; this QMask "
                           f"reads up to {SCHEMA_VERSION}). Update QMask to open it; the file was left as it was.")
    if version < 1:
        raise ProjectError(f"{path} has no QMask schema (version {version}). It was left as it was.")
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
