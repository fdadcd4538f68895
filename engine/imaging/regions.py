"""The separate hot regions of a heat map, and prompt points inside one of them.

A question about several things ("where are the dogs?") lights up several places of the
Grad-CAM map; each hot region is the evidence for one object, prompted and decoded on its own
(:mod:`engine.annotation.proposals`).

Frames (as :mod:`engine.imaging.points`): the map is ``heat[row, col]``, shape ``[Gh, Gw]``
(24 x 24 for BLIP-large; any shape works); a cell is named ``(col, row)``. Points come back in
``(x, y)`` image pixels of an image of size ``(W, H)``, mapped from cell centres by
:func:`engine.imaging.points.grid_to_pixels`.

The rule (hysteresis thresholding, as Canny's edge linking):

1. blur the map as :func:`engine.imaging.points.extract_points` does (Gaussian, ``sigma`` cells);
2. measure every cell above the blurred map's minimum, as a fraction of the blurred peak:
   ``rel = (blurred - min) / (max - min)``; for a Grad-CAM map (minimum ~0) that is the fraction
   of its peak, and a constant offset changes nothing;
3. the candidate regions are the 8-connected components of ``rel >= low``;
4. a region is kept when its own peak reaches ``rel >= high`` (a weaker one is noise beside the
   evidence) and it has at least ``min_cells`` cells; the region that holds the global peak is
   always kept, so a map that is not flat always gives at least one region.

A flat map (every cell equal, e.g. all zero) gives none. Two objects whose heat joins above
``low`` are one region: the map cannot tell them apart at this threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError
from ..prompts import Point
from .points import _check_count, _check_map, _check_nonneg, _is_flat, auto_points, blur

__all__ = ["HotRegion", "hot_regions", "region_points", "REGION_SIGMA", "REGION_LOW", "REGION_HIGH",
           "MIN_REGION_CELLS", "POINTS_PER_REGION"]

# The blur extract_points uses by default: regions and their points see the same smoothed map.
REGION_SIGMA = 1.0
# Extent: cells at >= 30 % of the peak belong to a region; lower merges neighbouring objects
# through the Grad-CAM background, higher cuts an object's weaker half off.
REGION_LOW = 0.3
# Seed: a region counts when its peak reaches 50 % of the global peak; a second instance's heat
# is often weaker than the first's, but below half it is usually background noise.
REGION_HIGH = 0.5
# Fewer cells than a 2 x 2 patch (32 x 32 px of BLIP's 384 px input) is below what the map resolves.
MIN_REGION_CELLS = 4
# Positive points per region: enough for EfficientSAM to see an object's extent, and with up to
# 2 negatives still within its 6 prompt slots.
POINTS_PER_REGION = 3


@dataclass(frozen=True, eq=False)
class HotRegion:
    """One hot region of a ``[Gh, Gw]`` heat map.

    grid_mask: ``[Gh, Gw]`` bool (read-only), the region's cells; regions of one map never share a cell.
    peak: the blurred map's value at the peak cell, in the map's own units (as
        :attr:`engine.imaging.points.GridPoints.scores`).
    peak_col, peak_row: the peak cell (x index, y index); ties go to the row-major first cell.
    relative_peak: ``(peak - min) / (max - min)`` of the blurred map, in (0, 1]; 1 for the region
        holding the global peak.
    mass: sum over the region's cells of ``blurred - min`` (map units x cells): how much of the
        map's evidence it holds.
    mass_share: ``mass`` over the same sum on the whole map, in (0, 1].
    """

    grid_mask: np.ndarray
    peak: float
    peak_col: int
    peak_row: int
    relative_peak: float
    mass: float
    mass_share: float

    @property
    def cells(self) -> int:
        """How many grid cells the region holds."""
        return int(np.count_nonzero(self.grid_mask))

    @property
    def peak_cell(self) -> tuple[int, int]:
        """``(col, row)`` of the peak, the cell-index order of :mod:`engine.imaging.points`."""
        return self.peak_col, self.peak_row


def _check_fraction(value: float, name: str) -> float:
    v = _check_nonneg(value, name)
    if v > 1.0:
        raise InputError(f"{name} must be between 0 and 1, not {value!r}.")
    return v


def hot_regions(heat: np.ndarray, *, sigma: float = REGION_SIGMA, low: float = REGION_LOW,
                high: float = REGION_HIGH, min_cells: int = MIN_REGION_CELLS) -> tuple[HotRegion, ...]:
    """The separate hot regions of ``heat``, best first.

    heat: ``[Gh, Gw]`` real map (Grad-CAM values, any scale, any grid shape).
    sigma: Gaussian blur in cells (0 = none). low, high: fractions of the blurred map's range in
    [0, 1], ``low <= high`` (see the module's rule). min_cells: smallest region kept (the one
    holding the global peak is kept whatever its size).

    Returns :class:`HotRegion` s ordered by ``peak`` (highest first), then ``mass`` (largest
    first), then the peak cell in row-major order; empty for a flat map. Raises InputError on
    NaN/inf, a map that is not 2-D, or bad parameters.
    """
    arr = _check_map(heat)
    sigma = _check_nonneg(sigma, "sigma")
    low = _check_fraction(low, "low")
    high = _check_fraction(high, "high")
    if low > high:
        raise InputError(f"low ({low}) must not be above high ({high}): a region's seed lies inside it.")
    min_cells = _check_count(min_cells, "min_cells")
    blurred = blur(arr, sigma)
    if _is_flat(blurred):
        return ()
    floor = float(blurred.min())
    above = blurred - floor
    span = float(above.max())
    rel = above / span
    total = float(above.sum())
    n, labels = cv2.connectedComponents((rel >= low).astype(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    top = int(np.argmax(blurred))  # row-major first of the global maxima
    out: list[HotRegion] = []
    for k in range(1, n):
        cells = labels == k
        local = np.where(cells, blurred, -np.inf)
        flat_idx = int(np.argmax(local))
        holds_top = bool(cells.flat[top])
        count = int(np.count_nonzero(cells))
        if not holds_top and (float(rel.flat[flat_idx]) < high or count < min_cells):
            continue
        row, col = divmod(flat_idx, arr.shape[1])
        mass = float(above[cells].sum())
        cells.flags.writeable = False
        out.append(HotRegion(grid_mask=cells, peak=float(blurred.flat[flat_idx]), peak_col=col, peak_row=row,
                             relative_peak=float(rel.flat[flat_idx]), mass=mass,
                             mass_share=mass / total if total > 0 else 0.0))
    out.sort(key=lambda r: (-r.peak, -r.mass, r.peak_row, r.peak_col))
    return tuple(out)


def region_points(heat: np.ndarray, region: HotRegion | np.ndarray, image_size: tuple[int, int], *,
                  num_points: int = POINTS_PER_REGION, num_negative: int = 0, sigma: float = REGION_SIGMA,
                  suppression_radius: float = 2.0, min_relative_score: float = 0.2) -> tuple[Point, ...]:
    """Prompt points for one region, in ``(x, y)`` pixels of an image of size ``image_size`` = ``(W, H)``.

    :func:`engine.imaging.points.auto_points` with its positives picked only inside ``region``
    (a :class:`HotRegion` or a ``[Gh, Gw]`` bool grid mask of ``heat``'s shape): at most
    ``num_points`` positives (label 1, ``score`` = blurred heat, best first, each more than
    ``suppression_radius`` cells from the others; ``min_relative_score`` is relative to the
    region's own peak), then at most ``num_negative`` negatives (label 0, the map's coldest cells,
    away from the positives; the only negatives points.py picks from a map). All ``source="auto"``.
    """
    mask = region.grid_mask if isinstance(region, HotRegion) else region
    return auto_points(heat, image_size, num_points=num_points, num_negative=num_negative, within=mask,
                       sigma=sigma, suppression_radius=suppression_radius, min_relative_score=min_relative_score)
