"""Segmentation prompts: points and boxes, in image pixels.

Coordinate frame everywhere in QMask: (x, y) pixels of the image *as displayed* (EXIF
orientation applied), x to the right, y down, origin at the top-left corner of the top-left
pixel; a pixel's centre is at (col + 0.5, row + 0.5). Heat-map grid cells are converted to this
frame by :func:`engine.imaging.points.grid_to_pixels`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Literal

from .errors import PromptError

POSITIVE = 1
NEGATIVE = 0

Source = Literal["auto", "user"]


@dataclass(frozen=True)
class Point:
    """One prompt point. ``label`` is 1 (foreground) or 0 (background), never a score."""

    x: float
    y: float
    label: int = POSITIVE
    score: float | None = None  # heat-map value for automatic points, None for user points
    source: Source = "user"
    created: float = field(default_factory=time.time, compare=False)

    def __post_init__(self) -> None:
        if self.label not in (POSITIVE, NEGATIVE):
            raise PromptError(f"A point label must be 1 (positive) or 0 (negative), not {self.label!r}.")
        if self.source not in ("auto", "user"):
            raise PromptError(f"A point source must be 'auto' or 'user', not {self.source!r}.")

    def moved(self, x: float, y: float) -> "Point":
        """The same point at a new place; a moved automatic point becomes a user point."""
        return replace(self, x=float(x), y=float(y), source="user", created=time.time())


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in image pixels, (x0, y0) top-left and (x1, y1) bottom-right."""

    x0: float
    y0: float
    x1: float
    y1: float

    def __post_init__(self) -> None:
        if not (self.x1 > self.x0 and self.y1 > self.y0):
            raise PromptError("A box needs a positive width and height; drag from one corner to the other.")

    @classmethod
    def from_corners(cls, xa: float, ya: float, xb: float, yb: float) -> "Box":
        return cls(min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb))
