"""Salient prompt points from a heat map, and the grid <-> pixel mapping.

Frames:
- *grid*: a heat map ``heat[row, col]`` of shape ``[Gh, Gw]`` (24 x 24 for BLIP-large); a cell
  index is ``(col, row)``, col along x, row along y. Fractional indices are allowed; the centre
  of cell ``(c, r)`` is at ``(c, r)`` in this frame.
- *pixels*: ``(x, y)`` of the image as displayed, origin at the top-left corner of the top-left
  pixel (see :mod:`engine.prompts`). BLIP squashes the image to a square without keeping the
  aspect ratio, so x and y scale separately: ``x = (col + 0.5) * W / Gw``,
  ``y = (row + 0.5) * H / Gh``.

Point picking (the EfficientSAM-enhanced heat map): blur the map, take its maximum as a point,
subtract a decaying bump around it, repeat. Unlike the system this was specified from, a point's
score is kept apart from its label (EfficientSAM needs label == 1 exactly). ``within`` restricts
the picking to some cells (one hot region of :mod:`engine.imaging.regions`, one point set per
object); the map outside them still shapes the blur.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..prompts import NEGATIVE, POSITIVE, Point

# Relative contrast below which a map counts as flat (max - min <= FLAT_RTOL * max(|max|, |min|)).
FLAT_RTOL = 1e-9


@dataclass(frozen=True)
class GridPoints:
    """Points in the grid frame, best first.

    cols, rows: ``[N]`` float64 cell indices (integers as floats; col = x index, row = y index).
    scores: ``[N]`` float32, the (residual) blurred map value at the cell when it was picked, in
    the map's own units; non-increasing.
    """

    cols: np.ndarray
    rows: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return int(self.cols.shape[0])


def _check_map(heat: np.ndarray, name: str = "heat map") -> np.ndarray:
    arr = np.asarray(heat)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InputError(f"The {name} must be a 2-D grid [rows, cols], not an array of shape {arr.shape}.")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
            or arr.dtype == np.bool_):
        raise InputError(f"The {name} must hold numbers, not {arr.dtype}.")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"The {name} holds NaN or infinite values; it cannot be used to place points.")
    return arr


def _check_nonneg(value: float, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v) or v < 0:
        raise InputError(f"{name} must be a finite number >= 0, not {value!r}.")
    return v


def _check_count(value: int, name: str) -> int:
    try:
        ok = not isinstance(value, bool) and int(value) == value and value >= 0
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise InputError(f"{name} must be a whole number >= 0, not {value!r}.")
    return int(value)


def _blur_matrix(n: int, sigma: float) -> np.ndarray:
    """[n, n] row-normalised Gaussian smoothing matrix (truncated at 3 sigma).

    Normalising each row by the weights that fall inside the grid (normalised convolution)
    keeps a constant map constant and does not darken the border cells.
    """
    if sigma == 0:
        return np.eye(n)
    idx = np.arange(n)
    d = idx[:, None] - idx[None, :]
    w = np.exp(-0.5 * (d / sigma) ** 2)
    w[np.abs(d) > math.ceil(3 * sigma)] = 0.0
    return w / w.sum(axis=1, keepdims=True)


def blur(heat: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Gaussian blur of a ``[Gh, Gw]`` map, sigma in cells; returns ``[Gh, Gw]`` float64."""
    arr = _check_map(heat)
    sigma = _check_nonneg(sigma, "sigma")
    ky = _blur_matrix(arr.shape[0], sigma)
    kx = _blur_matrix(arr.shape[1], sigma)
    return ky @ arr @ kx.T


def _is_flat(arr: np.ndarray) -> bool:
    hi, lo = float(arr.max()), float(arr.min())
    return hi - lo <= FLAT_RTOL * max(abs(hi), abs(lo)) or hi == lo


def _pick(work: np.ndarray, num_points: int, suppression_radius: float, stop_below: float,
          excluded: np.ndarray | None = None, tiebreak: np.ndarray | None = None,
          tie_tol: float = 0.0, stops: list[str] | None = None) -> tuple[list[int], list[int], list[float]]:
    """Greedy peak picking on ``work`` (>= 0, modified in place).

    A picked cell's value ``v`` is removed as a Gaussian bump ``v * exp(-d^2 / 2 r^2)`` (r the
    suppression radius), clipped at 0, and every cell within distance r of it becomes ineligible,
    so no two picks are ever within r of each other. Stops at ``num_points``, when no eligible
    cell is left, or when the best eligible value is <= 0 or below ``stop_below``.
    Cells within ``tie_tol`` of the best count as tied and go to the largest ``tiebreak``
    (else row-major first); the result is then sorted by value, best first. ``stops`` gets why
    picking stopped: ``"count"``, ``"no_cells"`` (all within r of a pick) or ``"below"``.
    """
    gh, gw = work.shape
    rr, cc = np.mgrid[0:gh, 0:gw]
    eligible = np.ones(work.shape, dtype=bool) if excluded is None else ~excluded
    rows: list[int] = []
    cols: list[int] = []
    scores: list[float] = []
    stop = "count"
    while len(rows) < num_points:
        if not eligible.any():
            stop = "no_cells"
            break
        masked = np.where(eligible, work, -np.inf)
        best = float(masked.max())
        if best <= 0 or best < stop_below:
            stop = "below"
            break
        if tiebreak is None:
            flat_idx = int(np.argmax(masked))
        else:
            near = masked >= best - tie_tol
            flat_idx = int(np.argmax(np.where(near, tiebreak, -np.inf)))
        r, c = divmod(flat_idx, gw)
        rows.append(r)
        cols.append(c)
        value = float(work[r, c])
        scores.append(value)
        d2 = (rr - r) ** 2 + (cc - c) ** 2
        if suppression_radius > 0:
            work -= value * np.exp(-0.5 * d2 / suppression_radius ** 2)
            np.clip(work, 0.0, None, out=work)
        eligible &= d2 > suppression_radius ** 2
    if stops is not None:
        stops.append(stop)
    order = sorted(range(len(rows)), key=lambda i: -scores[i])  # stable: only tie picks move
    return [rows[i] for i in order], [cols[i] for i in order], [scores[i] for i in order]


def _as_grid_points(rows: list[int], cols: list[int], scores: list[float]) -> GridPoints:
    return GridPoints(cols=np.asarray(cols, dtype=np.float64), rows=np.asarray(rows, dtype=np.float64),
                      scores=np.asarray(scores, dtype=np.float32))


def _check_within(within: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """``within`` as a ``[Gh, Gw]`` bool array of the map's shape (None stays None)."""
    if within is None:
        return None
    arr = np.asarray(within)
    if arr.dtype != np.bool_:
        raise InputError(f"within must be a boolean [rows, cols] grid mask, not {arr.dtype}.")
    if arr.shape != tuple(shape):
        raise InputError(f"within has shape {arr.shape} but the heat map has {tuple(shape)}.")
    return arr


def _check_common(num_points: int, sigma: float, suppression_radius: float,
                  min_relative_score: float) -> tuple[int, float, float, float]:
    num_points = _check_count(num_points, "num_points")
    sigma = _check_nonneg(sigma, "sigma")
    suppression_radius = _check_nonneg(suppression_radius, "suppression_radius")
    try:
        mrs = float(min_relative_score)
    except (TypeError, ValueError):
        mrs = math.nan
    if not (0.0 <= mrs <= 1.0):
        raise InputError(f"min_relative_score must be between 0 and 1, not {min_relative_score!r}.")
    return num_points, sigma, suppression_radius, mrs


def extract_points(heat: np.ndarray, num_points: int = 5, sigma: float = 1.0,
                   suppression_radius: float = 2.0, min_relative_score: float = 0.2,
                   within: np.ndarray | None = None) -> GridPoints:
    """Salient cells of a heat map, hottest first.

    heat: ``[Gh, Gw]`` real map (Grad-CAM values, any scale; need not be square).
    sigma: Gaussian blur in cells (0 = no blur).
    suppression_radius: in cells; after a pick, cells within this distance can never be picked
        (picked points are always more than ``suppression_radius`` apart) and a Gaussian bump of
        this width, scaled by the picked value, is subtracted from the map.
    min_relative_score: stop when the best remaining value, measured above the blurred map's
        minimum, is below this fraction of the blurred map's (max - min). For a Grad-CAM map
        (minimum ~0) that is the fraction of its maximum; measuring above the minimum also keeps
        a map with a constant offset from yielding junk points. A flat map (all cells equal,
        e.g. all zero) yields no points.
    within: optional ``[Gh, Gw]`` bool grid mask (same shape as ``heat``): only these cells can be
        picked, and ``min_relative_score`` is then a fraction of the hottest of them (above the
        whole blurred map's minimum), so a weaker region gets as many points as a strong one.
        The blur still sees the whole map. No True cell: no points.

    Returns :class:`GridPoints` with at most ``num_points`` points, scores non-increasing (the
    residual blurred value at the pick, in the map's units; the first is the blurred maximum).
    Raises InputError on NaN/inf, a non-2-D map or bad parameters.
    """
    return _positives(heat, num_points, sigma, suppression_radius, min_relative_score, within)[0]


def _positives(heat: np.ndarray, num_points: int, sigma: float, suppression_radius: float,
               min_relative_score: float, within: np.ndarray | None = None) -> tuple[GridPoints, str]:
    """:func:`extract_points` and why it stopped (``"flat"``, or as ``_pick``'s ``stops``)."""
    num_points, sigma, radius, mrs = _check_common(num_points, sigma, suppression_radius,
                                                   min_relative_score)
    blurred = blur(heat, sigma)
    allowed = _check_within(within, blurred.shape)
    if num_points == 0 or _is_flat(blurred):
        return _as_grid_points([], [], []), "count" if num_points == 0 else "flat"
    floor = float(blurred.min())
    work = blurred - floor
    if allowed is None:
        span = float(work.max())
    else:
        span = float(work[allowed].max()) if allowed.any() else 0.0
    stops: list[str] = []
    rows, cols, scores = _pick(work, num_points, radius, stop_below=mrs * span,
                               excluded=None if allowed is None else ~allowed, stops=stops)
    return _as_grid_points(rows, cols, [s + floor for s in scores]), stops[0]


def why_fewer_points(heat: np.ndarray, num_points: int = 5, sigma: float = 1.0, suppression_radius: float = 2.0,
                     min_relative_score: float = 0.2, within: np.ndarray | None = None) -> str:
    """Why :func:`extract_points` (same arguments) stops where it does: ``"count"`` (it gave all
    ``num_points``), ``"flat"`` (the map is the same everywhere), ``"no_cells"`` (every cell is
    within ``suppression_radius`` of a point already placed, or outside ``within``) or ``"below"``
    (no cell left reaches ``min_relative_score`` of the map's range once the points'
    neighbourhoods are taken out)."""
    return _positives(heat, num_points, sigma, suppression_radius, min_relative_score, within)[1]


def relative_heat(heat: np.ndarray, xy: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """The heat at pixels ``xy`` (``[N, 2]`` (x, y)) as a fraction of the map's range: ``[N]`` float64
    in [0, 1], 0 at the map's minimum, 1 at its peak (the raw ``[Gh, Gw]`` map's cell that holds
    each pixel; 0 everywhere on a flat map)."""
    arr = _check_map(heat)
    cells = np.rint(pixels_to_grid(xy, arr.shape, image_size))
    cols = np.clip(cells[:, 0], 0, arr.shape[1] - 1).astype(int)
    rows = np.clip(cells[:, 1], 0, arr.shape[0] - 1).astype(int)
    lo, span = float(arr.min()), float(arr.max() - arr.min())
    return np.zeros(len(cols)) if span <= 0 else (arr[rows, cols] - lo) / span


def negative_points(heat: np.ndarray, num_points: int = 1, sigma: float = 1.0,
                    suppression_radius: float = 2.0, min_relative_score: float = 0.2,
                    avoid: GridPoints | None = None) -> GridPoints:
    """The coldest cells of a heat map, spread apart; for optional negative prompts.

    Same picking as :func:`extract_points` on the "coldness" ``max(blurred) - blurred``. Cold
    regions of a Grad-CAM map are nearly flat, so cells within 0.1% (of the coldness range) of
    the coldest count as tied and the one farthest from the hottest cell wins. Cells within
    ``suppression_radius`` of any point in ``avoid`` (e.g. the positive points) are never picked.

    Returns :class:`GridPoints`; ``scores`` are the (residual) coldness at the pick, in the map's
    units (blurred max minus the cell's value), non-increasing. A flat map yields none.
    """
    num_points, sigma, radius, mrs = _check_common(num_points, sigma, suppression_radius,
                                                   min_relative_score)
    blurred = blur(heat, sigma)
    if num_points == 0 or _is_flat(blurred):
        return _as_grid_points([], [], [])
    work = float(blurred.max()) - blurred
    span = float(work.max())
    gh, gw = work.shape
    rr, cc = np.mgrid[0:gh, 0:gw]
    hot_r, hot_c = divmod(int(np.argmax(blurred)), gw)
    tiebreak = (rr - hot_r) ** 2 + (cc - hot_c) ** 2
    excluded = np.zeros(work.shape, dtype=bool)
    if avoid is not None:
        for c, r in zip(avoid.cols, avoid.rows):
            excluded |= (rr - r) ** 2 + (cc - c) ** 2 <= radius ** 2
    rows, cols, scores = _pick(work, num_points, radius, stop_below=mrs * span,
                               excluded=excluded, tiebreak=tiebreak.astype(np.float64), tie_tol=1e-3 * span)
    return _as_grid_points(rows, cols, scores)


def _check_sizes(grid_shape: tuple[int, int], image_size: tuple[int, int]) -> tuple[int, int, int, int]:
    try:
        gh, gw = (int(v) for v in grid_shape)
        w, h = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise InputError(f"grid_shape must be (rows, cols) and image_size (width, height); got "
                         f"{grid_shape!r} and {image_size!r}.") from None
    if min(gh, gw, w, h) < 1:
        raise InputError(f"Grid shape {grid_shape!r} and image size {image_size!r} must be positive.")
    return gh, gw, w, h


def grid_to_pixels(cols: np.ndarray, rows: np.ndarray, grid_shape: tuple[int, int],
                   image_size: tuple[int, int]) -> np.ndarray:
    """Cell indices -> pixel coordinates of the cell centres.

    cols, rows: ``[N]`` cell indices (may be fractional). grid_shape: ``(Gh, Gw)``.
    image_size: ``(W, H)`` of the image as displayed.
    Returns ``[N, 2]`` float64 ``(x, y)`` with ``x = (col + 0.5) * W / Gw``,
    ``y = (row + 0.5) * H / Gh``.
    """
    gh, gw, w, h = _check_sizes(grid_shape, image_size)
    c = np.asarray(cols, dtype=np.float64).reshape(-1)
    r = np.asarray(rows, dtype=np.float64).reshape(-1)
    if c.shape != r.shape:
        raise InputError(f"cols and rows differ in length ({c.size} vs {r.size}).")
    return np.stack([(c + 0.5) * w / gw, (r + 0.5) * h / gh], axis=1)


def pixels_to_grid(xy: np.ndarray, grid_shape: tuple[int, int], image_size: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`grid_to_pixels`: ``[N, 2]`` ``(x, y)`` pixels -> ``[N, 2]`` float64
    ``(col, row)`` fractional cell indices (``round`` gives the cell that holds the pixel, for
    pixels inside the image)."""
    gh, gw, w, h = _check_sizes(grid_shape, image_size)
    p = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    return np.stack([p[:, 0] * gw / w - 0.5, p[:, 1] * gh / h - 0.5], axis=1)


def auto_points(heat: np.ndarray, image_size: tuple[int, int], num_points: int = 5,
                num_negative: int = 0, within: np.ndarray | None = None, **kw: float) -> tuple[Point, ...]:
    """Automatic prompt points for EfficientSAM, in image pixels.

    heat: ``[Gh, Gw]`` map; image_size: ``(W, H)`` as displayed; ``kw``: ``sigma``,
    ``suppression_radius``, ``min_relative_score`` (see :func:`extract_points`); ``within``: the
    ``[Gh, Gw]`` bool cells the positives are picked in (see :func:`extract_points`; the
    negatives are still the map's coldest cells, wherever they are).
    Returns positives first (label 1, ``score`` = the heat value they were picked for, best
    first), then negatives (label 0, ``score`` None: ``Point.score`` is heat-map evidence *for*
    a region, and a negative was picked for its absence; its label already says so). All have
    ``source="auto"``. Negatives keep ``suppression_radius`` away from the positives.
    """
    allowed = {"sigma", "suppression_radius", "min_relative_score"}
    unknown = set(kw) - allowed
    if unknown:
        raise InputError(f"Unknown point option(s): {', '.join(sorted(unknown))}.")
    arr = _check_map(heat)
    pos = extract_points(arr, num_points=num_points, within=within, **kw)
    neg = negative_points(arr, num_points=num_negative, avoid=pos, **kw)
    out: list[Point] = []
    for gp, label in ((pos, POSITIVE), (neg, NEGATIVE)):
        xy = grid_to_pixels(gp.cols, gp.rows, arr.shape, image_size)
        for (x, y), s in zip(xy, gp.scores):
            out.append(Point(x=float(x), y=float(y), label=label,
                             score=float(s) if label == POSITIVE else None, source="auto"))
    return tuple(out)
