"""Short jobs off the GUI thread (downloads, exports): a QThread running one function.

``progress(text)`` may be called from the job; ``cancelled()`` tells it the user asked to stop.
Signals arrive on the GUI thread. Keep a reference to the task until ``ended`` fires; the app
waits for running tasks at exit.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any, Callable

from PySide6 import QtCore

from engine.errors import CancelledError, QMaskError

from .worker import describe_error


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

    def say(self, text: str) -> None:
        """For jobs: report progress, and stop here if the user cancelled."""
        self.progress.emit(str(text))
        if self._cancel.is_set():
            raise CancelledError("Cancelled.")

    def run(self) -> None:  # noqa: D401 - QThread override
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
