"""BackgroundTask.dispose releases what the task's job and slots hold (typically the dialog that
owns the task) on the GUI thread, before the task is deleted."""

from __future__ import annotations

import gc
import weakref

from PySide6 import QtCore, QtWidgets

from gui.engine_thread.background import BackgroundTask
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


class Owner:
    """Stands for the dialog: only the task's job and slots refer to it."""


def run_task(qtbot, parent: QtCore.QObject):
    owner = Owner()
    ref = weakref.ref(owner)
    task = BackgroundTask(lambda _task: owner, parent)
    task.done.connect(lambda _result, owner=owner: None)
    task.failed.connect(lambda _message, owner=owner: None)
    with qtbot.waitSignal(task.ended, timeout=10_000):
        task.start()
    return task, ref


def test_dispose_releases_the_job_and_the_slots_before_the_task_is_deleted(qtbot):
    # A dialog whose last reference went with its child task's destructor was destroyed inside
    # that destructor and deleted the task again (test_gui_models_dialog crashed that way).
    parent = QtWidgets.QWidget()
    task, owner = run_task(qtbot, parent)
    destroyed = []
    task.destroyed.connect(lambda *_: destroyed.append(True))
    gc.collect()
    assert owner() is not None  # held by the job and the slots until dispose
    task.dispose()
    assert owner() is None and not destroyed  # released here, by the caller, not by ~QThread
    qtbot.waitUntil(lambda: bool(destroyed), timeout=5000)  # then deleted later, as before
    assert parent.findChildren(BackgroundTask) == []


def test_dispose_with_signals_nobody_connected_to(qtbot):
    parent = QtCore.QObject()
    task = BackgroundTask(lambda _task: None, parent)
    with qtbot.waitSignal(task.ended, timeout=10_000):
        task.start()
    task.dispose()  # progress/was_cancelled have no slots: no warning, no error
    qtbot.waitUntil(lambda: parent.findChildren(BackgroundTask) == [], timeout=5000)
