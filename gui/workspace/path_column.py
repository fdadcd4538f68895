"""The image list's paths, read as rows are used (see :class:`PathColumn`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gui.workspace.workspace import Workspace


class PathColumn(Sequence):
    """The list's image paths by row, read from the project a page at a time as rows are used:
    a 100,000-image project opens without reading or making 100,000 paths."""

    PAGE = 256

    def __init__(self, workspace: "Workspace") -> None:
        self._ws = workspace
        self._by_id: dict[int, Path] = {}

    def __len__(self) -> int:
        return len(self._ws.ids)

    def __getitem__(self, row):  # type: ignore[override]
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        ids = self._ws.ids
        row = range(len(ids))[row]  # IndexError as a list gives it; negative rows count from the end
        path = self._by_id.get(ids[row])
        if path is None:
            start = row - row % self.PAGE
            page = [i for i in ids[start:start + self.PAGE] if i not in self._by_id]
            project = self._ws.project
            for image_id, rel in self._ws._read(lambda: project.image_paths(page), {}).items():
                self._by_id[image_id] = project.abs_path(rel)
            path = self._by_id.setdefault(ids[row], project.folder / f"(image {ids[row]} is gone from the project)")
        return path

    def known(self, image_id: int) -> Path | None:
        """The path of an image if it was read already (no read)."""
        return self._by_id.get(image_id)

    def set(self, image_id: int, path: Path) -> None:
        self._by_id[image_id] = Path(path)
