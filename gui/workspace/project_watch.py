"""The watch for what other processes (a batch, an import, a second window) write into the
window's project.

Once a second the store is asked, on a thread of its own, what changed since the last look: the
project's data version (cheap), then the changed image rows, and the records of those that have
a session. The GUI thread only puts in what was read (:meth:`gui.workspace.workspace.Workspace.take_changes`):
a pass over what changed, never over the list, and no read of its own.
"""

from __future__ import annotations

import sqlite3
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from PySide6 import QtCore

from engine.errors import ProjectError
from engine.project import ImageRecord, ImageRow, Project

if TYPE_CHECKING:
    from gui.workspace.workspace import Workspace


@dataclass
class Changes:
    """What other processes changed after change number ``since``, as of ``version``."""

    version: int
    seq: int  # the newest change number read
    rows: list[ImageRow] = field(default_factory=list)  # changed images (ours left out)
    records: dict[int, ImageRecord] = field(default_factory=dict)  # of the changed images that have a session


def read_changes(project: Project, seen_version: int, since: int, made: frozenset[int]) -> Changes:
    """Read (on the calling thread's connection) what changed since ``since``; nothing when the
    data version is still ``seen_version``. ``made``: ids whose records are read too."""
    version = project.data_version()
    if version == seen_version:
        return Changes(version, since)
    rows, seq = project.changed_since(since)
    rows = [r for r in rows if not project.is_own_write(r.seq)]
    records = {}
    for r in rows:
        if r.id in made:
            record = project.get_image(r.id, records=True)
            if record is not None:
                records[r.id] = record
    return Changes(version, seq, rows, records)


class ProjectWatch(QtCore.QObject):
    """Looks for other processes' changes every ``interval_s`` on its own thread, and hands them
    to the workspace on the GUI thread. A look that ran while a write of ours was on its way is
    dropped (what it read may lack that write) and made again at the next tick."""

    _looked = QtCore.Signal(object)  # (ticket, settled, Changes or ProjectError), from the watch's thread

    def __init__(self, workspace: "Workspace", interval_s: float = 1.0) -> None:
        super().__init__(workspace)
        self._ws = workspace
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qmask-watch")
        self._pending: int | None = None  # the look on its way, by number
        self._numbers = 0
        self._generation = 0  # a new project starts a new one: looks at the old one are dropped
        self._looked.connect(self._apply, QtCore.Qt.ConnectionType.QueuedConnection)
        self.looks = 0  # looks made (tests)
        self.restart()
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(int(interval_s * 1000))
        self._timer.timeout.connect(self.look)
        self._timer.start()

    def restart(self) -> None:
        """Watch the workspace's project (again) from its newest change on. A look on its way
        is waited for (it may be reading the project before) and its reply dropped."""
        self._pool.submit(lambda: None).result()  # (one thread: every look before this one is done)
        self._generation += 1
        self._pending = None
        # The data version is per connection: the first look reads it on the watch's own.
        self.seen_version = -1
        self.seen_seq = self._ws._read(self._ws.project.last_seq, 0)

    def look(self) -> None:
        """Start a look in the background, unless one is on its way."""
        if self._pending is not None or self._ws.closed:
            return
        self._submit(wanted=True)

    def check_now(self) -> list[int]:
        """Look now and put in what changed (the GUI thread waits for the read): the rows changed."""
        self._pending = None  # a look on its way is dropped when its reply comes: this one reads after it
        return self._apply(self._submit(wanted=False).result(), queued=False)

    def stop(self) -> None:
        self._timer.stop()
        self._generation += 1
        self._pool.shutdown(wait=True)

    def _submit(self, wanted: bool) -> Future:
        ws = self._ws
        self._numbers += 1
        if wanted:
            self._pending = self._numbers
        ticket = (self._generation, ws.writes_submitted, self._numbers)
        args = (ws.project, self.seen_version, self.seen_seq, frozenset(ws.session_ids()))
        return self._pool.submit(self._read, ticket, *args)

    def _read(self, ticket, project: Project, seen_version: int, since: int, made: frozenset[int]):
        settled = self._ws.writes_done >= ticket[1]  # every write queued before the look is in
        try:
            changes: Changes | ProjectError = read_changes(project, seen_version, since, made)
        except ProjectError as err:
            changes = err
        except sqlite3.Error as err:  # the project was closed under it (the window closed): said, never lost
            changes = ProjectError(f"Could not look for other programs' changes to {project.path}: {err}")
        self.looks += 1
        result = (ticket, settled, changes)
        self._looked.emit(result)
        return result

    def _apply(self, result, queued: bool = True) -> list[int]:
        (generation, writes, number), settled, changes = result
        if queued:
            if number != self._pending:
                return []  # check_now looked after it
            self._pending = None
        ws = self._ws
        if generation != self._generation or ws.closed:
            return []
        if isinstance(changes, ProjectError):
            ws.save_failed.emit(str(changes))
            return []
        if changes.rows and (not settled or ws.writes_submitted != writes):
            return []  # a write of ours was on its way: read again at the next look
        self.seen_version, self.seen_seq = changes.version, changes.seq
        ws.project.forget_own_writes(changes.seq)
        return ws.take_changes(changes)
