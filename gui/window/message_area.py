"""A non-modal message banner above the canvas: errors say what to do; the app keeps running.

Never a modal dialog for an error: nothing blocks, and tests read ``current_text``. An
optional action button offers the fix (e.g. "Models…" for a missing model).
"""

from __future__ import annotations

import logging
from typing import Callable

from PySide6 import QtCore, QtWidgets

log = logging.getLogger(__name__)

LEVEL_STYLES = {
    "error": "background:#5c1f1f; color:#ffe9e6; border:1px solid #a33;",
    "warning": "background:#5a4712; color:#fff4d6; border:1px solid #b8901e;",
    "info": "background:#1f3a5c; color:#e6f0ff; border:1px solid #3a6ea5;",
}


class MessageArea(QtWidgets.QFrame):
    shown = QtCore.Signal(str, str)  # level, text

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageArea")
        self.text = QtWidgets.QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action_button = QtWidgets.QPushButton()
        self.action_button.hide()
        close = QtWidgets.QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.dismiss)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.action_button)
        layout.addWidget(close)
        self._action: Callable[[], None] | None = None
        self.action_button.clicked.connect(self._run_action)
        self.level = ""
        self.history: list[tuple[str, str]] = []
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.dismiss)
        self.hide()

    @property
    def current_text(self) -> str:
        return self.text.text() if self.isVisibleTo(self.parentWidget()) else ""

    def show_message(self, text: str, level: str = "error", action_text: str | None = None,
                     action: Callable[[], None] | None = None, timeout_ms: int | None = None) -> None:
        """Show ``text``; info messages fade after a few seconds, errors stay until dismissed."""
        self.level = level
        self.history.append((level, text))
        getattr(log, "error" if level == "error" else "info")("%s", text)
        self.text.setText(text)
        self.setStyleSheet(f"#messageArea {{{LEVEL_STYLES.get(level, LEVEL_STYLES['info'])} border-radius:4px;}}"
                           "#messageArea QLabel { background: transparent; border: none; }")
        self._action = action
        self.action_button.setVisible(action is not None)
        if action_text:
            self.action_button.setText(action_text)
        self.show()
        if timeout_ms is None:
            timeout_ms = 6000 if level == "info" else 0
        if timeout_ms:
            self._timer.start(timeout_ms)
        else:
            self._timer.stop()
        self.shown.emit(level, text)

    def dismiss(self) -> None:
        self._timer.stop()
        self.hide()

    def _run_action(self) -> None:
        if self._action is not None:
            self._action()
