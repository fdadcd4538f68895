"""The window's images over the project (their sessions: :mod:`gui.workspace.session`).

:class:`Workspace` is the image list over the project (ids and paths only: a session, and the
image's records, are made when the image is shown), the current image, and the watch for
changes made by other processes. An image whose file is not where the project says is kept
in the list as *missing* (never marked failed in the project): :meth:`Workspace.relocate`
points the project at the folder it moved to and the sessions follow.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from PySide6 import QtCore, QtGui

from engine.errors import ProjectError
from engine.project import Category, ImageRecord, Project, RelocateReport

from gui.engine_thread.input_priority import InputPriority
from gui.workspace.opening import Listing, Opened, list_and_add
from gui.workspace.path_column import PathColumn
from gui.workspace.project_watch import Changes, ProjectWatch
from gui.workspace.session import ImageSession, SessionList, new_session

IMAGES_IN_MEMORY = 4  # pixels and cached masks kept for the most recently shown images only
CHECK_ALL_MISSING = 2000  # up to this many images, every file is looked for when a project opens
VERIFY_AFTER_MS = 2000  # the project's integrity check starts this long after it opens

log = logging.getLogger(__name__)


class Workspace(QtCore.QObject):
    """The images of the window (in list order), the current one, and the project they live in.

    Holds ``(id, path)`` for every image of the list and makes a session when an image is shown.
    Every change is written at once (``write``); a timer looks for changes made by other
    processes (``external_changed`` with the rows that changed).
    """

    current_changed = QtCore.Signal(object)  # ImageSession or None
    sessions_changed = QtCore.Signal()
    prompts_changed = QtCore.Signal(object)  # ImageSession whose points or box changed (edit, undo, drag)
    rows_changed = QtCore.Signal(list)  # list rows whose data changed (another process wrote them, files gone)
    save_failed = QtCore.Signal(str)
    _listed = QtCore.Signal(object)  # (number, Listing), from the store's thread (see open_paths)
    _project_listed = QtCore.Signal(object)  # (project, ids, then), from the store's thread (add_project_images)
    classes_changed = QtCore.Signal()  # the project's class list changed (a new class, a rename, a colour)

    def __init__(self, project: Project, default_alpha: float = 0.5, watch_interval_s: float = 1.0) -> None:
        super().__init__()
        self.project = project
        self.default_alpha = default_alpha
        self.ids: list[int] = []
        self.paths = PathColumn(self)  # by row, read as rows are used
        self.row_of_id: dict[int, int] = {}
        self._sessions: dict[int, ImageSession] = {}
        self._records: dict[int, ImageRecord] = {}  # image rows (without questions) of made sessions
        self.sessions = SessionList(self)
        self.index = -1
        self._recent: list[ImageSession] = []  # most recently shown last
        self.undo_group = QtGui.QUndoGroup(self)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qmask-store")  # see write()
        self._closed = False
        self._last_write: Future | None = None
        self.priority: InputPriority | None = None  # set by the app: writes wait while the GUI works
        self.last_category: str | None = None  # the class used last (new objects take it)
        self._categories: list[Category] | None = None  # the class list, read once until it changes
        self.classes_changed.connect(self._forget_categories)
        self._waited_on = 0  # the GUI thread is blocked on the store (a write with wait, drain)
        self.writes_submitted = 0  # writes queued, and done (by the store's thread), so far
        self.writes_done = 0
        self._openings: dict[int, object] = {}  # number -> what to call once its rows are in
        self._opening_count = 0
        self._listed.connect(self._on_listed, QtCore.Qt.ConnectionType.QueuedConnection)
        self._project_listed.connect(self._on_project_listed, QtCore.Qt.ConnectionType.QueuedConnection)
        self.watch = ProjectWatch(self, watch_interval_s)  # other processes' changes
        # SQLite's check of the whole file (under a second at 100,000 images) on the store's
        # thread, once the window is up: a damaged project is said even before an edit (every
        # write runs it first anyway, so nothing is ever written to one).
        QtCore.QTimer.singleShot(VERIFY_AFTER_MS, self, lambda: self.write(lambda p: p.verify()))

    @property
    def current(self) -> ImageSession | None:
        return self.session_at(self.index) if 0 <= self.index < len(self.ids) else None

    def session_at(self, index: int) -> ImageSession:
        image_id = self.ids[index]
        session = self._sessions.get(image_id)
        if session is None:
            session = new_session(self, self.paths[index], image_id)
            session.missing = not session.path.is_file()
            self._sessions[image_id] = session
            self.undo_group.addStack(session.listener.undo_stack)
        return session

    @property
    def closed(self) -> bool:
        return self._closed

    def session_ids(self) -> list[int]:
        """Image ids of the sessions made so far."""
        return list(self._sessions)

    def made_sessions(self) -> list[ImageSession]:
        """The sessions made so far (images shown or worked on), in no particular order."""
        return list(self._sessions.values())

    def session_for(self, image_id: int) -> ImageSession | None:
        return self._sessions.get(image_id)

    def image_record(self, session: ImageSession, refresh: bool = False) -> ImageRecord:
        """The project's record of a session's image (with its questions when ``refresh``)."""
        record = self._records.get(session.image_id)
        if record is None or refresh:
            record = self._read(lambda: self.project.get_image(session.image_id, records=refresh), None)
            if record is None:
                record = ImageRecord(path=self.project.rel_path(session.path), id=session.image_id)
            self._records[session.image_id] = record
        return record

    # ------------------------------------------------------------------ the class list
    @property
    def categories(self) -> list[Category]:
        """The project's class list (ids, names, colours), read once until it changes."""
        if self._categories is None:
            self.drain()  # a class a queued write is adding must be in it
            self._categories = self._read(lambda: self.project.categories, [])
        return self._categories

    def classes(self) -> list[str]:
        return [c.name for c in self.categories]

    def remember_category(self, name: str) -> None:
        self.last_category = name
        if name not in self.classes():
            self._categories = None  # the write adding it is queued: read again when next asked

    def _forget_categories(self) -> None:
        self._categories = None

    # ------------------------------------------------------------------ the list
    def _append(self, image_id: int, path: Path | None = None) -> None:
        self.row_of_id[image_id] = len(self.ids)
        self.ids.append(image_id)
        if path is not None:
            self.paths.set(image_id, path)

    def add_paths(self, paths: list[Path]) -> SessionList:
        """Add image files (already listed ones are skipped, missing ones listed all the same);
        returns the new ones' sessions (made as they are used). Waits for the store's thread."""
        opened = self.open_paths(paths, folders=False, wait=True)
        return opened.added if opened is not None else SessionList(self, [])  # (None: the window closed)

    def open_paths(self, paths: list[Path], then=None, folders: bool = True, wait: bool = False) -> Opened | None:
        """List ``paths`` (a folder's images in natural order) and add them to the project on the
        store's thread, a chunk per query; then append the new rows and call ``then(opened)`` on
        the GUI thread. ``wait``: the GUI thread waits and gets the :class:`Opened` back (the
        command line's images, as the window starts); else nothing is returned."""
        paths = [Path(p) for p in paths]
        self._opening_count += 1
        number = self._opening_count
        self._openings[number] = then
        box: list[Listing] = []
        if wait:
            self.write(lambda p: box.append(list_and_add(p, paths, folders)), wait=True)
            return self._on_listed((number, box[0] if box else Listing()))
        self.write(lambda p: self._listed.emit((number, list_and_add(p, paths, folders))))
        return None

    def _on_listed(self, done: tuple[int, Listing]) -> Opened | None:
        number, listing = done
        if number not in self._openings or self._closed:
            return None
        then = self._openings.pop(number)
        rows = []
        for image_id, _rel in listing.index:
            if image_id not in self.row_of_id:
                rows.append(len(self.ids))
                self._append(image_id)  # its path is read when its row is used
        if listing.unnamed:
            self.save_failed.emit(f"{len(listing.unnamed)} image(s) not added: "
                                  + "; ".join(f"{name}: {why}" for name, why in listing.unnamed[:3]) + ".")
        if rows:
            self.sessions_changed.emit()
        first = self.row_of_id.get(listing.index[0][0], -1) if listing.index else -1
        opened = Opened(SessionList(self, rows), first, len(listing.index), listing.errors)
        if then is not None:
            then(opened)
        return opened

    def use_project(self, project: Project) -> None:
        """Work on ``project`` from now on (File > Open project…, a folder's own project): every
        change to the one before is written, then it is closed; the list, the sessions and their
        undo histories start anew (empty: :meth:`add_project_images` lists the new one's)."""
        self.drain()
        for session in self.made_sessions():
            session.listener.undo_stack.clear()  # (as in close: Qt deletes the commands while all is alive)
            self.undo_group.removeStack(session.listener.undo_stack)
        old, self.project = self.project, project
        self.ids, self.row_of_id, self.index = [], {}, -1
        self.paths = PathColumn(self)
        self._sessions, self._records, self._recent = {}, {}, []
        self._openings.clear()  # what an opening on its way lists belongs to the project before
        self._categories = None
        self.watch.restart()
        old.close()
        self.sessions_changed.emit()
        self.classes_changed.emit()
        self.current_changed.emit(None)
        QtCore.QTimer.singleShot(VERIFY_AFTER_MS, self, lambda: self.write(lambda p: p.verify()))

    def add_project_images(self, then=None, wait: bool = True) -> None:
        """Every image of the project, most in need of review first (ids only: paths are read as
        rows are shown, see :class:`PathColumn`), then ``then()``. ``wait=False``: the ids are read
        on the store's thread while the window goes on (reading 100,000 of them took 60 ms of
        the GUI thread); a project switch in between drops them."""
        if wait:
            self._on_project_listed((self.project, self._read(lambda: self.project.image_ids("review"), []), then))
            return
        project = self.project
        self.write(lambda p: self._project_listed.emit((project, p.image_ids("review"), then)))

    def _on_project_listed(self, done) -> None:
        project, ids, then = done
        if project is not self.project or self._closed:
            return
        new = [i for i in ids if i not in self.row_of_id]
        self.row_of_id.update(zip(new, range(len(self.ids), len(self.ids) + len(new))))
        self.ids.extend(new)
        self.sessions_changed.emit()
        if then is not None:
            then()

    def sort(self, order: str) -> None:
        """Put the list in one of the store's orders (:data:`engine.project.ORDERS`: review need,
        name, state, added), read from its indexed columns; the shown image stays shown."""
        listed = set(self.ids)
        current = self.ids[self.index] if 0 <= self.index < len(self.ids) else None
        self.ids = [i for i in self._read(lambda: self.project.image_ids(order), []) if i in listed]
        self.row_of_id = {image_id: row for row, image_id in enumerate(self.ids)}
        self.index = self.row_of_id.get(current, -1) if current is not None else -1
        self.sessions_changed.emit()

    def missing_sessions(self, recheck: bool = False) -> list[ImageSession]:
        """Sessions whose file is not where it was; ``recheck`` looks at the disk again.

        A list of up to :data:`CHECK_ALL_MISSING` images is checked whole (so the banner can say
        how many moved); a longer one only where images were shown (the list greys the others
        as it shows them)."""
        if recheck:
            changed = []
            every = len(self.ids) <= CHECK_ALL_MISSING
            for row in range(len(self.ids)) if every else sorted(self.row_of_id[i] for i in self._sessions):
                session = self._sessions.get(self.ids[row])
                path = self.paths[row]
                if session is None and not path.is_file():
                    self.session_at(row)  # made missing, at once
                    changed.append(row)
                elif session is not None and session.image is None and session.set_missing(not path.is_file()):
                    changed.append(row)
            if changed:
                self.rows_changed.emit(changed)
        missing = [s for s in self._sessions.values() if s.missing]  # only shown images are known missing
        return sorted(missing, key=lambda s: self.row_of_id.get(s.image_id, -1))

    def done_count(self) -> int:
        """How many listed images are done (every object accepted): the project's count, with the
        live state of the images that have a session (their writes may still be queued)."""
        done = self._read(lambda: self.project.count_accepted(self.ids), 0)
        if self._sessions:
            made = list(self._sessions)
            done += sum(s.done for s in self._sessions.values()) - self._read(
                lambda: self.project.count_accepted(made), 0)
        return done

    def relocate(self, folder: str | os.PathLike[str]) -> tuple[RelocateReport, list[tuple[ImageSession, str]]]:
        """Find the missing images under ``folder`` (by their old relative path, then by name; a
        recorded SHA-256 must match), update the project (one transaction) and the sessions.

        Returns the project's report and ``(session, old key)`` for every session that moved.
        Raises ProjectError when ``folder`` is not a folder or the project cannot be written.
        """
        report = self.project.relocate(folder)
        moved: list[tuple[ImageSession, str]] = []
        for image_id, rel in self.project.image_index("added"):
            old = self.paths.known(image_id)  # paths not read yet are read anew when used
            if image_id not in self.row_of_id or old is None:
                continue
            new = self.project.abs_path(rel)
            if new != old:
                self.paths.set(image_id, new)
                self._records.pop(image_id, None)
                session = self._sessions.get(image_id)
                if session is not None:
                    old_key = session.key
                    session.move_to(new)
                    moved.append((session, old_key))
        self.missing_sessions(recheck=True)
        if report.found:
            self.sessions_changed.emit()
        return report, moved

    def find(self, path: Path) -> int:
        """The list row of an image (any spelling of its path), or -1 (asks the store's path index)."""
        image_id = self._read(lambda: self.project.image_id(Path(path)), None)
        return -1 if image_id is None else self.row_of_id.get(image_id, -1)

    def set_index(self, index: int) -> ImageSession | None:
        if not self.ids:
            return None
        index = max(0, min(index, len(self.ids) - 1))
        if index == self.index:
            return self.current
        self.index = index
        current = self.current
        if current in self._recent:
            self._recent.remove(current)
        self._recent.append(current)
        for old in self._recent[:-IMAGES_IN_MEMORY]:
            old.release_memory()
        self._recent = self._recent[-IMAGES_IN_MEMORY:]
        self.undo_group.setActiveStack(current.listener.undo_stack)
        self.current_changed.emit(current)
        return current

    def step(self, delta: int) -> ImageSession | None:
        return self.set_index(self.index + delta)

    # ------------------------------------------------------------------ the project
    def write(self, change, wait: bool = False) -> bool:
        """One write of the project (``change(project)``), in order with every other, on the
        store's own thread: a click does not wait for the database. ``wait`` waits for it (and
        everything queued before it). A failure is reported (``save_failed``), not raised.
        After :meth:`close` nothing is written: an engine reply still in Qt's queue when the
        window closed (a mask for points already saved) is dropped, with a log line."""
        if self._closed:
            log.info("project closed; a late change was not written")
            return False
        self.writes_submitted += 1
        future = self._writer.submit(self._run_write, change)
        self._last_write = future
        return self._wait_for(future) if wait else True

    def _wait_for(self, future: Future):
        self._waited_on += 1
        if self.priority is not None:
            self.priority.wake()  # a write giving way to this thread stops: this thread waits for it
        try:
            return future.result()
        finally:
            self._waited_on -= 1

    def _run_write(self, change) -> bool:
        # A write is not what the user waits for (unless the GUI thread does, blocked on it):
        # it goes after the GUI thread's work of the moment, like the engine's next step.
        if self.priority is not None and not self._waited_on:
            self.priority.give_way(blocked=lambda: self._waited_on > 0)
        try:
            change(self.project)
        except ProjectError as err:
            self.save_failed.emit(str(err))  # (queued to the GUI thread)
            return False
        finally:
            self.writes_done += 1  # (only this thread counts it)
        return True

    def drain(self) -> None:
        """Wait until every write queued so far is in the project."""
        if self._last_write is not None:
            self._wait_for(self._last_write)

    def _read(self, read, default):
        try:
            return read()
        except ProjectError as err:
            self.save_failed.emit(str(err))
            return default

    def check_external(self) -> list[int]:
        """Look for other processes' changes now (the watch does every second, in the background)
        and put them in; returns the rows that changed."""
        return self.watch.check_now()

    def take_changes(self, changes: Changes) -> list[int]:
        """Put in what other processes wrote (read by :mod:`gui.workspace.project_watch`): new images join
        the list, changed rows are announced, sessions are reloaded from the records read. A pass
        over the changes only; returns the rows that changed."""
        changed, grew = [], False
        for r in changes.rows:
            if r.id not in self.row_of_id:
                self._append(r.id, self.project.abs_path(r.path))
                grew = True
                continue
            changed.append(self.row_of_id[r.id])
            self._records.pop(r.id, None)
            session = self._sessions.get(r.id)
            if session is not None and session.asks.asking is None:  # (not while a question of ours runs on it)
                record = changes.records.get(r.id)
                if record is not None:
                    self._records[r.id] = record
                session.reload_from_project(record)  # (read now only for a session made since the look)
        if grew:
            self.sessions_changed.emit()
        if changed:
            self._categories = None  # another process may have added classes
            self.rows_changed.emit(changed)
        return changed

    def flush(self) -> bool:
        """"Save": every change is already queued; wait for them and fold the journal into the file."""
        return self.write(lambda p: p.checkpoint(), wait=True)

    def close(self) -> bool:
        """Stop watching, drop the undo histories (see below) and close the project."""
        self.watch.stop()
        # The undo commands reference their session: reference cycles, left to Python's cyclic
        # collector once the window is gone. Its tp_clear (shiboken 6.11) hands a command's wrapper
        # ownership of the C++ command while the QUndoStack still holds it, so the command is
        # deleted twice: a corrupted heap. Qt deletes them here instead, while all is alive.
        for session in self.made_sessions():
            session.listener.undo_stack.clear()
        self.drain()
        self._closed = True
        self._writer.shutdown(wait=True)
        self.project.close()
        return True
