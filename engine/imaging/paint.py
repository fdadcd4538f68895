"""Brush strokes and mask clean-up, pure numpy/OpenCV on full-resolution masks.

Frames and types:
- A mask is ``[H, W]`` bool in image pixels of the displayed image; pixel ``(col, row)`` covers
  ``[col, col + 1) x [row, row + 1)`` (:mod:`engine.prompts`), so its centre is
  ``(col + 0.5, row + 0.5)``.
- A stroke is a polyline of ``(x, y)`` image-pixel points and a radius ``r`` in image pixels.
  A pixel is *under the brush* when its centre is within ``r`` of the polyline (the disc of
  radius ``r`` swept along it). A single point is a disc.
- A stroke is returned as a *patch* ``(y0, x0, patch)``: ``patch`` is the ``[h, w]`` bool
  window of the image starting at row ``y0``, column ``x0``, clipped to the image, so a stroke
  on a 12-megapixel image never copies the whole mask.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import cv2
import numpy as np

from ..errors import InputError

__all__ = ["stroke_patch", "fill_holes", "remove_islands", "keep_largest"]

# The brush is cut along pixel-centre rows: a capsule (a segment's swept disc) is convex, so each
# (segment, row) pair crosses it in one interval of x. Pixels well inside that interval are filled
# as runs; those within a hair of its ends are decided by _within itself, so ties (a centre exactly
# r away, common with pixel-centre points and whole radii) come out as in the definition.

# Pairs are handled this many at a time: small arrays are reused by the allocator, large ones cost
# fresh pages on every stroke.
_BLOCK = 4096


def stroke_patch(points: Sequence[tuple[float, float]], radius: float,
                 shape: tuple[int, int]) -> tuple[int, int, np.ndarray] | None:
    """The pixels under a round brush of ``radius`` swept along ``points`` in an image of
    ``shape`` ``(H, W)``: ``(y0, x0, patch)`` with ``patch`` ``[h, w]`` bool, or None when the
    stroke misses the image entirely. A pixel is under the brush when :func:`_within` holds for
    its centre and one of the polyline's segments (a single point ``p`` is the segment ``p``-``p``)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        raise InputError("A brush stroke needs at least one point.")
    if not np.isfinite(pts).all():
        raise InputError("A brush stroke's points must be finite (x, y) image pixels.")
    r = float(radius)
    if not (r > 0 and np.isfinite(r)):
        raise InputError(f"The brush radius must be a positive number of pixels, not {radius!r}.")
    h, w = int(shape[0]), int(shape[1])
    x0 = max(int(np.floor(pts[:, 0].min() - r)), 0)
    y0 = max(int(np.floor(pts[:, 1].min() - r)), 0)
    x1 = min(int(np.ceil(pts[:, 0].max() + r)) + 1, w)
    y1 = min(int(np.ceil(pts[:, 1].max() + r)) + 1, h)
    if x1 <= x0 or y1 <= y0:
        return None
    a, b = (pts[:1], pts[:1]) if len(pts) == 1 else (pts[:-1], pts[1:])
    # Rounding in _section moves a distance by ~1e-16 of the coordinates' size: a centre more than
    # this margin inside (outside) a capsule is certainly in (out) by _within.
    margin = 1e-7 * (1.0 + np.abs(pts).max() + r + max(h, w))
    radii = np.array([[r + margin], [r - margin if r > margin else np.nan]])  # outer, inner
    segments = _Segments.of(a, b)
    # The rows whose centres are within r + margin of each segment's height span.
    first = np.maximum(np.ceil(np.minimum(a[:, 1], b[:, 1]) - radii[0] - 0.5), y0).astype(np.int64)
    last = np.minimum(np.floor(np.maximum(a[:, 1], b[:, 1]) + radii[0] - 0.5), y1 - 1).astype(np.int64)
    pairs = np.cumsum(np.maximum(last - first + 1, 0))
    if pairs[-1] == 0:
        return y0, x0, np.zeros((y1 - y0, x1 - x0), dtype=bool)
    cuts = np.unique(np.searchsorted(pairs, np.arange(0, pairs[-1], _BLOCK), side="right"))
    pw = x1 - x0
    m = (y1 - y0) * pw + 1  # a run is start * m + length
    runs, fringe = [], []
    for s0, s1 in zip(cuts, np.append(cuts[1:], len(a))):
        seg, row = _ranges(first[s0:s1], last[s0:s1])
        seg += s0
        (olo, ilo), (ohi, ihi) = _columns(*_section(segments, seg, row + 0.5, radii), x0, x1)
        ilo, ihi = np.maximum(ilo, olo), np.minimum(ihi, ohi)
        sure = ilo <= ihi
        start = (row[sure] - y0) * pw + (ilo[sure] - x0)
        runs.append(_merge(start * m + (ihi[sure] - ilo[sure] + 1), m))  # (merged here: fewer to sort)
        ilo[~sure], ihi[~sure] = ohi[~sure] + 1, ohi[~sure]  # no sure interior: all of it is fringe
        # The fringe, [olo, ilo) and (ihi, ohi], pixel by pixel.
        k, col = _ranges(np.concatenate([olo, ihi + 1]), np.concatenate([ilo - 1, ohi]))
        k %= len(seg)
        hit = _within(col + 0.5, row[k] + 0.5, a[seg[k]], b[seg[k]], r)
        fringe.append((row[k[hit]] - y0) * pw + (col[hit] - x0))
    patch = _runs((y1 - y0, pw), _merge(np.concatenate(runs), m))
    patch.reshape(-1)[np.concatenate(fringe)] = True
    return y0, x0, patch


def _within(cx: np.ndarray, cy: np.ndarray, a: np.ndarray, b: np.ndarray, r: float) -> np.ndarray:
    """Whether points ``(cx, cy)`` are within ``r`` of segments ``a``-``b`` (``[n, 2]``): the
    squared distance to the nearest point of the segment (t clamped to [0, 1]) against ``r * r``."""
    dx, dy = b[:, 0] - a[:, 0], b[:, 1] - a[:, 1]
    px, py = cx - a[:, 0], cy - a[:, 1]
    length2 = dx * dx + dy * dy
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(length2 > 0, np.clip((px * dx + py * dy) / length2, 0.0, 1.0), 0.0)
    ex, ey = px - t * dx, py - t * dy
    return ex * ex + ey * ey <= r * r


def _ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every integer of the ranges ``[lo, hi]`` (none when ``hi < lo``): ``(k, value)`` with
    ``k`` the index of its range."""
    n = np.maximum(hi - lo + 1, 0)
    k = np.repeat(np.arange(len(n)), n)
    start = np.cumsum(n) - n
    return k, np.arange(len(k)) - (start - lo)[k]


class _Segments(NamedTuple):
    """Per segment: its ends and the terms of its band's strips in :func:`_section`."""
    ax: np.ndarray
    ay: np.ndarray
    bx: np.ndarray
    by: np.ndarray
    along: np.ndarray  # the along strip 0 <= dx*u + dy*v <= |d|^2 is u in along*v + [end_lo, end_hi]
    end_lo: np.ndarray
    end_hi: np.ndarray
    across: np.ndarray  # the across strip |dx*v - dy*u| <= rho*|d| is u in across*v +- rho*width
    width: np.ndarray

    @classmethod
    def of(cls, a: np.ndarray, b: np.ndarray) -> _Segments:
        dx, dy = b[:, 0] - a[:, 0], b[:, 1] - a[:, 1]
        length = np.sqrt(dx * dx + dy * dy)
        # A component under 1e-100 |d| becomes that (a tilt far below the margin) so that the
        # strips' bounds are finite; a zero-length segment has no band (NaN terms).
        tiny = 1e-100 * length
        with np.errstate(all="ignore"):
            dx, dy = np.where(np.abs(dx) < tiny, tiny, dx), np.where(np.abs(dy) < tiny, tiny, dy)
            end = length * length / dx
            return cls(a[:, 0].copy(), a[:, 1].copy(), b[:, 0].copy(), b[:, 1].copy(), -dy / dx,
                       np.minimum(end, 0), np.maximum(end, 0), dx / dy, length / np.abs(dy))


def _section(s: _Segments, seg: np.ndarray, y: np.ndarray, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The x intervals ``[lo, hi]`` ``[len(rho), n]`` where the lines at heights ``y`` ``[n]``
    cross the capsules of radii ``rho`` ``[k, 1]`` around segments ``seg``, NaN where they miss
    (fmin and fmax skip it): the union of the band's and the end discs' intervals."""
    v = y - s.ay[seg]  # u = x - ax, v = y - ay
    ax = s.ax[seg]
    with np.errstate(invalid="ignore"):
        u = s.along[seg] * v
        blo, bhi = u + s.end_lo[seg], u + s.end_hi[seg]
        u = s.across[seg] * v
        half = rho * s.width[seg]
        blo, bhi = np.maximum(blo, u - half), np.minimum(bhi, u + half)
        band = blo <= bhi
        lo, hi = np.where(band, ax + blo, np.nan), np.where(band, ax + bhi, np.nan)
        for cx, cv in ((ax, v), (s.bx[seg], y - s.by[seg])):
            half = np.sqrt(rho * rho - cv * cv)
            lo, hi = np.fmin(lo, cx - half), np.fmax(hi, cx + half)
    return lo, hi


def _columns(lo: np.ndarray, hi: np.ndarray, x0: int, x1: int) -> tuple[np.ndarray, np.ndarray]:
    """The columns ``[clo, chi]`` of the patch's span ``[x0, x1)`` whose centres lie in ``[lo, hi]``."""
    clo = np.fmin(np.fmax(np.ceil(lo - 0.5), x0), x1).astype(np.int64)  # (NaN: a miss, x0 > x0 - 1)
    chi = np.fmin(np.fmax(np.floor(hi - 0.5), x0 - 1), x1 - 1).astype(np.int64)
    return clo, chi


def _merge(keys: np.ndarray, m: int) -> np.ndarray:
    """Runs given as ``start * m + length`` -> the same pixels as sorted runs that neither overlap
    nor touch, in the same form."""
    if len(keys) == 0:
        return keys
    keys = np.sort(keys)
    start = keys // m
    reach = np.maximum.accumulate(start + keys % m)  # the furthest end so far (exclusive)
    first = np.flatnonzero(np.concatenate([[True], start[1:] > reach[:-1]]))  # of each merged run
    start = start[first]
    return start * m + (reach[np.append(first[1:], len(keys)) - 1] - start)


def _runs(shape: tuple[int, int], keys: np.ndarray) -> np.ndarray:
    """A ``shape`` bool array set on the merged runs ``keys`` (``start * (h * w + 1) + length``,
    ``start`` a row-major index), written once as alternating gaps and runs."""
    m = shape[0] * shape[1] + 1
    edges = np.empty(2 * len(keys) + 1, dtype=np.int64)
    edges[0:-1:2] = keys // m
    edges[1:-1:2] = edges[0:-1:2] + keys % m
    edges[-1] = m - 1
    fill = np.zeros(len(edges), dtype=bool)
    fill[1::2] = True
    return np.repeat(fill, np.diff(edges, prepend=0)).reshape(shape)


def _check(mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 2 or min(m.shape) < 1:
        raise InputError(f"A mask must be a 2-D [H, W] array, not shape {m.shape}.")
    return m if m.dtype == np.bool_ else m != 0


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``[H, W]`` bool -> the mask with every hole filled: background not 4-connected to the
    image border becomes foreground (the 4/8 pair, so a diagonal gap in a ring still encloses)."""
    m = _check(mask)
    h, w = m.shape
    padded = np.zeros((h + 2, w + 2), dtype=np.uint8)  # a background frame: the border joins one region
    padded[1:-1, 1:-1] = m
    flood = np.zeros((h + 4, w + 4), dtype=np.uint8)
    cv2.floodFill(padded, flood, (0, 0), 2, flags=4)
    return padded[1:-1, 1:-1] != 2


def _components(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-connected components: labels ``[H, W]`` int32 and each label's area (label 0 = background)."""
    # (connectedComponentsWithStats is 3x slower at 12 MP than labels and a bincount)
    n, labels = cv2.connectedComponents(m.view(np.uint8), connectivity=8)
    return labels, np.bincount(labels.ravel(), minlength=n)


def remove_islands(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    """``[H, W]`` bool -> the mask without its 8-connected parts smaller than ``min_pixels``."""
    m = _check(mask)
    if int(min_pixels) < 1:
        raise InputError(f"The smallest island to keep must be at least 1 pixel, not {min_pixels}.")
    labels, areas = _components(np.ascontiguousarray(m))
    keep = areas >= int(min_pixels)
    keep[0] = False
    return keep[labels]


def keep_largest(mask: np.ndarray) -> np.ndarray:
    """``[H, W]`` bool -> only the mask's largest 8-connected part (the first of equals); an
    empty mask stays empty."""
    m = _check(mask)
    labels, areas = _components(np.ascontiguousarray(m))
    if len(areas) < 2:
        return np.zeros_like(m)
    return labels == 1 + int(np.argmax(areas[1:]))
