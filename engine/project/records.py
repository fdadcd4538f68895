"""The records of a project as plain Python objects: images, their objects and question runs,
categories.

These are values: reading one from a :class:`~engine.project.store.Project` gives a copy, and a
change reaches the project file only through the store's write methods (one transaction each).

Frames and types:

- ``ImageRecord.path`` is relative to the project file's folder, ``/``-separated (absolute only
  when no relative path exists, e.g. another Windows drive).
- Width and height are the image *as displayed* (EXIF orientation applied); masks, points and
  boxes are in that frame, in (x, y) pixels (see :mod:`engine.prompts`).
- Objects (:mod:`.objects`) hold masks as COCO compressed RLE dicts, decoded only when asked;
  question runs (:mod:`.runs`) hold heat maps as ``[G, G]`` float32 grids (cells, not pixels).
- Times are Unix seconds (float).
"""

from __future__ import annotations

import colorsys
import hashlib
import os
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal

from ..errors import ImageError
from ..vqa.question import normalise_question
from .objects import ObjectRecord
from .runs import QuestionRun

__all__ = [
    "ImageStatus", "STATUSES", "Category", "ImageRecord", "RelocateReport", "ImageRow", "Edit",
    "file_sha256", "displayed_size", "normalise_question", "clean_label", "palette_color",
]

ImageStatus = Literal["pending", "ok", "failed"]
STATUSES = ("pending", "ok", "failed")


def clean_label(name: str) -> str:
    """A category name as stored: control characters (newlines, tabs, ...), line and paragraph
    separators and invisible format characters become spaces (zero-width joiners, which emoji
    and some scripts need, stay), runs of spaces one space, ends stripped. Every class list of
    every export is then one name per line, and reads back as it was written."""
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") and c not in "\u200c\u200d"
                   else c for c in str(name))
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------
# Small helpers


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes (identity check when images move)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def displayed_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(W, H) of an image as displayed (EXIF orientation 5-8 swap the sides); reads the header only."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
            try:
                orientation = im.getexif().get(0x0112, 1)
            except Exception:  # a broken EXIF block is the loader's problem, not the size's
                orientation = 1
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise ImageError(f"Cannot read the size of {path}: {err}") from err
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


# ---------------------------------------------------------------------------------------------
# Records


@dataclass
class Category:
    """A class of the project's class list. ``id`` is stable (COCO ``category_id``, YOLO index
    order); names are unique, case-sensitive. ``color`` RGB, None: :func:`palette_color`."""

    id: int
    name: str
    color: tuple[int, int, int] | None = None

    @property
    def rgb(self) -> tuple[int, int, int]:
        """The colour objects of this class are drawn in."""
        return self.color if self.color is not None else palette_color(self.id)


def palette_color(index: int) -> tuple[int, int, int]:
    """A distinct, saturated RGB colour for class ``index`` (golden-ratio hue steps, so
    neighbouring ids never get near colours; the same id always gets the same colour)."""
    hue = (0.08 + int(index) * 0.618033988749895) % 1.0
    value = 0.95 if int(index) % 2 else 0.8
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, value)
    return int(r * 255), int(g * 255), int(b * 255)


@dataclass
class ImageRecord:
    """One image of the project with its objects (drawing order, bottom first) and its question
    runs (oldest first). ``path`` is relative to the project folder, ``/``-separated."""

    path: str
    width: int | None = None  # as displayed (EXIF applied); None until read
    height: int | None = None
    sha256: str | None = None
    status: ImageStatus = "pending"
    error: str | None = None  # why the image failed (user-facing sentence)
    objects: list[ObjectRecord] = field(default_factory=list)
    runs: list[QuestionRun] = field(default_factory=list)
    added: float = field(default_factory=time.time)
    id: int | None = field(default=None, compare=False)  # row id in the project store; None until stored

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    def find_run(self, question: str) -> QuestionRun | None:
        key = normalise_question(question)
        return next((r for r in self.runs if r.key == key), None)

    def find_object(self, uid: str) -> ObjectRecord | None:
        return next((o for o in self.objects if o.uid == uid), None)

    @property
    def done(self) -> bool:
        """Every object accepted (and there is at least one)."""
        return bool(self.objects) and all(o.accepted for o in self.objects)

    def mark_failed(self, error: str) -> None:
        self.status, self.error = "failed", str(error)

    def mark_ok(self, width: int, height: int) -> None:
        self.status, self.error = "ok", None
        self.width, self.height = int(width), int(height)


@dataclass(frozen=True)
class ImageRow:
    """What the image list shows of an image, without its objects and runs."""

    id: int
    path: str
    status: str  # pending, ok, failed
    error: str | None
    state: str  # new, asked, answered, edited, accepted, failed
    review: float  # review need in [0, 1]: the largest of its objects'
    question: str | None  # the latest question, and its answer
    answer: str | None
    accepted: bool  # every object accepted (the image is done)
    seq: int
    objects: int = 0  # how many objects, and how many of them accepted
    accepted_objects: int = 0

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name


@dataclass(frozen=True)
class Edit:
    """One entry of the append-only edit log."""

    id: int
    time: float
    image_id: int
    question_key: str | None
    object_uid: str | None
    source: str
    action: str
    writer: str
    detail: dict


@dataclass
class RelocateReport:
    """What :meth:`Project.relocate` did: relative paths found, not found, or found with other content."""

    found: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    hash_mismatch: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"{len(self.found)} image(s) found"]
        if self.not_found:
            parts.append(f"{len(self.not_found)} not found")
        if self.hash_mismatch:
            parts.append(f"{len(self.hash_mismatch)} with the same name but different content (left as they were)")
        return ", ".join(parts) + "."
