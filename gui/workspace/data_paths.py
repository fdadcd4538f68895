"""Where QMask keeps its own files (the per-user data folder), and which project the window
works on: ``--project FILE``, else the folder's own project in the data folder."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from PySide6 import QtCore

from engine.errors import ProjectError
from engine.project import Project

log = logging.getLogger(__name__)


def data_folder() -> Path:
    """QMask's per-user data folder (default projects, preferences): ``$QMASK_DATA_DIR``, else
    Qt's per-user app data folder, else ``~/.qmask``. Not created here."""
    env = os.environ.get("QMASK_DATA_DIR", "").strip()
    if env:
        return Path(env).expanduser()
    loc = QtCore.QStandardPaths.writableLocation(QtCore.QStandardPaths.StandardLocation.AppDataLocation)
    return Path(loc or Path.home() / ".qmask")


def image_folder(first: Path | None) -> Path:
    """The folder a window's images come from: ``first`` itself when it is a folder, else the
    folder of the image ``first`` (the current folder when None); resolved."""
    if first is None:
        return Path.cwd().resolve()
    first = Path(first).expanduser()
    return (first if first.is_dir() else first.parent).resolve()


def _project_file(folder: Path, data_dir: Path | None) -> Path:
    digest = hashlib.sha1(str(folder).encode("utf-8")).hexdigest()[:8]
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in folder.name) or "images"
    return (data_dir if data_dir is not None else data_folder()) / "projects" / f"{name}-{digest}.qmask"


def default_project_path(first: Path | None, data_dir: Path | None = None) -> Path:
    """Where the app keeps its project when ``--project`` is not given: one per image folder
    (:func:`image_folder`: a folder given, or the folder of the image given), in QMask's data
    folder (:func:`data_folder`), named after the folder plus a short hash of its resolved path.
    So opening the same folder again resumes its work, two folders never share a list, and
    nothing is written next to the user's images unasked. (A ``.qmask.json`` kept there by an
    older QMask is converted on first use.)
    """
    path = _project_file(image_folder(first), data_dir)
    old = path.with_name(path.name + ".json")
    return old if old.exists() and not path.exists() else path


def earlier_project_path(first: Path | None, data_dir: Path | None = None) -> tuple[Path, str]:
    """(project file, note): :func:`default_project_path`, or, for a folder that has none yet,
    the project QMask kept for it before projects were per folder (named after its *parent*
    folder, shared by the parent's folders) when that one holds images of this folder, so
    earlier work is found; the note then says so ("" otherwise)."""
    path = default_project_path(first, data_dir)
    if first is None or not Path(first).expanduser().is_dir() or path.exists():
        return path, ""
    folder = image_folder(first)
    earlier = _project_file(folder.parent, data_dir)
    if folder.parent == folder or not earlier.is_file():
        return path, ""
    try:
        with Project.open(earlier, read_only=True) as project:
            holds = project.holds_images_under(folder)
    except ProjectError as err:
        log.info("the earlier project %s was not looked at: %s", earlier, err)
        return path, ""
    if not holds:
        return path, ""
    return earlier, (f"Your earlier work on {folder.name} is in {earlier.name}, the project an earlier QMask kept "
                     f"for every folder in {folder.parent}: it is used for this folder as before (give --project "
                     "FILE to work in another).")


def open_project(path: str | None, first_image: Path | None) -> tuple[Project, str]:
    """(project, message): ``path`` or the folder's project (:func:`earlier_project_path`); a
    broken file is left alone and a fresh project next to it is used instead, with a message
    saying so. A version-1 ``.qmask.json`` is converted once into a ``.qmask`` beside it (the
    message says so)."""
    target, note = (Path(path).expanduser(), "") if path else earlier_project_path(first_image)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        project = Project.open_or_create(target, writer="app")
        if note:  # (told as the project's notice: information, not an error)
            project.notice = " ".join(m for m in (project.notice, note) if m)
        return project, project.notice
    except (ProjectError, OSError) as err:
        stem = target.name.removesuffix(".json").removesuffix(".qmask")
        fallback = target.with_name(stem + "-recovered.qmask")
        k = 1
        while fallback.exists():
            k += 1
            fallback = target.with_name(stem + f"-recovered{k}.qmask")
        try:
            fallback.parent.mkdir(parents=True, exist_ok=True)
            project = Project.create(fallback, writer="app")
        except (ProjectError, OSError):
            fallback = default_project_path(None).with_name(fallback.name)
            fallback.parent.mkdir(parents=True, exist_ok=True)
            project = Project.create(fallback, overwrite=True, writer="app")
        return project, f"{err} Your work now goes to {fallback}; the old file was not touched."
