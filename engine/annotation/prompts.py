"""What the user gives the mask decoder for one image: points and an optional box.

Immutable, so an undo command can hold the state before and after an edit, and hashable, so a
segmentation already computed for a state can be shown again at once (undo, redo, reset).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..prompts import Box, Point


@dataclass(frozen=True)
class PromptState:
    points: tuple[Point, ...] = ()
    box: Box | None = None

    @property
    def empty(self) -> bool:
        return not self.points and self.box is None

    def key(self) -> tuple:
        """Identity for caching a segmentation: positions and labels, not timestamps or scores."""
        pts = tuple((round(p.x, 3), round(p.y, 3), p.label) for p in self.points)
        box = None if self.box is None else (self.box.x0, self.box.y0, self.box.x1, self.box.y1)
        return pts, box

    def with_points(self, points: tuple[Point, ...] | list[Point]) -> "PromptState":
        return replace(self, points=tuple(points))

    def with_box(self, box: Box | None) -> "PromptState":
        return replace(self, box=box)

    def without_point(self, index: int) -> "PromptState":
        return self.with_points(self.points[:index] + self.points[index + 1:])

    def with_point_moved(self, index: int, x: float, y: float) -> "PromptState":
        pts = list(self.points)
        pts[index] = pts[index].moved(x, y)
        return self.with_points(pts)
