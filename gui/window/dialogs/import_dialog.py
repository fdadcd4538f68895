"""File > Import dataset…: COCO, YOLO, LabelMe or PNG masks into the window's project.

The dataset is read and checked off the GUI thread (``engine.export.importers.read_dataset``);
bad input is reported with its file and line and nothing is written. It is then written in one
project write, in order with the window's own (``Workspace.write``), and its images are opened.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from engine.errors import ProjectError
from engine.export.imported import ImportReport, write_imported
from engine.export.importers import IMPORT_FORMATS, read_dataset

from gui.engine_thread.background import BackgroundTask
from gui.window.dialogs.task_runner import DialogRun


class ImportDialog(QtWidgets.QDialog):
    imported = QtCore.Signal(object)  # ImportReport
    import_failed = QtCore.Signal(str)

    def __init__(self, workspace, start_dir: Path | None = None, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import dataset")
        self.workspace = workspace
        self.report: ImportReport | None = None
        self._start = str(start_dir or Path.home())
        self.source = QtWidgets.QLineEdit()
        self.source.setPlaceholderText("COCO .json, YOLO data.yaml, or a dataset folder")
        pick_file = QtWidgets.QPushButton("File…")
        pick_file.clicked.connect(self._pick_file)
        pick_folder = QtWidgets.QPushButton("Folder…")
        pick_folder.clicked.connect(self._pick_folder)
        self.format = QtWidgets.QComboBox()
        self.format.addItems(["auto", *IMPORT_FORMATS])
        self.images = QtWidgets.QLineEdit()
        self.images.setPlaceholderText("where the dataset says (optional)")
        pick_images = QtWidgets.QPushButton("Browse…")
        pick_images.clicked.connect(self._pick_images)
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        self.buttons = QtWidgets.QDialogButtonBox()
        self.import_button = self.buttons.addButton("Import", QtWidgets.QDialogButtonBox.ButtonRole.AcceptRole)
        self.run = DialogRun(self, self.import_button, self.status)  # the import's thread
        self.buttons.addButton(QtWidgets.QDialogButtonBox.StandardButton.Close)
        self.import_button.clicked.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        source_row = QtWidgets.QHBoxLayout()
        source_row.addWidget(self.source, 1)
        source_row.addWidget(pick_file)
        source_row.addWidget(pick_folder)
        images_row = QtWidgets.QHBoxLayout()
        images_row.addWidget(self.images, 1)
        images_row.addWidget(pick_images)
        form = QtWidgets.QFormLayout(self)
        form.addRow("Dataset", source_row)
        form.addRow("Format", self.format)
        form.addRow("Images folder", images_row)
        form.addRow(self.status)
        form.addRow(self.buttons)
        self.resize(600, 180)

    def start(self) -> None:
        """Read the dataset in a background thread, then write it into the project."""
        if self.run.running:
            return
        source = self.source.text().strip()
        if not source:
            self.status.setText("Choose a dataset file or folder.")
            return
        fmt = self.format.currentText()
        images = self.images.text().strip() or None
        workspace = self.workspace

        def job(task: BackgroundTask) -> ImportReport:
            dataset = read_dataset(Path(source).expanduser(), fmt, images)
            task.say(f"writing {sum(len(i.instances) for i in dataset.images)} annotation(s) "
                     f"of {len(dataset.images)} image(s)")
            reports: list[ImportReport] = []
            if not workspace.write(lambda p: reports.append(write_imported(p, dataset)), wait=True) or not reports:
                raise ProjectError("The project could not be written; nothing was imported.")
            return reports[0]

        self.run.start(job, self._done, self._failed, "Reading the dataset…")

    @property
    def task(self) -> BackgroundTask | None:
        """The import's thread while it lives (None otherwise)."""
        return self.run.task

    def _done(self, report: ImportReport) -> None:
        self.report = report
        self.status.setText(str(report))
        self.imported.emit(report)

    def _failed(self, message: str) -> None:
        self.status.setText(message)
        self.import_failed.emit(message)

    def _pick_file(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Dataset file", self._start, "Datasets (*.json *.yaml *.yml);;All files (*)")
        if path:
            self.source.setText(path)

    def _pick_folder(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Dataset folder", self._start)
        if folder:
            self.source.setText(folder)

    def _pick_images(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Images folder", self._start)
        if folder:
            self.images.setText(folder)

    def done(self, result: int) -> None:  # noqa: D401 - Qt override: never leave a thread behind
        self.run.wait()
        super().done(result)
