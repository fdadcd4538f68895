"""One background run at a time for a dialog (Export, Import): its button greyed while the run's
thread lives, its status line fed by the run's progress, its result and failure to the dialog, and
no thread left behind when the dialog closes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6 import QtCore, QtWidgets

from gui.engine_thread.background import BackgroundTask


class DialogRun(QtCore.QObject):
    """Runs ``job(task)`` on a :class:`BackgroundTask`; ``button`` comes back only once the
    thread is over (not with its result), so a click never finds it busy and is never dropped."""

    def __init__(self, dialog: QtWidgets.QDialog, button: QtWidgets.QAbstractButton, status: QtWidgets.QLabel) -> None:
        super().__init__(dialog)
        self.button, self.status = button, status
        self.task: BackgroundTask | None = None

    @property
    def running(self) -> bool:
        return self.task is not None and self.task.isRunning()

    def start(self, job: Callable[[BackgroundTask], Any], done: Callable[[Any], None],
              failed: Callable[[str], None], text: str) -> None:
        """Start ``job`` (the caller checked :attr:`running`), ``text`` shown meanwhile."""
        if self.task is not None:
            self._ended()  # the last run's thread is over; its 'ended' is still queued
        self.button.setEnabled(False)
        self.status.setText(text)
        self.task = BackgroundTask(job, self)
        self.task.progress.connect(self.status.setText)
        self.task.done.connect(done)
        self.task.failed.connect(failed)
        self.task.ended.connect(self._ended)
        self.task.start()

    def _ended(self) -> None:
        self.button.setEnabled(True)
        task, self.task = self.task, None
        if task is not None:
            task.dispose()  # not a bare deleteLater: see BackgroundTask.dispose

    def wait(self) -> None:
        """Until the run's thread is over (the dialog closes: never leave a thread behind)."""
        if self.task is not None:
            self.task.wait()
