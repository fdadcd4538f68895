"""Menu commands that open a dialog: open images/folder/project, export, import, models, help.

Dialogs are shown non-modally (``show``/``open``), never with ``exec``, so nothing blocks the
event loop (and tests can drive them). The last dialog of each kind is kept on the instance.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from engine.errors import ProjectError
from engine.imaging.images import IMAGE_EXTENSIONS
from engine.project import PROJECT_SUFFIX, Project

from gui.control.controller import Controller
from gui.control.wiring import connect_file_actions
from gui.window.dialogs.export_dialog import ExportDialog
from gui.window.dialogs.help_dialog import HelpDialog
from gui.window.dialogs.import_dialog import ImportDialog
from gui.window.dialogs.models_dialog import ModelsDialog
from gui.workspace.data_paths import earlier_project_path, open_project


class FileActions(QtCore.QObject):
    models_folder_chosen = QtCore.Signal(str)  # a folder chosen in the Models dialog ("": the caches)

    def __init__(self, controller: Controller) -> None:
        super().__init__(controller)
        self.controller = controller
        self.window = controller.window
        self.export_dialog: ExportDialog | None = None
        self.import_dialog: ImportDialog | None = None
        self.models_dialog: ModelsDialog | None = None
        self.help_dialog: HelpDialog | None = None
        connect_file_actions(self)

    def _start_dir(self) -> str:
        """Where the file dialogs open: the folder opened last (remembered between runs), else
        the shown image's folder, else the home folder."""
        last = self.controller.last_folder
        if last is not None and last.is_dir():
            return str(last)
        current = self.controller.workspace.current
        return str(current.path.parent) if current is not None else str(Path.home())

    def open_images(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in sorted(IMAGE_EXTENSIONS))
        files, _ = QtWidgets.QFileDialog.getOpenFileNames(self.window, "Open images", self._start_dir(),
                                                          f"Images ({patterns});;All files (*)")
        if files:
            self.controller.open_paths(files, background=True)

    def open_folder(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self.window, "Open folder", self._start_dir())
        if folder:
            self.open_folder_path(Path(folder))

    def open_folder_path(self, folder: Path) -> None:
        """Show a folder's images. On a folder's own project (no --project, no Open project…)
        the window moves to this folder's own project first, so each folder keeps its own list
        and work; on a project the user chose, the images are added to it."""
        c = self.controller
        if c.automatic_project:
            target, _note = earlier_project_path(folder)
            if target.resolve() != c.workspace.project.path.resolve():
                if not self.leave_project():
                    return
                project, note = open_project(None, folder)
                c.use_project(project, automatic=True)
                if note and note != project.notice:
                    c.show_error(note)
        c.open_paths([folder], background=True)

    def open_project(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self.window, "Open project", self._start_dir(),
                                                        f"QMask projects (*{PROJECT_SUFFIX} *.qmask.json);;All files (*)")
        if path:
            self.load_project(Path(path))

    def load_project(self, path: Path) -> bool:
        """Work on the project at ``path`` (made by ``qmask batch``, an import, another window):
        its images, most in need of review first, each with its objects and runs; the window's
        changes are written to it from now on (the project before is closed, all of it saved)."""
        c = self.controller
        if Path(path).expanduser().resolve() == c.workspace.project.path.resolve():
            return True  # (the one the window works on)
        if not self.leave_project():
            return False
        try:
            project = Project.open(path, writer="app")
        except ProjectError as err:
            c.show_error(str(err))
            return False
        c.use_project(project)
        return True

    def leave_project(self) -> bool:
        """Before the window moves to another project (which closes this one): an Export or Import
        dialog still running on this project keeps the window on it (False, and the user is told
        why); an idle one closes, since it names the project about to close."""
        dialogs = [d for d in (self.export_dialog, self.import_dialog) if d is not None]
        if any(d.run.running for d in dialogs):
            self.controller.show_message("An export or import of this project is still running: the window stays on "
                                         "this project until it ends.", "warning")
            return False
        for dialog in dialogs:
            dialog.reject()
        self.export_dialog = self.import_dialog = None
        return True

    def show_export(self) -> ExportDialog:
        ws = self.controller.workspace
        current = ws.current
        record = ws.project.find_image(current.path, records=False) if current is not None else None
        default_dir = (current.path.parent if current is not None else Path.home()) / "qmask-export"
        self.export_dialog = ExportDialog(ws.project, record, default_dir, self.window, settle=ws.drain)
        self.export_dialog.exported.connect(lambda s: self.controller.show_message(str(s), "info"))
        self.export_dialog.show()
        return self.export_dialog

    def show_import(self) -> ImportDialog:
        self.import_dialog = ImportDialog(self.controller.workspace, Path(self._start_dir()), self.window)
        self.import_dialog.imported.connect(self._imported)
        self.import_dialog.show()
        return self.import_dialog

    def _imported(self, report) -> None:
        """Open the imported images (those not found are listed too, for "Locate folder…")."""
        present = [p for p in report.paths if p.is_file()]
        missing = [p for p in report.paths if not p.is_file()]
        if present:
            self.controller.open_paths(present, background=True)
        if missing:
            self.controller.workspace.add_paths(missing)
            self.controller.relocator.check()
        self.controller.show_message(str(report), "info")

    def show_models(self) -> ModelsDialog:
        c = self.controller
        self.models_dialog = ModelsDialog(c.settings.preset, c.settings.sam_variant, c.models_dir, self.window)
        self.models_dialog.models_chosen.connect(self._models_chosen)
        self.models_dialog.open()
        return self.models_dialog

    def _models_chosen(self, folder: str) -> None:
        self.controller.models_dir = folder or None
        self.models_folder_chosen.emit(folder)
        self.controller.load_models()

    def show_help(self) -> HelpDialog:
        if self.help_dialog is None:
            self.help_dialog = HelpDialog(self.window)
        self.help_dialog.show()
        self.help_dialog.raise_()
        return self.help_dialog
