"""Images that moved: point a project's missing images at the folder they are in now."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ..errors import ProjectError
from .records import RelocateReport, file_sha256
from .store import Project

__all__ = ["relocate"]


def relocate(project: Project, new_folder: str | os.PathLike[str], *, verify_hash: bool = True,
             only_missing: bool = True) -> RelocateReport:
    """Find the missing images under ``new_folder``: by their old relative path first (its
    longest tail that exists there), then by file name anywhere under it. A match whose SHA-256
    differs from the recorded one is refused. The new paths are written in one transaction.
    """
    root = Path(new_folder).expanduser().absolute()
    if not root.is_dir():
        raise ProjectError(f"{root} is not a folder.")
    by_name: dict[str, list[Path]] = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            by_name.setdefault(f, []).append(Path(dirpath) / f)
    report = RelocateReport()
    targets = project.missing_images() if only_missing else list(project.iter_images(records=False))
    moves: list[tuple[int, str]] = []
    for img in targets:
        rel_parts = PurePosixPath(img.path).parts
        candidates: list[Path] = []
        for k in range(len(rel_parts)):
            tail = [part for part in rel_parts[k:] if part not in ("..", "/")]
            if tail:
                c = root.joinpath(*tail)
                if c.is_file():
                    candidates.append(c)
                    break
        candidates += [c for c in sorted(by_name.get(img.name, [])) if c not in candidates]
        chosen, mismatch = None, False
        for c in candidates:
            if verify_hash and img.sha256 and file_sha256(c) != img.sha256:
                mismatch = True
                continue
            chosen = c
            break
        if chosen is None:
            (report.hash_mismatch if mismatch else report.not_found).append(img.path)
            continue
        moves.append((int(img.id), project.rel_path(chosen)))  # type: ignore[arg-type]
        report.found.append(img.path)
    if moves:
        project.move_images(moves)
    return report
