"""Status bar: engine device, preset and models, a random-weights badge, progress with Cancel, the
cursor's image pixel and, with the Brush and Eraser tools, the brush's radius."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from gui.engine_thread.requests import ModelsInfo


class EngineStatusBar(QtWidgets.QStatusBar):
    cancel_requested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizeGripEnabled(False)
        self.stage_label = QtWidgets.QLabel("")
        self.stage_label.setObjectName("stageLabel")
        self.progress = QtWidgets.QProgressBar()
        self.progress.setObjectName("engineProgress")
        self.progress.setMaximumWidth(180)
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.setToolTip("Stop the running model call (Esc); a question not yet answered is taken back")
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.cursor_label = QtWidgets.QLabel("")
        self.cursor_label.setMinimumWidth(90)
        self.brush_label = QtWidgets.QLabel("")  # the brush's size, with the Brush and Eraser tools only
        self.brush_label.setObjectName("brushLabel")
        self.brush_label.setToolTip("The brush's radius in image pixels ([ and ]: size)")
        self.brush_label.hide()
        self.engine_label = QtWidgets.QLabel("models: loading…")
        self.engine_label.setObjectName("engineLabel")
        self.random_badge = QtWidgets.QLabel("RANDOM WEIGHTS: answers and masks are noise")
        self.random_badge.setObjectName("randomBadge")
        self.random_badge.setStyleSheet("#randomBadge { background:#c0392b; color:white; font-weight:bold;"
                                        " padding:2px 8px; border-radius:3px; }")
        self.random_badge.setToolTip("These models were made by 'qmask models make-random' for testing. "
                                     "Download the published ones with 'qmask models download'.")
        self.random_badge.hide()
        self.addWidget(self.stage_label)
        self.addWidget(self.progress)
        self.addWidget(self.cancel_button)
        self.addPermanentWidget(self.brush_label)
        self.addPermanentWidget(self.cursor_label)
        self.addPermanentWidget(self.random_badge)
        self.addPermanentWidget(self.engine_label)
        self.set_busy(False)

    def set_models(self, info: ModelsInfo) -> None:
        names = ", ".join(f"{role}: {mid}" for role, mid in sorted(info.models.items())) or "models loaded"
        self.engine_label.setText(f"{info.device} · preset {info.preset} · {len(info.models)} models loaded")
        self.engine_label.setToolTip(names)
        self.random_badge.setVisible(info.random_weights)

    def set_engine_text(self, text: str, tip: str = "") -> None:
        self.engine_label.setText(text)
        self.engine_label.setToolTip(tip)

    def set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if not busy:
            self.stage_label.setText("")
            self.progress.setValue(0)

    def set_progress(self, stage: str, fraction: float) -> None:
        self.stage_label.setText(stage)
        if fraction < 0:
            self.progress.setRange(0, 0)  # busy indicator
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(round(fraction * 1000)))

    def set_cursor(self, xy) -> None:
        self.cursor_label.setText("" if xy is None else f"x {xy[0]:.0f}  y {xy[1]:.0f}")

    def set_brush(self, radius: float | None) -> None:
        """The brush's radius in image pixels; None (a tool without a brush) hides it."""
        self.brush_label.setVisible(radius is not None)
        if radius is not None:
            self.brush_label.setText(f"Brush radius {radius:.0f} px")
