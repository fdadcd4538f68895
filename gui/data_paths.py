"""Where QMask keeps its own files: the per-user data folder and the automatic projects in it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from PySide6 import QtCore


def data_folder() -> Path:
    """QMask's per-user data folder (default projects, preferences): ``$QMASK_DATA_DIR``, else
    Qt's per-user app data folder, else ``~/.qmask``. Not created here."""
    env = os.environ.get("QMASK_DATA_DIR", "").strip()
    if env:
        return Path(env).expanduser()
    loc = QtCore.QStandardPaths.writableLocation(QtCore.QStandardPaths.StandardLocation.AppDataLocation)
    return Path(loc or Path.home() / ".qmask")


def default_project_path(first_image: Path | None, data_dir: Path | None = None) -> Path:
    """Where the app keeps its project when ``--project`` is not given.

    In QMask's data folder (:func:`data_folder`), named after the folder of the first image plus
    a short hash of its full path, so opening the same folder again resumes its work, and
    nothing is written next to the user's images unasked. (A ``.qmask.json`` kept there by an
    older QMask is converted on first use.)
    """
    if data_dir is None:
        data_dir = data_folder()
    folder = (first_image.parent if first_image is not None else Path.cwd()).resolve()
    digest = hashlib.sha1(str(folder).encode("utf-8")).hexdigest()[:8]
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in folder.name) or "images"
    path = data_dir / "projects" / f"{name}-{digest}.qmask"
    old = path.with_name(path.name + ".json")
    return old if old.exists() and not path.exists() else path
