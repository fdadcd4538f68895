"""What the prompt points mean, in words for the app: why fewer automatic points came back than
were asked for, and each point's description (its kind, who placed it, its heat relative to the
map's peak and its rank), instead of a raw heat value such as "3.62e-08".

Frames: points in (x, y) pixels of the displayed image; the heat map ``[Gh, Gw]`` on its grid.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..prompts import POSITIVE, Point
from .points import relative_heat, why_fewer_points

__all__ = ["point_count_note", "point_notes"]


def point_count_note(heat: np.ndarray | None, found: int, asked: int, sigma: float = 1.0,
                     suppression_radius: float = 2.0, min_relative_score: float = 0.2) -> str | None:
    """Why the map gave ``found`` automatic positive points when ``asked`` were asked for (the
    point options as given to :func:`~engine.imaging.points.extract_points`); None when it gave
    them all or there is no map."""
    if heat is None or found >= asked:
        return None
    why = why_fewer_points(heat, asked, sigma, suppression_radius, min_relative_score)
    head = f"{found} of {asked} automatic points"
    if why == "flat":
        return f"{head}: the heat map is the same everywhere, so it points nowhere. Click on the object instead."
    if why == "no_cells":
        return (f"{head}: points are kept more than {suppression_radius:g} cells apart on the "
                f"{heat.shape[0]} x {heat.shape[1]} map, and no cell is left that far from them.")
    if why == "below":
        return (f"{head}: the map has no other separate hot spot; once the area around each point is "
                f"taken out, nothing left reaches {min_relative_score:.0%} of its peak. Add points by clicking.")
    return None


def _ordinal(n: int) -> str:
    return {1: "", 2: "2nd ", 3: "3rd "}.get(n, f"{n}th ")


def point_notes(points: Sequence[Point], heat: np.ndarray | None,
                image_size: tuple[int, int] | None) -> tuple[str, ...]:
    """One description per point, in order: number, kind and what it asks of the mask, who placed
    it, the heat where it is as a share of the map's peak, and for automatic positive points their
    rank among them (by the heat they were picked for), then the position and what a click does."""
    heats = None
    if heat is not None and image_size is not None and len(points):
        heats = relative_heat(heat, np.array([(p.x, p.y) for p in points], dtype=np.float64), image_size)
    picked = sorted((p.score for p in points if p.source == "auto" and p.label == POSITIVE and p.score is not None),
                    reverse=True)
    notes = []
    for i, p in enumerate(points):
        positive = p.label == POSITIVE
        who = "automatic" if p.source == "auto" else "your"
        wish = "the mask should include this place" if positive else "the mask should leave this place out"
        lines = [f"#{i + 1} {who} {'positive' if positive else 'negative'} point: {wish}"]
        if heats is not None:
            lines.append(f"heat here: {heats[i]:.0%} of the map's peak")
        if p.source == "auto" and positive and p.score is not None:
            rank = 1 + sum(s > p.score for s in picked)
            lines.append(f"the {_ordinal(rank)}hottest of the {len(picked)} automatic points"
                         if len(picked) > 1 else "the map's hottest spot")
        lines.append(f"at ({p.x:.0f}, {p.y:.0f}) px")
        if p.source == "auto":
            lines.append("drag to move it (it becomes yours), click to remove it")
        notes.append("\n".join(lines))
    return tuple(notes)
