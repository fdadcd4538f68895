"""Fusing a heat map with a segmentation mask (the "enhanced" map).

Frames: the heat map is a ``[Gh, Gw]`` grid over the whole image (BLIP squashes the image to a
square, so a cell covers ``W / Gw`` x ``H / Gh`` pixels); the mask is ``[H, W]`` in image pixels.

    enhanced = rescale(alpha * normalise(heat) + (1 - alpha) * mask_to_grid(mask))

The heat map is min-max normalised to [0, 1] *before* mixing, as the original system did:
Grad-CAM values are tiny (around 1e-3 with real weights, far less with random ones) and
unscaled, so without it the mask term would swamp the heat map for any alpha < 1 and alpha
would stop meaning "share of the heat map". The mask on the grid is already in [0, 1]
(covered fraction of each cell).
"""

from __future__ import annotations

from functools import lru_cache

import math

import numpy as np

from ..errors import InputError

# A map whose (max - min) is at most this fraction of its magnitude counts as constant.
FLAT_RTOL = 1e-9
# Rows of the mask converted to float at a time in mask_to_grid: bounds memory on huge images, and
# each conversion holds the GIL (0.3 ms at 4000 columns, not 1-2 ms: the GUI thread waits for it).
_ROW_CHUNK = 128


def _check_grid(arr: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(f"The {name} must be a 2-D array, not one of shape {a.shape}.")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise InputError(f"The {name} must hold numbers, not {a.dtype}.")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise InputError(f"The {name} holds NaN or infinite values.")
    return a


def _check_alpha(alpha: float) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise InputError(f"alpha must be a number between 0 and 1, not {alpha!r}.") from None
    if math.isnan(a) or not (0.0 <= a <= 1.0):
        raise InputError(f"alpha must be between 0 and 1 (1 = heat map only, 0 = mask only), not {alpha!r}.")
    return a


def normalise(grid: np.ndarray) -> np.ndarray:
    """Min-max rescale a ``[Gh, Gw]`` map to [0, 1]; returns float64.

    A constant map has no contrast: it becomes all ones when its value is > 0 (everything
    equally relevant, e.g. a mask covering the whole image) and all zeros otherwise (nothing,
    e.g. an all-zero Grad-CAM). Either way caption sampling (``engine.vqa.captions.sampling_weights``) is then uniform.
    Never returns NaN. Raises InputError on NaN/inf input.
    """
    a = _check_grid(grid, "map")
    scale = float(np.abs(a).max())
    if scale > 0:
        a = a / scale  # keeps hi - lo finite even for values near the float64 limit
    hi, lo = float(a.max()), float(a.min())
    span = hi - lo
    if span <= FLAT_RTOL * max(abs(hi), abs(lo)) or span == 0:
        return np.full(a.shape, 1.0 if hi > 0 else 0.0)
    return np.clip((a - lo) / span, 0.0, 1.0)


@lru_cache(maxsize=16)
def _area_weights(n_pixels: int, n_cells: int) -> np.ndarray:
    """[n_cells, n_pixels] float64: the share of cell g covered by pixel i, per unit cell length.

    Cell g spans [g * n_pixels / n_cells, (g + 1) * n_pixels / n_cells) in pixel units, pixel i
    spans [i, i + 1); the weight is their overlap length over the cell length, so each row sums
    to 1 and the weights are exact for any ratio, integer or not. Cached (read-only): every mask
    of an image needs the same two, and a store write computes one per object.
    """
    weights = _area_weights_of(n_pixels, n_cells)
    weights.flags.writeable = False
    return weights


def _area_weights_of(n_pixels: int, n_cells: int) -> np.ndarray:
    edges = np.arange(n_cells + 1, dtype=np.float64) * (n_pixels / n_cells)
    start, stop = edges[:-1, None], edges[1:, None]
    px = np.arange(n_pixels, dtype=np.float64)[None, :]
    overlap = np.clip(np.minimum(stop, px + 1.0) - np.maximum(start, px), 0.0, None)
    return overlap / (n_pixels / n_cells)


def mask_to_grid(mask: np.ndarray, grid_shape: tuple[int, int]) -> np.ndarray:
    """Area-average a mask onto the heat-map grid.

    mask: ``[H, W]`` bool (or numbers in [0, 1] for a soft mask), image pixels.
    grid_shape: ``(Gh, Gw)``.
    Returns ``[Gh, Gw]`` float32 in [0, 1]: the fraction of each cell's area the mask covers.
    Exact for any H/Gh, W/Gw: a pixel that straddles a cell border is split between the cells by
    overlap, done as two small matrix products (rows, then columns) so memory stays
    ~``_ROW_CHUNK * W`` floats. cv2's INTER_AREA agrees when both axes shrink (the usual case)
    but not when an axis grows (an image narrower or shorter than the grid), where it
    interpolates instead of averaging.
    """
    m = np.asarray(mask)
    if m.ndim != 2 or m.shape[0] < 1 or m.shape[1] < 1:
        raise InputError(f"A mask must be a 2-D [H, W] array, not one of shape {m.shape}.")
    try:
        gh, gw = (int(v) for v in grid_shape)
    except (TypeError, ValueError):
        raise InputError(f"grid_shape must be (rows, cols), not {grid_shape!r}.") from None
    if gh < 1 or gw < 1:
        raise InputError(f"grid_shape must be positive, not {grid_shape!r}.")
    if m.dtype != np.bool_:
        if not np.issubdtype(m.dtype, np.number):
            raise InputError(f"A mask must be boolean or numeric, not {m.dtype}.")
        if not np.all(np.isfinite(m)) or m.min() < 0 or m.max() > 1:
            raise InputError("A soft mask must hold finite values between 0 and 1.")
    h, w = m.shape
    wx = _area_weights(w, gw).T.astype(np.float32)  # [W, Gw]
    wy = _area_weights(h, gh)  # [Gh, H]
    cols = np.empty((h, gw), dtype=np.float64)
    for r0 in range(0, h, _ROW_CHUNK):
        cols[r0:r0 + _ROW_CHUNK] = m[r0:r0 + _ROW_CHUNK].astype(np.float32) @ wx
    return np.clip(wy @ cols, 0.0, 1.0).astype(np.float32)


def blend(heat01: np.ndarray, mask_grid: np.ndarray, alpha: float) -> np.ndarray:
    """``alpha * heat01 + (1 - alpha) * mask_grid``, before the final rescale; float64.

    heat01: ``[Gh, Gw]`` normalised heat map in [0, 1]; mask_grid: ``[Gh, Gw]`` in [0, 1]
    (from :func:`mask_to_grid`). Per cell this is linear in alpha, moving from the mask value
    (alpha 0) to the heat value (alpha 1).
    """
    a = _check_alpha(alpha)
    h = _check_grid(heat01, "normalised heat map")
    m = _check_grid(mask_grid, "mask grid")
    if h.shape != m.shape:
        raise InputError(f"Heat map {h.shape} and mask grid {m.shape} differ in shape.")
    return a * h + (1.0 - a) * m


def fuse(heat: np.ndarray, mask: np.ndarray | None, alpha: float = 0.5) -> np.ndarray:
    """The EfficientSAM-enhanced map.

    heat: ``[Gh, Gw]`` Grad-CAM (any scale); mask: ``[H, W]`` bool in image pixels, or None.
    alpha: share of the heat map, in [0, 1] (1 = heat only, 0 = mask only).
    Returns ``[Gh, Gw]`` float32 in [0, 1], never NaN:
    ``normalise(blend(normalise(heat), mask_to_grid(mask), alpha))``; with ``mask=None`` the
    normalised heat map. All-zero inputs give all zeros (see :func:`normalise` for constants).
    """
    heat = _check_grid(heat, "heat map")
    return fuse_coverage(heat, None if mask is None else mask_to_grid(mask, heat.shape), alpha)


def fuse_coverage(heat: np.ndarray, coverage: np.ndarray | None, alpha: float = 0.5) -> np.ndarray:
    """:func:`fuse` with the mask already on the grid (``coverage = mask_to_grid(mask, G)``,
    ``[Gh, Gw]`` in [0, 1]): a new alpha costs a few grid-sized operations, not a pass over
    the mask's pixels."""
    a = _check_alpha(alpha)
    h01 = normalise(_check_grid(heat, "heat map"))
    if coverage is None:
        return h01.astype(np.float32)
    return normalise(blend(h01, np.asarray(coverage, dtype=np.float32), a)).astype(np.float32)
