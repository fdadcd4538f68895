"""Short jobs off the GUI thread (downloads, exports): a QThread running one function.

``progress(text)`` may be called from the job; ``cancelled()`` tells it the user asked to stop.
Signals arrive on the GUI thread. Keep a reference to the task until ``ended`` fires, then
:meth:`BackgroundTask.dispose` of it (not a bare ``deleteLater``); the app waits for running
tasks at exit. While a task runs, Python's cyclic garbage collection happens on
the GUI thread only (``gui.engine_thread.gui_thread_gc``).
"""

from __future__ import annotations

import threading
import traceback
import warnings
from typing import Any, Callable

from PySide6 import QtCore

from engine.errors import CancelledError, QMaskError, describe_error

from gui.engine_thread import gui_thread_gc


class BackgroundTask(QtCore.QThread):
    progress = QtCore.Signal(str)
    done = QtCore.Signal(object)
    failed = QtCore.Signal(str)
    was_cancelled = QtCore.Signal()
    ended = QtCore.Signal()

    def __init__(self, job: Callable[["BackgroundTask"], Any], parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._job = job
        self._cancel = threading.Event()
        self.finished.connect(self.ended)

    def cancel(self) -> None:
        self._cancel.set()

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def dispose(self) -> None:
        """Wait for the thread, release the job and every slot connected to the task, then delete
        it. Call on the GUI thread, typically from the ``ended`` slot.

        The job and the slots (lambdas, often) hold references to the dialog that owns the task.
        Left to the task's destructor (a bare ``deleteLater``), releasing them can drop the
        dialog's last reference: the dialog is then destroyed from inside its child's destructor
        and deletes that child a second time, a double free seen later as "malloc_consolidate():
        unaligned fastbin chunk detected" or "pure virtual method called". Released here, the
        caller still holds the dialog.
        """
        self.wait()
        self._job = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # PySide warns for a signal nobody connected to
            for signal in (self.progress, self.done, self.failed, self.was_cancelled, self.ended):
                signal.disconnect()
        self.deleteLater()

    def say(self, text: str) -> None:
        """For jobs: report progress, and stop here if the user cancelled."""
        self.progress.emit(str(text))
        if self._cancel.is_set():
            raise CancelledError("Cancelled.")

    def start(self, *args) -> None:  # noqa: D401 - QThread override (GUI thread)
        gui_thread_gc.hold()  # released by run() when the job's Python code is done
        super().start(*args)

    def run(self) -> None:  # noqa: D401 - QThread override
        try:
            self._run_job()
        finally:
            gui_thread_gc.release()  # queued to the GUI thread: this thread runs no more Python

    def _run_job(self) -> None:
        try:
            result = self._job(self)
        except CancelledError:
            self.was_cancelled.emit()
        except BaseException as err:  # noqa: BLE001 - report, never crash the app
            _, message, _ = describe_error(err)
            if not isinstance(err, QMaskError):
                traceback.print_exc()
            self.failed.emit(message)
        else:
            self.done.emit(result)
