"""``qmask IMAGE --question Q --screenshot OUT.png``: ask, wait for every result, save the window, quit.

Works with ``QT_QPA_PLATFORM=offscreen``. Exit status 0 when the screenshot was written; 1 when
the models are missing, the image cannot be read, or the question fails (the message is
printed); 2 on timeout.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6 import QtCore, QtWidgets

TIMEOUT_S = 1800
SETTLE_MS = 300  # let the last replies paint before grabbing


class ScreenshotRun(QtCore.QObject):
    """Emits ``done(exit_code)`` once; ``run_app`` quits the event loop on it."""

    done = QtCore.Signal(int)

    def __init__(self, app, out: Path, timeout_s: float = TIMEOUT_S) -> None:
        super().__init__()
        self.app = app
        self.out = Path(out)
        self.exit_code = 1
        self.finished = False
        c = app.controller
        c.ask_finished.connect(self._on_ask_finished)
        c.error_shown.connect(self._on_error)
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._on_timeout)
        self._timer.start(int(timeout_s * 1000))

    def check_models(self) -> bool:
        from gui.window.dialogs.models_dialog import missing_roles

        s = self.app.options.settings
        missing = missing_roles(s.preset, s.sam_variant, self.app.controller.models_dir)
        if missing:
            print(f"qmask: cannot take a screenshot: model(s) missing: {', '.join(missing)}. "
                  f"Fetch them with 'qmask models download {s.preset}' or pass --models DIR.", file=sys.stderr)
            return False
        return True

    def _on_ask_finished(self, session, completed: bool) -> None:
        if not completed:
            self._finish(1, "the question did not complete")
            return
        QtCore.QTimer.singleShot(SETTLE_MS, self._grab)

    def _grab(self) -> None:
        window = self.app.window
        QtWidgets.QApplication.processEvents()
        pixmap = window.grab()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        if not pixmap.save(str(self.out), "PNG"):
            self._finish(1, f"could not write {self.out}")
            return
        print(f"qmask: screenshot saved to {self.out}")
        self._finish(0)

    def _on_error(self, message: str) -> None:
        self._finish(1, message)

    def _on_timeout(self) -> None:
        self._finish(2, "timed out waiting for the results")

    def _finish(self, code: int, message: str = "") -> None:
        if self.finished:
            return
        self.finished = True
        self._timer.stop()
        self.exit_code = code
        if message:
            print(f"qmask: screenshot failed: {message}", file=sys.stderr)
        self.done.emit(code)
