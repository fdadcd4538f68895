"""Python's cyclic garbage is freed on the GUI thread only while QMask's other threads run.

Why: CPython starts a collection in whichever thread happens to allocate when a generation is
full (or calls ``gc.collect()``), and a collection frees every unreachable cycle at once. QMask's
engine thread allocates the most (model code), so that is usually where it happens, and a
cycle that holds Qt objects (a closed window with its controller and widgets, a session's
QUndoStack, a QTimer, pyqtgraph items) then has its C++ destructors run on the engine thread
while the GUI thread uses the same Qt structures: a destroyed timer stays registered with the
GUI thread's event dispatcher ("QObject::~QObject: Timers cannot be stopped from another
thread"), widgets and pixmaps are freed under the painter. The process dies later, somewhere
unrelated, e.g. "malloc_consolidate(): unaligned fastbin chunk detected" in the GUI tests.
Qt requires objects to be deleted in the thread they live in.

So while anything holds the collector (the engine client, a background task, the GUI tests):

- automatic collection is off, and a timer on the GUI thread collects instead, generation by
  generation with Python's own thresholds;
- a collection another thread starts explicitly (``gc.collect()``: ``engine.models.manager`` calls it
  when it releases a model, in the engine thread) finds nothing: every object is frozen
  (``gc.freeze``) for its duration and unfrozen after, so no destructor, finalizer or weakref
  callback runs there; what it would have freed is freed by the GUI thread's next full
  collection. (This assumes nothing else in the process uses ``gc.freeze``.)

Reference counting still frees everything outside cycles at once, in whatever thread drops the
last reference; only cycles wait for the GUI thread (a fraction of a second).

A full collection walks every object: with torch, transformers and the models loaded, half a
million of them, 350 ms on the GUI thread (a frozen window, measured while captions ran). So the
first full collection also *settles* the heap: what survives it (modules, models, the window) is
frozen (``gc.freeze``) and later full collections walk only what came after, in milliseconds.
Garbage among the frozen objects waits for the next settling: every ``RESETTLE_S``, once the user
has not touched the window for ``QUIET_S`` (``quiet``, set by the app), and after a collection
another thread started (its unfreeze ends the settled state).

Use :func:`hold` on the GUI thread and :func:`release` (from any thread) when done; holds nest.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from typing import Callable

from PySide6 import QtCore

log = logging.getLogger(__name__)

CHECK_INTERVAL_MS = 200  # how often the GUI thread looks at the allocation counts
RESETTLE_S = 120.0  # frozen garbage is freed at least this often (when the user is quiet)
QUIET_S = 3.0  # no input for this long: a settling's pause (a full collection) is not felt


class GuiThreadCollector(QtCore.QObject):
    """Automatic collection off while held; the GUI thread collects instead (see the module doc)."""

    def __init__(self, interval_ms: int = CHECK_INTERVAL_MS) -> None:
        super().__init__()
        self._gui_thread = threading.get_ident()
        self._holds = 0
        self._was_enabled = True
        self._frozen = False  # a collection on another thread runs with every object frozen
        self._long_lived = 0  # objects in the oldest generation after this object's last full collection
        self.collections = 0  # collections run on the GUI thread by this object (tests, diagnostics)
        self.neutralised = 0  # collections other threads started (explicitly) while held
        self.settled = False  # the heap as of the last settling is frozen (see the module doc)
        self._settled_at = 0.0
        self.quiet: Callable[[], bool] = lambda: True  # the user is not working the window now
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect_due)
        gc.callbacks.append(self._on_gc)

    @property
    def holds(self) -> int:
        """Holds not yet released (0: automatic collection is back as it was)."""
        return self._holds

    def hold(self) -> None:
        """Collect only on the GUI thread from now on (until the matching :meth:`release`)."""
        if threading.get_ident() != self._gui_thread:
            raise RuntimeError("gui_thread_gc.hold() must be called on the GUI thread")
        self._holds += 1
        if self._holds == 1:
            self._was_enabled = gc.isenabled()
            gc.disable()
            self._timer.start()

    @QtCore.Slot()
    def release(self) -> None:
        """End one :meth:`hold`. From another thread the release is queued to the GUI thread, so a
        worker can release as the last thing it does."""
        if threading.get_ident() != self._gui_thread:
            QtCore.QMetaObject.invokeMethod(self, "release", QtCore.Qt.ConnectionType.QueuedConnection)
            return
        if self._holds == 0:
            log.warning("gui_thread_gc.release() without a hold")
            return
        self._holds -= 1
        if self._holds == 0:
            self._timer.stop()
            self._unsettle()
            # What the held period left is freed here, before other threads may collect again.
            self._collect()
            if self._was_enabled:
                gc.enable()

    def collect_due(self) -> None:
        """What automatic collection would have done by now, on this thread: Python's thresholds,
        and (as CPython does) a full collection only once the oldest generation grew by a quarter,
        so a large heap (torch, transformers) is not walked every few seconds."""
        t0, t1, t2 = gc.get_threshold()
        c0, c1, c2 = gc.get_count()
        if self.settled and time.monotonic() - self._settled_at > RESETTLE_S and self.quiet():
            self._settle()  # frees the garbage frozen since the last settling
            return
        if t0 <= 0 or c0 <= t0:
            return
        generation = 0
        if c1 > t1:
            generation = 1
            if c2 > t2:
                oldest = len(gc.get_objects(generation=2))
                if oldest - self._long_lived > self._long_lived // 4:
                    generation = 2
        self._collect(generation)

    def _collect(self, generation: int = 2) -> None:
        if generation == 2 and self._holds and not self.settled:
            self._settle()
            return
        gc.collect(generation)
        self.collections += 1
        if generation == 2:
            self._long_lived = len(gc.get_objects(generation=2))

    def _settle(self) -> None:
        """A full collection of every object, then freeze the survivors (see the module doc)."""
        self._unsettle()
        gc.collect()
        gc.freeze()
        self.collections += 1
        self.settled, self._settled_at, self._long_lived = True, time.monotonic(), 0

    def _unsettle(self) -> None:
        if self.settled:
            gc.unfreeze()
            self.settled = False

    def _on_gc(self, phase: str, info: dict) -> None:
        # CPython runs one collection at a time and calls "start" and "stop" around it, in the
        # collecting thread, so a "stop" always ends the collection its "start" froze for.
        if phase == "start":
            if self._holds and threading.get_ident() != self._gui_thread:
                gc.freeze()  # the collection about to run sees no objects: it frees nothing here
                self._frozen = True
                self.neutralised += 1
        elif self._frozen:
            self._frozen = False
            gc.unfreeze()  # back into the oldest generation; the GUI thread's collections free them
            self.settled = False  # that unfroze the settled heap too: the next full collection settles


_collector: GuiThreadCollector | None = None


def collector() -> GuiThreadCollector:
    """The process' collector, created on first use on the GUI thread (a QCoreApplication must exist)."""
    global _collector
    if _collector is None:
        app = QtCore.QCoreApplication.instance()
        if app is None:
            raise RuntimeError("gui_thread_gc needs a QApplication")
        if QtCore.QThread.currentThread() is not app.thread():
            raise RuntimeError("gui_thread_gc.collector() is first called on the GUI thread")
        _collector = GuiThreadCollector()
    return _collector


def hold() -> None:
    """See :meth:`GuiThreadCollector.hold` (GUI thread only)."""
    collector().hold()


def settle() -> None:
    """Settle the heap now unless it is (GUI thread, while held): at a moment the user does not
    feel, e.g. right after the models were loaded, rather than at the first full collection."""
    c = collector()
    if c.holds and not c.settled:
        c._settle()


def release() -> None:
    """See :meth:`GuiThreadCollector.release` (any thread)."""
    if _collector is not None:
        _collector.release()
