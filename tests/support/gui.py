"""Helpers for the GUI tests (tests/test_gui_*.py): building the app on tiny random models,
real mouse events mapped through the view, and cleanup that proves no thread is left running.

Every GUI test module imports the autouse fixtures :func:`qt_garbage_on_gui_thread` and
:func:`no_thread_left_holding`: the Qt objects its tests leave behind are freed on the GUI
thread, never by a collection that happens to start in an engine thread (``gui.engine_thread.gui_thread_gc``).
"""

from __future__ import annotations

import gc
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets
from PySide6.QtTest import QTest

from engine.annotation.settings import PipelineSettings
from gui.engine_thread import gui_thread_gc

# Fast settings for random tiny models: few captions, few points, CPU.
FAST = PipelineSettings(device="cpu", num_captions=5, max_caption_rounds=4, num_points=3, caption_batch_size=5)
WAIT_MS = 60_000  # generous: two shared cores; a passing test takes a fraction of it


@pytest.fixture(scope="module", autouse=True)
def qt_garbage_on_gui_thread(qapp):
    """Cyclic garbage is collected on the GUI thread only, for the whole module, and freed here.

    A test's windows, canvases and sessions are Python reference cycles around Qt objects. Left
    to automatic collection they are freed by whichever thread allocates next, typically the
    next test's engine thread, which deletes Qt objects off their thread and corrupts the heap.
    Holding ``gui.engine_thread.gui_thread_gc`` across the module keeps every collection on this thread; the
    release at its end frees the rest here (after the deferred deletes of pytest-qt's closed
    widgets). The collection first frees what the previous module's last test left behind.
    """
    gc.collect()
    gui_thread_gc.hold()
    yield
    QtCore.QCoreApplication.sendPostedEvents()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    gui_thread_gc.release()


@pytest.fixture(autouse=True)
def no_thread_left_holding(qt_garbage_on_gui_thread):
    """Every engine client and background task a test starts has stopped (and released) by its end."""
    holds = gui_thread_gc.collector().holds
    yield
    QtCore.QCoreApplication.sendPostedEvents()  # the queued releases of finished background tasks
    left = gui_thread_gc.collector().holds - holds
    assert left == 0, f"{left} engine client(s) or background task(s) still running after the test"


def fast_settings(**overrides) -> PipelineSettings:
    return replace(FAST, **overrides)


def write_photo(path: Path, w: int = 160, h: int = 120, seed: int = 0) -> Path:
    """A small non-square RGB image with some structure (a bright disc on a gradient)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (xx * 255 // max(w - 1, 1)).astype(np.uint8)
    img[..., 1] = (yy * 255 // max(h - 1, 1)).astype(np.uint8)
    disc = (xx - w * 0.6) ** 2 + (yy - h * 0.45) ** 2 < (min(w, h) * 0.25) ** 2
    img[disc] = (240, 240, 60)
    img = np.clip(img.astype(int) + rng.integers(-10, 10, img.shape), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(path)
    return path


def click_image(canvas, x: float, y: float, button=QtCore.Qt.MouseButton.LeftButton,
                modifiers=QtCore.Qt.KeyboardModifier.NoModifier) -> QtCore.QPoint:
    """A real mouse click on the canvas' viewport at image pixel (x, y)."""
    pos = canvas.image_to_viewport(x, y)
    QTest.mouseClick(canvas.viewport(), button, modifiers, pos)
    return pos


def drag_image(canvas, start: tuple[float, float], end: tuple[float, float], steps: int = 6,
               modifiers=QtCore.Qt.KeyboardModifier.NoModifier) -> None:
    """A real left-button drag from image pixel ``start`` to ``end``."""
    vp = canvas.viewport()
    p0 = canvas.image_to_viewport(*start)
    p1 = canvas.image_to_viewport(*end)
    QTest.mousePress(vp, QtCore.Qt.MouseButton.LeftButton, modifiers, p0)
    for i in range(1, steps + 1):
        p = p0 + (p1 - p0) * (i / steps)
        event = _move_event(p, modifiers)
        QtWidgets.QApplication.sendEvent(vp, event)
        QTest.qWait(5)
    QTest.mouseRelease(vp, QtCore.Qt.MouseButton.LeftButton, modifiers, p1)


def _move_event(pos: QtCore.QPoint, modifiers):
    from PySide6 import QtGui

    local = QtCore.QPointF(pos)
    return QtGui.QMouseEvent(QtCore.QEvent.Type.MouseMove, local, local, QtCore.Qt.MouseButton.NoButton,
                             QtCore.Qt.MouseButton.LeftButton, modifiers)


class AppHarness:
    """Builds QMaskApp instances for a test and tears them down (threads stopped, windows closed)."""

    def __init__(self, qtbot, tmp_path: Path, models_dir: Path | None) -> None:
        self.qtbot = qtbot
        self.tmp_path = tmp_path
        self.models_dir = models_dir
        self.apps = []

    def build(self, images=(), question=None, settings: PipelineSettings | None = None, project=None,
              models_dir="default", start=True, wait_models=True, check_models=False, pipeline_factory=None):
        from gui.app import AppOptions, QMaskApp
        from gui.engine_thread.worker import default_pipeline_factory

        mdir = self.models_dir if models_dir == "default" else models_dir
        options = AppOptions(images=[str(p) for p in images], question=question,
                             models_dir=None if mdir is None else str(mdir), settings=settings or fast_settings(),
                             project=str(project or self.tmp_path / "test.qmask.json"))
        app = QMaskApp(options, pipeline_factory or default_pipeline_factory)
        self.apps.append(app)
        self.qtbot.addWidget(app.window)
        app.window.resize(1200, 800)
        app.window.show()
        self.qtbot.waitExposed(app.window)
        if start:
            if wait_models:
                with self.qtbot.waitSignal(app.controller.models_ready, timeout=WAIT_MS):
                    app.start(check_models=check_models)
            else:
                app.start(check_models=check_models)
        return app

    def close_all(self) -> None:
        for app in self.apps:
            app.window.close()  # closing stops the engine thread (MainWindow.closing -> shutdown)
            app.shutdown()
            assert not app.client.thread.isRunning(), "engine thread still running after close"
            for dialog in (app.files.export_dialog, app.files.models_dialog):
                if dialog is not None and dialog.task is not None:
                    dialog.task.wait(10_000)
                    assert not dialog.task.isRunning(), "background task still running after close"
        self.apps.clear()
        QtWidgets.QApplication.processEvents()
        shown = [w for w in QtWidgets.QApplication.topLevelWidgets() if w.isVisible()]
        assert not shown, f"windows left open: {shown}"


def harness_fixture(qtbot, tmp_path, models_dir):
    """Body of each GUI test module's ``harness`` fixture: apps built in the test, closed after it.
    (Each test has its own QMask data folder: see the conftest.)"""
    h = AppHarness(qtbot, tmp_path, models_dir)
    yield h
    h.close_all()


def wait_shown(qtbot, app) -> None:
    """Wait until the window shows an image whose pixels are read."""
    qtbot.waitUntil(lambda: app.workspace.current is not None and app.workspace.current.image is not None,
                    timeout=WAIT_MS)


def wait_strokes(qtbot, app) -> None:
    """Wait until every brush or eraser stroke drawn so far is applied (each is worked out off the
    GUI thread, then pushed: gui/canvas/stroke_stager.py)."""
    qtbot.waitUntil(lambda: not app.controller.strokes.pending, timeout=WAIT_MS)


def ask_and_wait(qtbot, app, question: str = "what is in the picture?"):
    """Ask on the current image and wait until the whole chain has finished."""
    with qtbot.waitSignal(app.controller.ask_finished, timeout=WAIT_MS) as blocker:
        app.controller.ask(question)
    session, completed = blocker.args
    assert completed, app.window.messages.history
    return session


def export_current_coco(qtbot, app, out: Path):
    """Export the shown image as COCO (RLE) through the app's Export dialog, read the file back
    with pycocotools and return its one annotation and the COCO object."""
    from pycocotools.coco import COCO

    app.window.action_map["export"].trigger()
    dialog = app.files.export_dialog
    dialog.folder.setText(str(out))
    dialog.scope_current.setChecked(True)
    with qtbot.waitSignal(dialog.exported, timeout=WAIT_MS) as blocker:
        qtbot.waitUntil(dialog.export_button.isEnabled)  # greyed until the last run's thread is over
        dialog.export_button.click()
    coco = COCO(str(blocker.args[0].coco_file))
    (ann,) = coco.loadAnns(coco.getAnnIds())
    dialog.close()
    return ann, coco


def select_object_row(qtbot, app, row: int = 0) -> str:
    """A real click on the Objects panel's ``row`` (0: the top of the drawing order) selects that
    object; returns its uid."""
    view = app.window.objects_panel.view
    rect = view.visualRect(view.model().index(row, 0))
    QTest.mouseClick(view.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: app.workspace.current.selected is not None, timeout=WAIT_MS)
    return app.workspace.current.selected
