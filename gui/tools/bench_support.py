"""What the GUI benchmarks (``python -m gui.tools.bench_brush``, ``gui.tools.bench_polygons``, ``gui.tools.bench_clicks``)
share: the real window on one photo in a temporary folder (offscreen unless a display is set),
tiny random models, waiting on the event loop, real clicks and mouse moves timed on the GUI
thread, and the GUI thread's longest stall (:class:`StallProbe`).

Qt and the app are imported inside the functions: the environment (platform, data folder) is
set first, by :func:`bench_folder`.
"""

from __future__ import annotations

import os
import sys
import threading
import tempfile
import time
from pathlib import Path

MOVE_GAP_S = 0.012  # between moves: pyqtgraph drops moves closer than 10 ms (its mouse rate limit)


def bench_folder(name: str) -> Path:
    """A new temporary folder for one run, also QMask's data folder; offscreen without a display.
    Also the process settings of ``qmask``'s front door (before torch loads), as the app has them."""
    front_door_settings()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    work = Path(tempfile.mkdtemp(prefix=f"qmask-bench-{name}-"))
    os.environ.setdefault("QMASK_DATA_DIR", str(work / "data"))
    return work


def front_door_settings() -> None:
    """What ``qmask`` (gui.main) sets for the whole process: how idle OpenMP threads wait (before
    torch loads) and the allocator's thresholds. Without them torch's threads spin for a few ms
    after each operation, taking the GUI thread's core: not what the app does."""
    from engine.runtime.cpu_tuning import configure_openmp_wait, keep_freed_memory

    configure_openmp_wait()
    keep_freed_memory()


def models_folder(work: Path, models: str | None = None) -> str:
    """``models``, or tiny random models made now in ``work`` (their outputs mean nothing; timings do)."""
    if models is not None:
        return models
    from engine.models.random_models import make_random_models

    made = str(work / "models")
    make_random_models(made, size="tiny", seed=0)
    print(f"tiny random models in {made} (their outputs mean nothing; timings do)")
    return made


def open_app(work: Path, photo: Path, models: str, settings=None):
    """(qapp, app): the window at 1200 x 800 on ``photo``, its models loading (CPU)."""
    from engine.annotation.settings import PipelineSettings
    from gui.app import AppOptions, QMaskApp, ensure_qapp

    qapp = ensure_qapp()
    app = QMaskApp(AppOptions(images=[str(photo)], models_dir=models,
                              settings=settings or PipelineSettings(device="cpu"), project=str(work / "p.qmask")))
    app.window.resize(1200, 800)
    app.window.show()
    app.start(check_models=False)
    return qapp, app


def click_at(app, x: float, y: float) -> None:
    """A real left click on the canvas at image pixel (x, y): with the Points tool and nothing
    selected, a new object whose mask the model draws (wait for ``session.segmentation``)."""
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    canvas = app.window.canvas
    QTest.mouseClick(canvas.viewport(), QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier,
                     canvas.image_to_viewport(x, y))


def image_shown(app) -> bool:
    return app.workspace.current is not None and app.workspace.current.image is not None


def wait(qapp, cond, seconds: float = 600.0, slice_ms: int = 20) -> None:
    """Run the event loop until ``cond()``; TimeoutError after ``seconds``."""
    from PySide6 import QtCore

    end = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("the app did not get there in time")
        qapp.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, slice_ms)


def wait_idle(qapp, seconds: float = 0.3) -> None:
    """Let the window settle (repaints, the store's thread) before the next timed step."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        qapp.processEvents()
        time.sleep(0.01)


def timed_move(qapp, viewport, pos) -> tuple[float, float]:
    """One real mouse move to viewport point ``pos`` with the left button held, ``MOVE_GAP_S`` after
    the last (a person's pace): (wall ms, GUI-thread CPU ms) until the window has handled it and
    what it posted (the repaint). The CPU figure is what other processes on a shared CPU do not inflate."""
    from PySide6 import QtCore, QtGui, QtWidgets

    time.sleep(MOVE_GAP_S)
    local = QtCore.QPointF(pos)
    event = QtGui.QMouseEvent(QtCore.QEvent.Type.MouseMove, local, local, QtCore.Qt.MouseButton.NoButton,
                              QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    start, cpu = time.perf_counter(), time.thread_time()
    QtWidgets.QApplication.sendEvent(viewport, event)
    qapp.processEvents()
    return (time.perf_counter() - start) * 1000, (time.thread_time() - cpu) * 1000


def timed_release(qapp, viewport, pos) -> tuple[float, float]:
    """A real left-button release at ``pos``: (wall ms, GUI-thread CPU ms) until it is handled."""
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    start, cpu = time.perf_counter(), time.thread_time()
    QTest.mouseRelease(viewport, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, pos)
    qapp.processEvents()
    return (time.perf_counter() - start) * 1000, (time.thread_time() - cpu) * 1000


def idle(ms: int) -> None:
    """Wait in Qt's event loop, as the app does between events (QTest.qWait and processEvents loops
    poll instead: the GUI thread would look busy, to the engine (gui.engine_thread.input_priority) and to a
    :class:`StallProbe`)."""
    from PySide6 import QtCore

    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_idle_until(cond, seconds: float = 600.0, give_up: bool = False) -> bool:
    """Idle in the event loop (:func:`idle`), looking at ``cond()`` every 5 ms, until it holds.
    After ``seconds``: False with ``give_up``, else TimeoutError."""
    end = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > end:
            if give_up:
                return False
            raise TimeoutError(f"the app did not get there in {seconds:.0f} s")
        idle(5)
    return True


class StallProbe:
    """The GUI thread's longest stall: a timer due every ``interval_ms`` on the GUI thread records
    the gaps between its firings; a gap is how long the event loop could not run it (the
    interval included). Used as ``with probe: ...``; :attr:`worst` is the longest gap, in ms."""

    def __init__(self, interval_ms: int = 5, stacks: bool = False) -> None:
        from PySide6 import QtCore

        self.gaps: list[float] = []
        self._last = 0.0
        self.stacks = StackSampler() if stacks else None  # where the GUI thread was while it stalled
        self._timer = QtCore.QTimer()
        self._timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append((now - self._last) * 1000)
        self._last = now

    def __enter__(self) -> "StallProbe":
        self.gaps = []
        self._last = time.perf_counter()
        self._timer.start()
        if self.stacks is not None:
            self.stacks.start(self.since_last_ms)
        return self

    def __exit__(self, *exc: object) -> None:
        self._tick()  # a stall that lasts until the end counts too
        self._timer.stop()
        if self.stacks is not None:
            self.stacks.stop()

    @property
    def worst(self) -> float:
        return max(self.gaps, default=0.0)

    def since_last_ms(self) -> float:
        """ms since the last firing (another thread may ask: how long the GUI thread is blocked now)."""
        return (time.perf_counter() - self._last) * 1000


class StackSampler:
    """Where the GUI thread is while it stalls: every 10 ms, while the probe's timer is over 30 ms
    late, the GUI thread's innermost QMask frames (gui/, engine/) are counted; :meth:`top` gives the
    most frequent, each about 10 ms of stall. Samples through ``sys._current_frames`` (a bench
    tool only)."""

    def __init__(self, late_ms: float = 30.0, every_s: float = 0.01) -> None:
        self.late_ms, self.every_s = late_ms, every_s
        self.counts: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, late) -> None:
        self.counts, gui = {}, threading.get_ident()
        self._stop.clear()

        def sample() -> None:
            while not self._stop.wait(self.every_s):
                if late() < self.late_ms:
                    continue
                frame = sys._current_frames().get(gui)
                if frame is not None:
                    key = _own_frames(frame)
                    self.counts[key] = self.counts.get(key, 0) + 1

        self._thread = threading.Thread(target=sample, name="bench-stall-stacks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def top(self, n: int = 5) -> list[tuple[int, str]]:
        return sorted(((c, k) for k, c in self.counts.items()), reverse=True)[:n]


def _own_frames(frame, depth: int = 4) -> str:
    """The innermost ``depth`` frames in QMask's own code, after the innermost frame of all when
    that one is not ours (numpy, Qt's Python wrappers, threading)."""
    own, inner = [], None
    while frame is not None and len(own) < depth:
        name = frame.f_code.co_filename.replace("\\", "/")
        where = f"{Path(name).name}:{frame.f_lineno} {frame.f_code.co_name}"
        if "/gui/" in name or "/engine/" in name:
            own.append(f"{Path(name).parent.name}/{where}")
        elif not own and inner is None:
            inner = where
        frame = frame.f_back
    return " <- ".join(([inner] if inner else []) + own)
