"""A mask as editable polygons, and polygons back to a mask: what the app's Polygon tool edits.

Frames and types:
- A mask is ``[H, W]`` bool in image pixels of the displayed image.
- A shape is one connected part: :class:`engine.imaging.masks.Outline` (an outer ring and the
  rings of its holes). A ring is ``[N, 2]`` float64 (x, y) vertices, not closed (the last
  vertex joins the first), on the *corner* convention: pixel ``(col, row)`` covers
  ``[col, col+1] x [row, row+1]``, so an unsimplified ring runs along pixel edges. A pixel is
  inside a ring when its centre ``(col + 0.5, row + 0.5)`` is (:mod:`engine.imaging.raster`).
- An island inside a hole is a shape of its own; the mask is the union over shapes of
  "outer ring minus hole rings", so shapes may be filled in any order.

Tolerance 0 round-trips exactly; a tolerance ``t`` > 0 (Douglas-Peucker, in pixels) moves no
ring more than ``t`` from the mask's boundary, so only pixels within about ``t`` of the
boundary may change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import InputError
from .masks import Outline, _simplify, mask_outlines, polygon_area
from .raster import fill_ring_window

__all__ = ["Outline", "mask_to_shapes", "shapes_to_mask", "apply_shape_edit", "MIN_RING_VERTICES",
           "moved_vertex", "inserted_vertex", "deleted_vertex", "nearest_edge", "EditableShapes", "editable_shapes",
           "MAX_EDIT_VERTICES", "small_part_pixels"]

MIN_RING_VERTICES = 3  # fewer is no area: a ring never loses its third vertex
MAX_EDIT_VERTICES = 5000  # handles the Polygon tool shows at most: beyond that they cover the image
SMALL_PART_FRACTION = 1e-6  # parts and holes under this share of the image (12 px at 12 MP) are not edited...
SMALL_PART_MIN_PX = 4  # ...nor under this many pixels on any image
MAX_TOLERANCE_FRACTION = 1 / 250  # the tolerance is raised up to this share of the longer side (16 px at 4000)


def mask_to_shapes(mask: np.ndarray, tolerance_px: float = 0.0) -> list[Outline]:
    """Every 8-connected part of ``mask`` as an outer ring plus hole rings, simplified with
    ``tolerance_px`` (>= 0; 0 keeps every corner). Empty list for an empty mask."""
    t = _tolerance(tolerance_px)
    return mask_outlines(mask, t)


@dataclass(frozen=True)
class EditableShapes:
    """What the Polygon tool edits of a mask (:func:`editable_shapes`) and what it left out.

    ``shapes`` are simplified with ``tolerance_px`` (>= the one asked for); ``small`` parts and
    holes under ``min_area_px`` and the ``capped`` smallest parts past ``MAX_EDIT_VERTICES`` are
    not among them (their pixels stay as they are: an edit changes only the pixels it sweeps)."""

    shapes: list[Outline]
    asked_px: float
    tolerance_px: float
    min_area_px: float
    small: int
    capped: int

    @property
    def vertices(self) -> int:
        return _vertices(self.shapes)

    def note(self) -> str | None:
        """What the user should know about the handles shown, in words; None when it is the whole mask."""
        said = []
        if self.tolerance_px > self.asked_px:
            said.append(f"simplified with {self.tolerance_px:g} px instead of {self.asked_px:g} px")
        if self.small:
            said.append(f"{self.small:,} specks and pinholes under {self.min_area_px:g} px are not shown")
        if self.capped:
            said.append(f"only the largest parts are shown ({self.capped:,} smaller ones are not)")
        if not said:
            return None
        text = f"Polygon tool: {self.vertices:,} handles; " + "; ".join(said) + "."
        if self.small or self.capped:
            text += " Their pixels stay as they are; Edit > Clean-up removes islands and fills holes."
        return text + " A larger \"simplify\" gives fewer handles."


def small_part_pixels(shape_hw: tuple[int, int]) -> float:
    """The area under which a part or hole of an ``shape_hw`` (H, W) mask is a speck for editing."""
    return max(float(SMALL_PART_MIN_PX), round(shape_hw[0] * shape_hw[1] * SMALL_PART_FRACTION))


def editable_shapes(mask: np.ndarray, tolerance_px: float = 0.0,
                    max_vertices: int = MAX_EDIT_VERTICES) -> EditableShapes:
    """The mask's shapes as the Polygon tool edits them: specks and pinholes under
    :func:`small_part_pixels` left out; then, while more than ``max_vertices`` vertices remain, the
    tolerance doubled, up to ``MAX_TOLERANCE_FRACTION`` of the mask's longer side; then only the
    largest parts that fit. ``mask`` [H, W] bool; ``tolerance_px`` >= 0 as :func:`mask_to_shapes`."""
    asked = _tolerance(tolerance_px)
    m = np.asarray(mask, dtype=bool)
    min_area = small_part_pixels(m.shape)
    cleaned, small, capped = _editable_pixels(m, min_area, max_vertices // MIN_RING_VERTICES)
    exact = mask_outlines(cleaned, 0.0)  # exact rings, traced once; simplified at each tolerance
    tolerance, limit = asked, max(asked, max(m.shape) * MAX_TOLERANCE_FRACTION)
    shapes = _simplified(exact, tolerance)
    while _vertices(shapes) > max_vertices and tolerance < limit:
        tolerance = min(max(2 * tolerance, 1.0), limit)
        shapes = _simplified(exact, tolerance)
    if _vertices(shapes) > max_vertices:  # the largest parts first, as many as fit
        kept, total = [], 0
        for shape in sorted(shapes, key=lambda o: polygon_area(o.outer), reverse=True):
            n = _vertices([shape])
            if total + n <= max_vertices:
                kept.append(shape)
                total += n
        capped, shapes = capped + len(shapes) - len(kept), kept
    return EditableShapes(shapes, asked, tolerance, min_area, small, capped)


def _editable_pixels(mask: np.ndarray, min_area: float, max_parts: int) -> tuple[np.ndarray, int, int]:
    """(``mask`` without its parts (8-connected) and holes (4-connected background not touching
    the border) of fewer than ``min_area`` pixels, nor its parts past the ``max_parts`` largest;
    how many specks and pinholes went; how many parts past the largest). Done on the pixels
    before tracing: a noisy mask's specks would be most of the tracing's work."""
    import cv2

    def components(binary: np.ndarray, connectivity: int, keep_largest: int | None,
                   skip_border: bool) -> tuple[np.ndarray, int, int]:
        _, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=connectivity)
        area = stats[:, cv2.CC_STAT_AREA]
        small = area < min_area
        small[0] = False  # label 0: the pixels not in ``binary``
        if skip_border:  # the background around the mask is no hole
            x, y, h, w = stats[:, 0], stats[:, 1], *binary.shape
            small &= ~((x == 0) | (y == 0) | (x + stats[:, cv2.CC_STAT_WIDTH] == w)
                       | (y + stats[:, cv2.CC_STAT_HEIGHT] == h))
        over = np.zeros_like(small)
        if keep_largest is not None:
            rest = np.flatnonzero(~small)[1:]  # the parts kept so far, label 0 aside
            over[rest[np.argsort(-area[rest], kind="stable")][keep_largest:]] = True
        drop = small | over
        return (drop[labels] if drop.any() else np.zeros(binary.shape, bool)), int(small.sum()), int(over.sum())

    specks, parts, capped = components(mask, 8, max_parts, False)
    cleaned = mask & ~specks
    pinholes, holes, _ = components(~cleaned, 4, None, True)
    return cleaned | pinholes, parts + holes, capped


def _simplified(shapes: list[Outline], tolerance: float) -> list[Outline]:
    out = []
    for shape in shapes:
        outer = _simplify(shape.outer, tolerance)
        holes = tuple(h for h in (_simplify(r, tolerance) for r in shape.holes) if len(h) >= MIN_RING_VERTICES)
        if len(outer) >= MIN_RING_VERTICES:
            out.append(Outline(outer=outer, holes=holes))
    return out


def _vertices(shapes: Sequence[Outline]) -> int:
    return sum(len(s.outer) + sum(len(h) for h in s.holes) for s in shapes)


def shapes_to_mask(shape_hw: tuple[int, int], shapes: Sequence[Outline],
                   origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Rasterise ``shapes`` into an ``shape_hw`` (H, W) bool mask: outer rings filled, their
    holes cleared, unioned over shapes. ``origin`` (x, y): the image pixel at the result's
    top-left corner (to rasterise only a window of the image)."""
    h, w = int(shape_hw[0]), int(shape_hw[1])
    if h <= 0 or w <= 0:
        raise InputError(f"A mask size must be positive, not {w} x {h}.")
    shift = np.array(origin, dtype=np.float64)
    out = np.zeros((h, w), dtype=bool)
    for shape in shapes:
        r0, c0, part = fill_ring_window(_ring(shape.outer) - shift, h, w)
        if not part.size:
            continue
        part = part.copy()
        for hole in shape.holes:
            hr, hc, cut = fill_ring_window(_ring(hole) - shift - (c0, r0), *part.shape)
            part[hr:hr + cut.shape[0], hc:hc + cut.shape[1]] &= ~cut
        out[r0:r0 + part.shape[0], c0:c0 + part.shape[1]] |= part
    return out


def apply_shape_edit(mask: np.ndarray, before: Outline, after: Outline, shapes_after: Sequence[Outline],
                     tolerance_px: float = 0.0) -> tuple[int, int, np.ndarray] | None:
    """The mask's new pixels after one shape changed from ``before`` to ``after``, as a window
    ``(row0, col0, patch)`` (``patch`` [h, w] bool: the new values of rows ``row0:row0 + h``,
    columns ``col0:col0 + w``); None when no pixel changes. ``tolerance_px``: the one the rings
    were simplified with (:func:`mask_to_shapes`).

    Pixels take the polygons' value (the union of ``shapes_after``, which includes ``after``)
    where the edit changed their inside-ness, and near the edges it replaced (centres within
    ``tolerance_px + 1`` of them: there the mask strayed from the simplified ring, and would
    leave specks and pinholes along the new edges). Every other pixel keeps the mask's, so an
    edit of one vertex does not snap the rest of the boundary to the simplified rings (nor undo
    brush strokes finer than the tolerance). The window is the box of the rings' changed runs,
    so the work does not grow with the image."""
    m = np.asarray(mask, dtype=bool)
    h, w = m.shape
    chains = _edited_chains(before, after)
    if not chains:
        return None
    snap = float(tolerance_px) + 1.0 if tolerance_px > 0 else 0.0
    pts = np.concatenate([c for pair in chains for c in pair])
    x0, y0 = max(int(math.floor(pts[:, 0].min() - snap)), 0), max(int(math.floor(pts[:, 1].min() - snap)), 0)
    x1 = min(int(math.ceil(pts[:, 0].max() + snap)) + 1, w)
    y1 = min(int(math.ceil(pts[:, 1].max() + snap)) + 1, h)
    if x1 <= x0 or y1 <= y0:
        return None
    size = (y1 - y0, x1 - x0)
    changed = shapes_to_mask(size, [before], (x0, y0)) ^ shapes_to_mask(size, [after], (x0, y0))
    if snap > 0:
        for old, _new in chains:
            changed |= _near_polyline(old - (x0, y0), snap, size)
    patch = m[y0:y1, x0:x1].copy()
    patch[changed] = shapes_to_mask(size, shapes_after, (x0, y0))[changed]
    if np.array_equal(patch, m[y0:y1, x0:x1]):
        return None
    return y0, x0, patch


def _near_polyline(points: np.ndarray, radius: float, size: tuple[int, int]) -> np.ndarray:
    """``size`` bool: pixels whose centre is within ``radius`` of the open polyline ``points``
    ([N, 2] (x, y) in the window's pixels), each segment tested in its own box only."""
    out = np.zeros(size, dtype=bool)
    for a, b in zip(points[:-1], points[1:]):
        c0, r0 = max(int(math.floor(min(a[0], b[0]) - radius)), 0), max(int(math.floor(min(a[1], b[1]) - radius)), 0)
        c1 = min(int(math.ceil(max(a[0], b[0]) + radius)) + 1, size[1])
        r1 = min(int(math.ceil(max(a[1], b[1]) + radius)) + 1, size[0])
        if c1 <= c0 or r1 <= r0:
            continue
        cx = np.arange(c0, c1, dtype=np.float64)[None, :] + 0.5
        cy = np.arange(r0, r1, dtype=np.float64)[:, None] + 0.5
        d = b - a
        length2 = float(d @ d)
        t = 0.0 if length2 == 0 else np.clip(((cx - a[0]) * d[0] + (cy - a[1]) * d[1]) / length2, 0.0, 1.0)
        out[r0:r1, c0:c1] |= np.hypot(cx - a[0] - t * d[0], cy - a[1] - t * d[1]) <= radius
    return out


def _edited_chains(before: Outline, after: Outline) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each ring that differs: (old run, new run), the vertices that differ with the
    unchanged vertex at each end (whole closed rings when the holes were added or removed).

    Edges both versions share bound no change, so every pixel the edit swept lies in the box of
    these points: a vertex drag on a 12-megapixel mask rasterises a small window, not the part."""
    if len(before.holes) != len(after.holes):
        closed = [np.vstack((r, r[:1])) for r in map(_ring, (before.outer, after.outer, *before.holes, *after.holes))]
        return [(c, c) for c in closed]
    chains = []
    for a, b in zip((before.outer, *before.holes), (after.outer, *after.holes)):
        a, b = _ring(a), _ring(b)
        if a.shape == b.shape and np.array_equal(a, b):
            continue
        n = min(len(a), len(b))
        same = np.all(a[:n] == b[:n], axis=1)
        head = int(np.argmin(same)) if not same.all() else n
        tail_same = np.all(a[::-1][:n] == b[::-1][:n], axis=1)
        tail = int(np.argmin(tail_same)) if not tail_same.all() else n
        tail = min(tail, n - head)
        runs = [ring[np.arange(head - 1, len(ring) - tail + 1) % len(ring)] for ring in (a, b)]
        chains.append((runs[0], runs[1]))  # the changed run and its ends
    return chains


# ---------------------------------------------------------------------------------------------
# Vertex edits of one ring: pure, each returns a new ring.


def moved_vertex(ring: np.ndarray, index: int, xy: tuple[float, float]) -> np.ndarray:
    """``ring`` with vertex ``index`` at ``xy`` (x, y image pixels)."""
    out = _ring(ring).copy()
    out[index] = xy
    return out


def inserted_vertex(ring: np.ndarray, edge: int, xy: tuple[float, float]) -> np.ndarray:
    """``ring`` with a new vertex at ``xy`` on edge ``edge`` (from vertex ``edge`` to the next);
    the new vertex has index ``edge + 1``."""
    return np.insert(_ring(ring), edge + 1, xy, axis=0)


def deleted_vertex(ring: np.ndarray, index: int) -> np.ndarray:
    """``ring`` without vertex ``index``; refused (InputError) when only 3 would be left."""
    r = _ring(ring)
    if len(r) <= MIN_RING_VERTICES:
        raise InputError(f"A polygon keeps at least {MIN_RING_VERTICES} vertices: this one has {len(r)}. "
                         "Delete the part with the eraser instead.")
    return np.delete(r, index, axis=0)


def nearest_edge(ring: np.ndarray, xy: tuple[float, float]) -> tuple[int, float, tuple[float, float]]:
    """``(edge, distance, foot)``: the edge of ``ring`` nearest ``xy``, the distance to it and
    the nearest point on it (all in the ring's frame, image pixels)."""
    a = _ring(ring)
    b = np.roll(a, -1, axis=0)
    p = np.asarray(xy, dtype=np.float64)
    d = b - a
    length2 = (d ** 2).sum(1)
    t = np.clip(((p - a) * d).sum(1) / np.where(length2 > 0, length2, 1.0), 0.0, 1.0)
    foot = a + t[:, None] * d
    dist = np.hypot(*(foot - p).T)
    k = int(np.argmin(dist))
    return k, float(dist[k]), (float(foot[k, 0]), float(foot[k, 1]))


def _ring(ring: np.ndarray) -> np.ndarray:
    r = np.asarray(ring, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] != 2 or not np.isfinite(r).all():
        raise InputError(f"A polygon ring must be finite (x, y) pixel vertices, [N, 2]; got shape {r.shape}.")
    return r


def _tolerance(tolerance_px: float) -> float:
    try:
        t = float(tolerance_px)
    except (TypeError, ValueError):
        raise InputError(f"The polygon tolerance must be a number of pixels, not {tolerance_px!r}.") from None
    if not (t >= 0 and math.isfinite(t)):
        raise InputError(f"The polygon tolerance must be 0 or more pixels, not {tolerance_px!r}.")
    return t
