"""Which models are on this machine; download the missing ones or choose a models folder.

Shown at start when a model is missing (and from Engine > Models…). The download runs in a
background thread with progress and Cancel (a cancel takes effect within a second or so, inside
the file being fetched; what was fetched is kept and the next download resumes it). Nothing here blocks the window.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtWidgets

from engine.models.manager import ROLES, format_size, locate_all

from gui.engine_thread.background import BackgroundTask
from gui.window.dialogs.wrapped_label import WrappedLabel

ROLE_NAMES = {"itm": "Heat map (BLIP ITM)", "caption": "Captions (BLIP)", "qa": "Answers (UnifiedQA)",
              "efficient_sam": "Masks (EfficientSAM)"}


def missing_roles(preset: str, sam_variant: str, models_dir: str | None) -> list[str]:
    locations = locate_all(preset, sam_variant, models_dir)
    return [role for role, loc in locations.items() if not loc.found]


class ModelsDialog(QtWidgets.QDialog):
    """``models_chosen(models_dir or "")`` when every model is found and the user continues."""

    models_chosen = QtCore.Signal(str)

    def __init__(self, preset: str, sam_variant: str, models_dir: str | None,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("QMask models")
        self.preset, self.sam_variant, self.models_dir = preset, sam_variant, models_dir
        self.task: BackgroundTask | None = None
        # Extra keyword arguments for engine.models.download.download_models (tests: a local server's base_url).
        self.download_options: dict[str, Any] = {}
        self.intro = WrappedLabel()
        self.table = QtWidgets.QTableWidget(len(ROLES), 3)
        self.table.setObjectName("modelsTable")
        self.table.setHorizontalHeaderLabels(["Model", "Status", "Where"])
        self.table.verticalHeader().hide()
        # Every column as wide as its text, on one line (a stretched last column cut the paths, or
        # wrapped them into a row too short for two lines); the dialog widens to show them all.
        self.table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.table.setWordWrap(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.progress_label = WrappedLabel("")
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.hide()
        self.download_button = QtWidgets.QPushButton("Download missing models")
        self.cancel_button = QtWidgets.QPushButton("Cancel download")
        self.cancel_button.hide()
        self.folder_button = QtWidgets.QPushButton("Choose models folder…")
        self.continue_button = QtWidgets.QPushButton("Use these models")
        self.continue_button.setDefault(True)
        close = QtWidgets.QPushButton("Close")
        self.download_button.clicked.connect(self.start_download)
        self.cancel_button.clicked.connect(self.cancel_download)
        self.folder_button.clicked.connect(self._choose_folder)
        self.continue_button.clicked.connect(self._continue)
        close.clicked.connect(self.reject)
        buttons = QtWidgets.QHBoxLayout()
        for b in (self.download_button, self.cancel_button, self.folder_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.continue_button)
        buttons.addWidget(close)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addWidget(self.table)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.progress)
        layout.addLayout(buttons)
        self.resize(760, 330)
        self.refresh()

    def refresh(self) -> list[str]:
        """Look for every model again; returns the missing roles."""
        locations = locate_all(self.preset, self.sam_variant, self.models_dir)
        missing = []
        for row, role in enumerate(ROLES):
            loc = locations[role]
            status = "found" + (" (random weights)" if loc.random else "") if loc.found else "missing"
            where = str(loc.path) if loc.found else (loc.note or f"fetch with: {loc.fetch_command()}")
            if loc.found and loc.size_bytes:
                where += f"  ({format_size(loc.size_bytes)})"
            for col, text in enumerate((f"{ROLE_NAMES[role]} — {loc.model_id}", status, where)):
                item = QtWidgets.QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(row, col, item)
            if not loc.found:
                missing.append(role)
        self.table.resizeColumnsToContents()
        self._fit_width()
        self.missing = missing
        folder = self.models_dir or "the Hugging Face cache and QMask's cache"
        self.intro.setText(
            f"{len(missing)} model(s) missing for preset <b>{self.preset}</b> (looked in {folder}). "
            "Download them (several GB, resumable), or choose a folder that holds itm/, caption/, qa/ and "
            "efficient_sam/." if missing else f"All models for preset <b>{self.preset}</b> are available.")
        self.download_button.setEnabled(bool(missing) and self.task is None)
        self.continue_button.setEnabled(not missing and self.task is None)
        return missing

    def _fit_width(self) -> None:
        """As wide as the table's columns (at most the screen's width: beyond it the table scrolls
        and each cell's tooltip has its whole text)."""
        table, margins = self.table, self.layout().contentsMargins() if self.layout() else QtCore.QMargins()
        want = table.horizontalHeader().length() + 2 * table.frameWidth() + margins.left() + margins.right()
        screen = self.screen()
        if screen is not None:
            want = min(want, screen.availableGeometry().width())
        if want > self.width():
            self.resize(want, self.height())

    def start_download(self) -> None:
        if self.task is not None:
            return
        from engine.models.download import download_models

        preset, variant, to = self.preset, self.sam_variant, self.models_dir
        options = dict(self.download_options)

        def job(task: BackgroundTask):
            return download_models(preset, variant, to=to, progress=False, say=task.say, cancel=task.cancelled,
                                   **options)

        self.task = BackgroundTask(job, self)
        self.task.progress.connect(self.progress_label.setText)
        self.task.done.connect(lambda _r: self.progress_label.setText("Download complete."))
        self.task.failed.connect(lambda msg: self.progress_label.setText(msg))
        self.task.was_cancelled.connect(lambda: self.progress_label.setText(
            "Download cancelled; it resumes where it stopped next time."))
        self.task.ended.connect(self._download_ended)
        self.progress.show()
        self.cancel_button.show()
        self.download_button.setEnabled(False)
        self.continue_button.setEnabled(False)
        self.task.start()

    def cancel_download(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.progress_label.setText("Cancelling…")

    def _download_ended(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.dispose()  # not a bare deleteLater: see BackgroundTask.dispose
        self.progress.hide()
        self.cancel_button.hide()
        self.refresh()

    def set_models_dir(self, folder: str | None) -> list[str]:
        self.models_dir = folder
        return self.refresh()

    def _choose_folder(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Models folder", self.models_dir or str(Path.home()))
        if folder:
            self.set_models_dir(folder)

    def _continue(self) -> None:
        if not self.refresh():
            self.models_chosen.emit(self.models_dir or "")
            self.accept()

    def done(self, result: int) -> None:  # noqa: D401 - Qt override
        if self.task is not None:
            self.task.cancel()
            self.task.wait()
        super().done(result)
