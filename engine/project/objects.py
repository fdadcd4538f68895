"""An object: one labelled instance of an image, the unit of annotation and of export.

An image holds any number of objects. Each has a stable ``uid`` (made when the object is made,
never reused), a category from the project's class list (``category``, a name; None while
unlabelled, exported as :data:`engine.export.DEFAULT_LABEL`), its mask (the model's mask with the
person's add/erase layers applied: ``mask_rle`` is the final one), the prompts it was decoded
from (points and box), where it came from (``source``: a question run, manual clicks, an import
or a batch, with the ``question`` whose run proposed it), whether a person accepted it, and its
place in the drawing order (``order``: higher is drawn on top).

A question run (:class:`engine.project.runs.QuestionRun`) proposes objects; an object stays a
*proposal* (``proposal=True``) until a person keeps, edits or accepts it. Asking again replaces
the run's untouched proposals and never changes an object a person kept, edited or accepted.

Frames: masks, points and boxes in (x, y) pixels of the image as displayed; masks as COCO
compressed RLE dicts, decoded only when asked (:meth:`ObjectRecord.mask`).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..imaging import masks as M
from ..imaging.rle import LazyRLE, RLEAttribute
from ..prompts import Box, Point

__all__ = ["ObjectRecord", "ObjectSource", "OBJECT_SOURCES", "MaskSource", "new_uid"]

ObjectSource = Literal["question", "manual", "import", "batch"]
OBJECT_SOURCES = ("question", "manual", "import", "batch")
MaskSource = Literal["auto", "user", "import"]


def new_uid() -> str:
    """A new object id: 16 hex digits of a random UUID (unique across processes and machines, so
    the app and a batch writing one project never give two objects the same id)."""
    return uuid.uuid4().hex[:16]


@dataclass
class ObjectRecord:
    """One instance: see the module docstring.

    ``auto_mask_rle`` is the mask the model first gave (kept so an export can say how much a
    person changed it, :meth:`provenance_iou`); ``auto_points`` the points it was decoded from.
    ``review`` and ``reasons`` are the object's review need in [0, 1] and why, as the store
    computed them at the last write (:mod:`engine.project.review`).
    """

    uid: str = field(default_factory=new_uid)
    category: str | None = None
    mask_rle: dict | None = RLEAttribute()  # type: ignore[assignment]  # (may be given a LazyRLE)
    auto_mask_rle: dict | None = None
    mask_score: float | None = None  # EfficientSAM's predicted IoU of the chosen candidate
    mask_source: MaskSource = "auto"
    points: list[Point] = field(default_factory=list)
    auto_points: list[Point] = field(default_factory=list)
    box: Box | None = None
    stroke_add_rle: dict | None = RLEAttribute()  # type: ignore[assignment]
    stroke_erase_rle: dict | None = RLEAttribute()  # type: ignore[assignment]
    source: ObjectSource = "manual"
    question: str | None = None  # the question whose run proposed it (None: manual or imported)
    accepted: bool = False
    proposal: bool = False
    order: int = 0
    review: float = 0.0
    reasons: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)  # imported extras (e.g. COCO iscrowd)
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    _mask_cache: tuple[str, np.ndarray] | None = field(default=None, repr=False, compare=False)
    _coverage_cache: tuple[str, np.ndarray] | None = field(default=None, repr=False, compare=False)

    # masks --------------------------------------------------------------------------------
    def mask(self) -> np.ndarray | None:
        """The final mask, ``[H, W]`` bool, decoded once and cached. Read-only (shared)."""
        pending = ObjectRecord.__dict__["mask_rle"].pending_mask(self)
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

    def auto_mask(self) -> np.ndarray | None:
        return None if self.auto_mask_rle is None else M.decode_rle(self.auto_mask_rle)

    def set_mask(self, mask: np.ndarray | None, *, source: MaskSource = "user", score: float | None = None,
                 encode_later: bool = False) -> None:
        """Replace the final mask. ``encode_later``: the mask is final and read-only, and its RLE
        is made where ``mask_rle`` is first read (the project's store thread, for the app)."""
        if mask is None:
            self.mask_rle = None
        elif encode_later and not np.asarray(mask).flags.writeable:
            self.mask_rle = LazyRLE(mask)  # type: ignore[assignment]
        else:
            self.mask_rle = M.encode_rle(mask)
        self.mask_source = source
        self.mask_score = None if score is None else float(score)
        self.touch()

    def _mask_identity(self) -> Any:
        """What identifies the current mask without encoding it: its RLE counts, or the LazyRLE
        object it is still waiting in (replaced, never changed, so its identity is the mask's)."""
        value = self.__dict__.get("_mask_rle_value")
        return value if isinstance(value, LazyRLE) or value is None else value["counts"]

    def remember_coverage(self, coverage: np.ndarray) -> None:
        """The mask's coverage of the heat-map grid (``[Gh, Gw]`` float32), where the caller has it
        already: the review need then need not compute it again from the runs."""
        key = self._mask_identity()
        if key is not None:
            self._coverage_cache = (key, coverage)

    def known_coverage(self, grid_shape: tuple[int, int]) -> np.ndarray | None:
        cached, key = self._coverage_cache, self._mask_identity()
        if cached is None or key is None or cached[1].shape != tuple(grid_shape):
            return None
        same = cached[0] is key or (isinstance(key, str) and cached[0] == key)
        if not same and isinstance(cached[0], LazyRLE) and isinstance(key, str):
            same = cached[0]._rle is not None and cached[0]._rle["counts"] == key  # the same mask, encoded since
        return cached[1] if same else None

    def provenance_iou(self) -> float | None:
        """IoU of the automatic and the final mask (1.0 = untouched); None if either is missing."""
        if self.mask_rle is None or self.auto_mask_rle is None:
            return None
        if self.mask_rle["counts"] == self.auto_mask_rle["counts"] and self.mask_rle["size"] == self.auto_mask_rle["size"]:
            return 1.0
        return M.mask_iou(self.auto_mask(), self.mask())

    @property
    def mask_size(self) -> tuple[int, int] | None:
        """(H, W) of the mask, or None: read without decoding or encoding it."""
        pending = ObjectRecord.__dict__["mask_rle"].pending_mask(self)
        if pending is not None:
            return pending.shape
        rle = self.mask_rle
        return None if rle is None else (int(rle["size"][0]), int(rle["size"][1]))

    @property
    def has_mask(self) -> bool:
        """There is a mask (checked without encoding one that waits in a LazyRLE)."""
        return self.__dict__.get("_mask_rle_value") is not None

    @property
    def edited(self) -> bool:
        """A person changed its prompts or its mask."""
        return self.mask_source == "user" or any(p.source == "user" for p in self.points) or \
            [_pkey(p) for p in self.points if p.source == "auto"] != [_pkey(p) for p in self.auto_points]

    @property
    def touched(self) -> bool:
        """A person kept, edited, labelled or accepted it: asking again must leave it alone."""
        return self.accepted or not self.proposal or self.edited

    def touch(self) -> None:
        self.updated = time.time()


def _pkey(p: Point) -> tuple:
    return (round(p.x, 3), round(p.y, 3), p.label)
