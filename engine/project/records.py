"""The records of a project as plain Python objects: images, their questions, categories.

These are values: reading one from a :class:`~engine.project.store.Project` gives a copy, and a
change reaches the project file only through the store's write methods (one transaction each).

Frames and types:

- ``ImageRecord.path`` is relative to the project file's folder, ``/``-separated (absolute only
  when no relative path exists, e.g. another Windows drive).
- Width and height are the image *as displayed* (EXIF orientation applied); masks, points and
  boxes are in that frame, in (x, y) pixels (see :mod:`engine.prompts`).
- Masks are COCO compressed RLE dicts (:mod:`engine.imaging.masks`), decoded only when asked
  (:meth:`QuestionRecord.mask`). Heat maps are ``[G, G]`` float32 grids (cells, not pixels).
- Times are Unix seconds (float).
"""

from __future__ import annotations

import hashlib
import os
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Literal

import numpy as np

from ..imaging import masks as M
from ..imaging.rle import LazyRLE, RLEAttribute
from ..prompts import Box, Point
from ..vqa.question import normalise_question

__all__ = [
    "ImageStatus", "STATUSES", "Category", "QuestionRecord", "ImageRecord", "RelocateReport", "ImageRow", "Edit",
    "PreviousAnswer", "PREVIOUS_ANSWERS_KEPT",
    "record_from_chain", "file_sha256", "displayed_size", "normalise_question", "clean_label", "default_label",
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


DEFAULT_LABEL_WORDS = 3
DEFAULT_LABEL_CHARS = 40


def default_label(answer: str | None) -> str:
    """The label an annotation gets when nobody typed one: the answer's first words (at most
    :data:`DEFAULT_LABEL_WORDS`, :data:`DEFAULT_LABEL_CHARS` characters), never a whole sentence
    (a category name, and the file names some exports derive from it, stay short)."""
    text = " ".join(clean_label(answer or "").split()[:DEFAULT_LABEL_WORDS])
    return text if len(text) <= DEFAULT_LABEL_CHARS else text[:DEFAULT_LABEL_CHARS].rstrip()


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
        from ..errors import ImageError

        raise ImageError(f"Cannot read the size of {path}: {err}") from err
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


# ---------------------------------------------------------------------------------------------
# Records


@dataclass
class Category:
    """A label. ``id`` is stable (COCO ``category_id``); names are unique, case-sensitive."""

    id: int
    name: str
    color: tuple[int, int, int] | None = None  # RGB for overlays; None = palette colour


@dataclass(frozen=True)
class PreviousAnswer:
    """An answer a later one replaced, kept in its record: the app compares the two again when the
    image is reopened, and the provenance says what the map was like when it was written."""

    answer: str
    alpha: float  # the fusion weight of the map it was written from
    edited: bool  # the map's mask came from edited prompts (not the automatic points)
    time: float  # when it was written, seconds since the epoch


PREVIOUS_ANSWERS_KEPT = 20  # a record keeps this many replaced answers, the newest last


@dataclass
class QuestionRecord:
    """One question asked about one image, with everything needed to review and export it.

    ``mask_rle`` is the final mask (what is exported); ``auto_mask_rle`` the mask the chain
    produced from the automatic points, kept so the export can say how much a person changed
    it (:meth:`provenance_iou`). ``points`` are the prompt points as they are now (automatic
    ones keep ``source="auto"``, moved or added ones are ``"user"``); ``auto_points`` those
    the heat map gave. ``heatmap`` is the ``[G, G]`` Grad-CAM question map (float32).
    """

    question: str
    answer: str | None = None
    captions: list[str] = field(default_factory=list)
    itm_probability: float | None = None
    heatmap: np.ndarray | None = field(default=None, repr=False)
    auto_points: list[Point] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    mask_rle: dict | None = RLEAttribute()  # type: ignore[assignment]  # (may be given a LazyRLE)
    auto_mask_rle: dict | None = None
    mask_score: float | None = None  # EfficientSAM's predicted IoU of the chosen candidate
    mask_source: Literal["auto", "user", "import"] = "auto"
    label: str | None = None  # a Category name; None = the project's default category
    alpha: float = 0.5
    models: dict[str, str] = field(default_factory=dict)  # role -> model id
    random_weights: bool = False
    accepted: bool = False
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # pipeline notes (e.g. "segmentation failed")
    # The brush's add and erase layers over the model's mask (COCO RLE; None: no strokes), kept so a
    # reopened image has its strokes back; ``mask_rle`` is already the corrected mask.
    stroke_add_rle: dict | None = RLEAttribute()  # type: ignore[assignment]
    stroke_erase_rle: dict | None = RLEAttribute()  # type: ignore[assignment]
    box: Box | None = None  # the box prompt given with ``points`` (x, y image pixels)
    previous_answers: list[PreviousAnswer] = field(default_factory=list)  # oldest first
    # How many automatic positive points were asked for (None: not known, e.g. old projects or
    # imports): a reopened image can then still say why fewer came (point_count_note).
    points_asked: int | None = None
    _mask_cache: tuple[str, np.ndarray] | None = field(default=None, repr=False, compare=False)
    _priority_cache: tuple[Any, float] | None = field(default=None, repr=False, compare=False)
    _coverage_cache: tuple[str, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> str:
        return normalise_question(self.question)

    # masks --------------------------------------------------------------------------------
    def mask(self) -> np.ndarray | None:
        """The final mask, ``[H, W]`` bool, decoded once and cached.

        Read-only (the cache is shared): copy it to edit, then :meth:`set_mask` the copy.
        """
        pending = QuestionRecord.__dict__["mask_rle"].pending_mask(self)
        if pending is not None:  # not encoded yet: the mask itself (read-only)
            return pending
        if self.mask_rle is None:
            return None
        counts = self.mask_rle["counts"]
        if self._mask_cache is None or self._mask_cache[0] != counts:
            decoded = M.decode_rle(self.mask_rle)
            decoded.flags.writeable = False
            self._mask_cache = (counts, decoded)
        return self._mask_cache[1]

    def remember_coverage(self, coverage: np.ndarray) -> None:
        """The current mask's coverage of the heat-map grid (``[Gh, Gw]`` float, as
        :func:`engine.imaging.fusion.mask_to_grid` gives it), where the caller has it already: the
        review need then does not compute it again from the runs in each project write."""
        if self.mask_rle is not None:
            self._coverage_cache = (self.mask_rle["counts"], coverage)

    def known_coverage(self, grid_shape: tuple[int, int]) -> np.ndarray | None:
        """:meth:`remember_coverage`'s grid while the mask and the grid shape are the same, else None."""
        cached, rle = self._coverage_cache, self.mask_rle
        if cached is None or rle is None or cached[0] != rle["counts"] or cached[1].shape != tuple(grid_shape):
            return None
        return cached[1]

    def auto_mask(self) -> np.ndarray | None:
        return None if self.auto_mask_rle is None else M.decode_rle(self.auto_mask_rle)

    def set_mask(self, mask: np.ndarray | None, *, source: Literal["auto", "user", "import"] = "user",
                 score: float | None = None, encode_later: bool = False) -> None:
        """Replace the final mask (e.g. after the user's edit); marks the record updated.
        ``encode_later``: the mask is final and will not change (read-only), and its RLE is made
        where ``mask_rle`` is first read (the project's store thread, for the window's edits)."""
        if mask is None:
            self.mask_rle = None
        elif encode_later and not np.asarray(mask).flags.writeable:
            self.mask_rle = LazyRLE(mask)  # type: ignore[assignment]
        else:
            self.mask_rle = M.encode_rle(mask)
        self.mask_source = source
        self.mask_score = None if score is None else float(score)
        self.touch()

    def provenance_iou(self) -> float | None:
        """IoU between the automatic mask and the final one (1.0 = untouched); None if either is missing."""
        if self.mask_rle is None or self.auto_mask_rle is None:
            return None
        if self.mask_rle["counts"] == self.auto_mask_rle["counts"] and self.mask_rle["size"] == self.auto_mask_rle["size"]:
            return 1.0
        return M.mask_iou(self.auto_mask(), self.mask())

    @property
    def user_points(self) -> list[Point]:
        return [p for p in self.points if p.source == "user"]

    @property
    def edited(self) -> bool:
        """True when a person changed the points or the mask."""
        return bool(self.user_points) or self.mask_source == "user" or \
            [(_pkey(p)) for p in self.points if p.source == "auto"] != [_pkey(p) for p in self.auto_points]

    def touch(self) -> None:
        self.updated = time.time()


def _pkey(p: Point) -> tuple:
    return (round(p.x, 3), round(p.y, 3), p.label)


@dataclass
class ImageRecord:
    """One image of the project. ``path`` is relative to the project folder, ``/``-separated."""

    path: str
    width: int | None = None  # as displayed (EXIF applied); None until read
    height: int | None = None
    sha256: str | None = None
    status: ImageStatus = "pending"
    error: str | None = None  # why the image failed (user-facing sentence)
    questions: list[QuestionRecord] = field(default_factory=list)
    added: float = field(default_factory=time.time)
    id: int | None = field(default=None, compare=False)  # row id in the project store; None until stored

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    def find_question(self, question: str) -> QuestionRecord | None:
        key = normalise_question(question)
        for q in self.questions:
            if q.key == key:
                return q
        return None

    def upsert_question(self, record: QuestionRecord) -> QuestionRecord:
        """Add ``record``, replacing the record of the same question if there is one."""
        for i, q in enumerate(self.questions):
            if q.key == record.key:
                self.questions[i] = record
                return record
        self.questions.append(record)
        return record

    def remove_question(self, question: str) -> bool:
        key = normalise_question(question)
        before = len(self.questions)
        self.questions = [q for q in self.questions if q.key != key]
        return len(self.questions) != before

    def mark_failed(self, error: str) -> None:
        self.status, self.error = "failed", str(error)

    def mark_ok(self, width: int, height: int) -> None:
        self.status, self.error = "ok", None
        self.width, self.height = int(width), int(height)


@dataclass(frozen=True)
class ImageRow:
    """What the image list shows of an image, without its question records."""

    id: int
    path: str
    status: str  # pending, ok, failed
    error: str | None
    state: str  # new, asked, answered, edited, accepted, failed
    review: float  # review need in [0, 1]
    question: str | None  # the latest question, and its answer
    answer: str | None
    accepted: bool
    seq: int

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


# ---------------------------------------------------------------------------------------------
# From the pipeline


def record_from_chain(chain: Any, *, label: str | None = None, accepted: bool = False) -> QuestionRecord:
    """Build a QuestionRecord from an :class:`engine.results.ChainResult`.

    The chosen candidate becomes both the final and the automatic mask; points given to the
    decoder become ``points`` and the automatic ones ``auto_points``.
    """
    mask = chain.mask
    rle = None if mask is None else M.encode_rle(mask)
    seg = chain.segmentation
    score = None
    if seg is not None and seg.candidates:
        score = float(seg.candidates[chain.chosen].iou)
    points = list(seg.points) if seg is not None else list(chain.points)
    now = time.time()
    return QuestionRecord(
        question=chain.question,
        answer=chain.answer.answer if chain.answer is not None else None,
        captions=list(chain.captions.captions) if chain.captions is not None else [],
        itm_probability=float(chain.heatmap.itm_probability),
        heatmap=np.asarray(chain.heatmap.question_map, dtype=np.float32),
        auto_points=[p for p in chain.points if p.source == "auto"],
        points=points,
        mask_rle=rle,
        auto_mask_rle=None if rle is None else dict(rle),
        mask_score=score,
        mask_source="auto",
        label=label,
        alpha=float(chain.fusion.alpha) if chain.fusion is not None else 0.5,
        models=dict(chain.models),
        random_weights=bool(chain.random_weights),
        accepted=accepted,
        created=now,
        updated=now,
        timings=dict(chain.timings),
        notes=[str(n) for n in getattr(chain, "notes", ()) or ()],
        points_asked=getattr(chain, "points_asked", None),
    )


