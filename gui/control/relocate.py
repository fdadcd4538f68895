"""Images that moved: a banner offers "Locate folder…", the project follows them there.

When a project is opened (or an image is selected) whose files are not where the project says,
the message banner says so with a *Locate folder…* button. The button asks for a folder
(``choose_folder``, a plain function so tests pass the folder without a modal dialog) and calls
:meth:`gui.workspace.workspace.Workspace.relocate`, which matches images by their old relative path, then
by name (a recorded SHA-256 must match), saves the project atomically and moves the sessions.
Images still missing stay listed, greyed, and selecting one says so instead of failing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6 import QtCore, QtWidgets

from engine.errors import ProjectError
from engine.project import RelocateReport

from gui.workspace.session import ImageSession

# (parent, title, start folder) -> chosen folder, or "" when the user cancelled.
FolderChooser = Callable[[QtWidgets.QWidget, str, str], str]

LOCATE_TEXT = "Locate folder…"


def ask_for_folder(parent: QtWidgets.QWidget, title: str, start: str) -> str:
    return QtWidgets.QFileDialog.getExistingDirectory(parent, title, start)


def missing_text(count: int) -> str:
    if count == 1:
        return "1 image of this project is not where it was"
    return f"{count} images of this project are not where they were"


class ImageRelocator(QtCore.QObject):
    """``relocated(report)`` fires after a relocation (sessions moved, project saved)."""

    relocated = QtCore.Signal(object)  # RelocateReport

    def __init__(self, controller, choose_folder: FolderChooser | None = None) -> None:
        super().__init__(controller)
        self.controller = controller
        self.workspace = controller.workspace
        self.choose_folder: FolderChooser = choose_folder or ask_for_folder

    # ------------------------------------------------------------------ telling the user
    def check(self) -> int:
        """Look at the disk again; show the banner when images are missing. Returns how many."""
        missing = self.workspace.missing_sessions(recheck=True)
        if missing:
            self.controller.show_message(f"{missing_text(len(missing))}: use “{LOCATE_TEXT}” to choose the "
                                         "folder they are in now.", "warning", LOCATE_TEXT, self.locate)
        return len(missing)

    def tell_missing(self, session: ImageSession) -> None:
        """The image the user selected is not on disk: say so, offer to locate it."""
        others = len(self.workspace.missing_sessions()) - 1
        more = f" ({others} other image{'s' if others != 1 else ''} too)" if others > 0 else ""
        self.controller.show_message(f"{session.name} is not at {session.path}: it was moved or deleted{more}. "
                                     f"Use “{LOCATE_TEXT}” to choose the folder it is in now.", "warning",
                                     LOCATE_TEXT, self.locate)

    # ------------------------------------------------------------------ doing it
    def start_folder(self) -> str:
        """Where the folder chooser opens: the nearest existing folder above a missing image."""
        for session in self.workspace.missing_sessions():
            for parent in session.path.parents:
                if parent.is_dir():
                    return str(parent)
        return str(self.workspace.project.folder)

    def locate(self) -> RelocateReport | None:
        """Ask for the folder, then relocate; None when the user cancelled the chooser."""
        folder = self.choose_folder(self.controller.window, "Folder the project's images are in now",
                                    self.start_folder())
        if not folder:
            return None
        return self.relocate_to(Path(folder))

    def relocate_to(self, folder: Path) -> RelocateReport | None:
        """Point the missing images at ``folder``; the banner tells what was found."""
        try:
            report, moved = self.workspace.relocate(folder)
        except ProjectError as err:
            self.controller.show_error(str(err))
            return None
        for session, old_key in moved:
            self.controller.rekey(old_key, session.key)
        still = self.workspace.missing_sessions()
        text = f"Found {len(report.found)} of the missing images in {folder}."
        if report.hash_mismatch:
            text += (f" {len(report.hash_mismatch)} file(s) there have the right name but other content, "
                     "so they were not used.")
        if still:
            self.controller.show_message(f"{text} {len(still)} image(s) still missing: they stay greyed in the "
                                         f"list; “{LOCATE_TEXT}” again for another folder.", "warning",
                                         LOCATE_TEXT, self.locate)
        else:
            self.controller.show_message(f"{text} The project now points there.", "info")
        current = self.workspace.current
        if current is not None and any(session is current for session, _ in moved):
            self.controller.show_current(current)  # read it now: it was missing a moment ago
        self.relocated.emit(report)
        return report
