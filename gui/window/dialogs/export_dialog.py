"""Ctrl+E: export the accepted masks of the current image or of all images."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from engine.export.bundle import ExportOptions, ExportSummary, run_export

from gui.engine_thread.background import BackgroundTask
from gui.window.dialogs.task_runner import DialogRun
from gui.window.dialogs.wrapped_label import WrappedLabel


class ExportDialog(QtWidgets.QDialog):
    exported = QtCore.Signal(object)  # ExportSummary
    export_failed = QtCore.Signal(str)

    def __init__(self, project, current_image=None, default_dir: Path | None = None,
                 parent: QtWidgets.QWidget | None = None, settle: Callable[[], None] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export masks")
        self.project = project
        # Waits until the app's queued project writes are in (the last click, the accept just
        # made): the export must read what the user sees. Called on the export's own thread.
        self.settle = settle
        self.current_image = current_image
        self.summary: ExportSummary | None = None

        self.scope_current = QtWidgets.QRadioButton("Current image")
        self.scope_all = QtWidgets.QRadioButton("All images")
        self.scope_all.setChecked(True)
        self.scope_current.setEnabled(current_image is not None)
        self.only_accepted = QtWidgets.QCheckBox("Only accepted masks")
        self.only_accepted.setChecked(True)
        self.coco = QtWidgets.QCheckBox("COCO instances JSON")
        self.coco.setChecked(True)
        self.coco_polygons = QtWidgets.QComboBox()
        self.coco_polygons.addItems(["RLE (pixel-exact)", "polygons (holes kept as keyholes)"])
        self.png = QtWidgets.QCheckBox("PNG masks (one label image per image)")
        self.png.setChecked(True)
        self.yolo = QtWidgets.QCheckBox("YOLO segmentation (labels, classes.txt, data.yaml)")
        self.labelme = QtWidgets.QCheckBox("LabelMe JSON (one file per image)")
        self.overlays = QtWidgets.QCheckBox("Overlay PNGs (image with heat map, mask, points)")
        self.overlays.setChecked(True)
        self.self_contained = QtWidgets.QCheckBox("Copy the images into each dataset (self-contained, upright)")
        self.self_contained.setToolTip("Each dataset gets its images, EXIF orientation applied, in its format's "
                                       "standard layout with relative paths, so it can be moved or shared; "
                                       "COCO then goes to coco/ (images/, annotations/instances_default.json)")
        self.folder = QtWidgets.QLineEdit(str(default_dir or Path.home() / "qmask-export"))
        browse = QtWidgets.QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.status = WrappedLabel("")  # the dialog grows to show all of it
        self.status.setObjectName("exportStatus")
        self.status.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QtWidgets.QDialogButtonBox()
        self.export_button = self.buttons.addButton("Export", QtWidgets.QDialogButtonBox.ButtonRole.AcceptRole)
        self.run = DialogRun(self, self.export_button, self.status)  # the export's thread
        self.buttons.addButton(QtWidgets.QDialogButtonBox.StandardButton.Close)
        self.export_button.clicked.connect(self.start)
        self.buttons.rejected.connect(self.reject)

        scope = QtWidgets.QHBoxLayout()
        scope.addWidget(self.scope_current)
        scope.addWidget(self.scope_all)
        folder = QtWidgets.QHBoxLayout()
        folder.addWidget(self.folder, 1)
        folder.addWidget(browse)
        coco_row = QtWidgets.QHBoxLayout()
        coco_row.addWidget(self.coco)
        coco_row.addWidget(self.coco_polygons)
        form = QtWidgets.QFormLayout(self)
        form.addRow("Images", scope)
        form.addRow("", self.only_accepted)
        form.addRow("Formats", coco_row)
        form.addRow("", self.png)
        form.addRow("", self.yolo)
        form.addRow("", self.labelme)
        form.addRow("", self.overlays)
        form.addRow("", self.self_contained)
        form.addRow("Folder", folder)
        form.addRow(self.status)
        form.addRow(self.buttons)
        self.resize(560, 300)

    def options(self) -> ExportOptions:
        images = None
        if self.scope_current.isChecked() and self.current_image is not None:
            images = (self.current_image,)
        return ExportOptions(out_dir=Path(self.folder.text()).expanduser(), coco=self.coco.isChecked(),
                             coco_polygons=self.coco_polygons.currentIndex() == 1, png_masks=self.png.isChecked(),
                             yolo=self.yolo.isChecked(), labelme=self.labelme.isChecked(),
                             overlays=self.overlays.isChecked(), only_accepted=self.only_accepted.isChecked(),
                             images=images, self_contained=self.self_contained.isChecked())

    @property
    def task(self) -> BackgroundTask | None:
        """The export's thread while it lives (None otherwise)."""
        return self.run.task

    def start(self) -> None:
        """Run the export in a background thread (the window stays usable)."""
        if self.run.running:
            return
        options = self.options()
        settle = self.settle

        def job(task: BackgroundTask) -> ExportSummary:
            if settle is not None:
                settle()
            return run_export(self.project, options, task.say)

        self.run.start(job, self._done, self._failed, "Exporting…")

    def _done(self, summary: ExportSummary) -> None:
        self.summary = summary
        self.status.setText(str(summary))
        self.exported.emit(summary)

    def _failed(self, message: str) -> None:
        self.status.setText(message)
        self.export_failed.emit(message)

    def _browse(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Export to folder", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def done(self, result: int) -> None:  # noqa: D401 - Qt override: never leave a thread behind
        self.run.wait()
        super().done(result)
