"""Opening images and folders: what runs on the store's thread (listing the folders, adding the
images to the project, reading their ids back) and what the GUI thread is handed (:class:`Opened`).

A folder of thousands of images is listed and added off the GUI thread, a chunk per query; the
GUI thread then only appends ids to the list (paths are read as rows are shown).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import ProjectError, QMaskError
from engine.imaging.images import list_images
from engine.project import Project


@dataclass
class Listing:
    """What the store's thread found and added: ``(id, stored path)`` of every image, in the
    user's order (a folder's in natural order)."""

    index: list[tuple[int, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # folders or files that could not be listed
    unnamed: list[tuple[str, str]] = field(default_factory=list)  # (name, why) of images a project cannot store


@dataclass
class Opened:
    """An opening as the GUI thread sees it once its rows are in the list."""

    added: Sequence  # the new rows' sessions (a SessionList: made as they are used)
    first: int  # list row of the first image found (-1: none)
    found: int  # images found (listed before, or new)
    errors: list[str]


def list_and_add(project: Project, paths: Iterable[str | Path], folders: bool = True) -> Listing:
    """List ``paths`` (with ``folders``: a folder's images in natural order) and add them to
    ``project`` (those it has already are left as they are). Runs on the store's thread."""
    listing = Listing()
    found: dict[Path, None] = {}  # ordered, without duplicates, in one pass
    for p in paths:
        if not folders:
            found[Path(p)] = None
            continue
        try:
            found.update(dict.fromkeys(list_images(Path(p))))
        except QMaskError as err:
            listing.errors.append(str(err))
    files = list(found)
    listing.unnamed = project.unstorable(files)  # names that are not UTF-8: said, the others added
    if listing.unnamed:
        files = [p for p in files if not project.unstorable([p])]
    if files:
        try:
            project.add_images(files)
            listing.index = [f for f in project.image_index_of(files) if f is not None]
        except ProjectError as err:
            listing.errors.append(str(err))
    return listing
