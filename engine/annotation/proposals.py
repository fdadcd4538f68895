"""Object proposals from a question's heat map: one decode per hot region, duplicates merged.

    regions = hot_regions(heat)                       # engine.imaging.regions, best first
    for each region: points = region_points(...)      # (x, y) image pixels
                     mask, score = decode(points)     # the caller's decoder
    drop empty masks, merge duplicates, order by heat

``decode(points) -> (mask, score)`` is given by the caller: the app runs EfficientSAM's decoder
on the cached image embedding (``Segmenter.predict(points).best`` -> ``(mask, iou)``); tests give
a deterministic stand-in. ``points`` is a tuple of :class:`engine.prompts.Point` in ``(x, y)``
pixels of the image as displayed; ``mask`` must be ``[H, W]`` bool for ``image_size = (W, H)``;
``score`` a finite float, higher = better (EfficientSAM's predicted IoU).

Two masks are *duplicates* (the same object found twice) when

- their IoU ``|A & B| / |A | B|`` is at least ``merge_iou``, or
- one lies mostly inside the other: ``|A & B| / min(|A|, |B|)`` is at least ``contain`` (a
  region on a dog's head and one on its body decode to a head and a whole dog).

The second rule also folds a mask that covers two objects into whichever of them it holds
most (merged with the best-scored of its duplicates): a decode that spans several instances is
not a new instance. Empty masks are never duplicates of anything (they are dropped first).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..imaging.points import _check_count, _check_map
from ..imaging.regions import POINTS_PER_REGION, REGION_SIGMA, HotRegion, hot_regions, region_points
from ..prompts import POSITIVE, Point

__all__ = ["Proposal", "Decode", "propose_instances", "duplicates_of", "mask_overlap", "MAX_INSTANCES",
           "MAX_DECODES", "MERGE_IOU", "CONTAIN_SHARE"]

Decode = Callable[[tuple[Point, ...]], tuple[np.ndarray, float]]

# Most objects one question proposes: a 24 x 24 map rarely separates more hot regions than this.
MAX_INSTANCES = 8
# Most decodes one call runs (tens of ms each on a CPU): bounds the wait for a map full of specks.
MAX_DECODES = 12
# The IoU at which two masks are one object (COCO's own mid threshold for "the same instance").
MERGE_IOU = 0.5
# The share of the smaller mask inside the larger at which it is a part of it, not another object.
CONTAIN_SHARE = 0.8


@dataclass(frozen=True, eq=False)
class Proposal:
    """One proposed object.

    points: the prompts, ``(x, y)`` image pixels: those of ``region`` first (the ones that gave
        ``mask``), then those of the merged duplicates in the order they were merged; never two
        with the same ``(x, y, label)``. May hold more than EfficientSAM's 6 prompt slots.
    mask: ``[H, W]`` bool (read-only), the best-scored decode among the duplicates.
    score: that decode's score.
    region: the index (into the ``regions`` used) of the region whose decode gave ``mask``.
    regions: every region merged into this proposal, ascending (the hottest first).
    area: pixels in ``mask`` (> 0).
    """

    points: tuple[Point, ...]
    mask: np.ndarray
    score: float
    region: int
    regions: tuple[int, ...]
    area: int


def _check_iou(value: float, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (0.0 < v <= 1.0):
        raise InputError(f"{name} must be above 0 and at most 1, not {value!r}.")
    return v


def _as_mask(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 2 or m.dtype != np.bool_:
        raise InputError(f"The {name} must be a 2-D [H, W] bool array, not {m.dtype} of shape {m.shape}.")
    return m


def mask_overlap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``(iou, containment)`` of two ``[H, W]`` bool masks of the same shape.

    iou: ``|a & b| / |a | b|``; containment: ``|a & b| / min(|a|, |b|)``, the share of the smaller
    mask inside the other. Both in [0, 1]; both 0 when either mask is empty.
    """
    a, b = _as_mask(a), _as_mask(b)
    if a.shape != b.shape:
        raise InputError(f"Masks of shapes {a.shape} and {b.shape} cannot be compared.")
    na, nb = int(np.count_nonzero(a)), int(np.count_nonzero(b))
    if na == 0 or nb == 0:
        return 0.0, 0.0
    inter = int(np.count_nonzero(a & b))
    return inter / (na + nb - inter), inter / min(na, nb)


def duplicates_of(mask: np.ndarray, existing_masks: Sequence[np.ndarray], iou: float = MERGE_IOU,
                  contain: float | None = CONTAIN_SHARE) -> tuple[int, ...]:
    """Which of ``existing_masks`` are the same object as ``mask`` (see the module's rule).

    mask and every existing mask: ``[H, W]`` bool, one shape. iou: ``merge_iou``; contain: the
    containment share, or None to merge on IoU only. Returns indices into ``existing_masks``,
    the highest IoU first (ties: lower index first); empty when ``mask`` is new (or empty).
    Use it before adding an object a repeated question proposes.
    """
    iou = _check_iou(iou, "iou")
    contain = None if contain is None else _check_iou(contain, "contain")
    hits: list[tuple[float, int]] = []
    for i, other in enumerate(existing_masks):
        j, c = mask_overlap(mask, other)
        if (j > 0 and j >= iou) or (contain is not None and c > 0 and c >= contain):
            hits.append((j, i))
    hits.sort(key=lambda t: (-t[0], t[1]))
    return tuple(i for _, i in hits)


@dataclass
class _Group:
    points: list[Point]
    mask: np.ndarray
    score: float
    region: int
    regions: list[int]


def _check_decoded(out: object, shape: tuple[int, int]) -> tuple[np.ndarray, float]:
    try:
        mask, score = out  # type: ignore[misc]
    except (TypeError, ValueError):
        raise InputError("decode must return (mask, score).") from None
    m = _as_mask(mask, "decoded mask")
    if m.shape != shape:
        raise InputError(f"The decoded mask has shape {m.shape}, but the image is {shape} (H, W).")
    try:
        s = float(score)
    except (TypeError, ValueError):
        s = math.nan
    if not math.isfinite(s):
        raise InputError(f"The decoder's score must be a finite number, not {score!r}.")
    return m, s


def propose_instances(heat: np.ndarray, image_size: tuple[int, int], decode: Decode, *,
                      max_instances: int = MAX_INSTANCES, points_per_region: int = POINTS_PER_REGION,
                      merge_iou: float = MERGE_IOU, contain: float | None = CONTAIN_SHARE,
                      num_negative: int = 0, max_decodes: int = MAX_DECODES,
                      regions: Sequence[HotRegion] | None = None) -> tuple[Proposal, ...]:
    """Objects the heat map's hot regions show, as decoded masks, the hottest first.

    heat: ``[Gh, Gw]`` question map; image_size: ``(W, H)`` of the image as displayed; decode:
    see the module. regions: the map's hot regions, best first (default
    ``hot_regions(heat)``); only the first ``max_decodes`` are decoded, one ``decode`` call each,
    with ``region_points(heat, region, image_size, num_points=points_per_region,
    num_negative=num_negative)`` (a region that gets no point is skipped).

    Empty masks are dropped. Duplicates (``merge_iou``, ``contain``: see the module) are merged
    greedily in decreasing score (ties: the hotter region first): each decode joins the kept
    proposal it has the highest IoU with among its duplicates, adding its points and region;
    the kept mask and score stay (they are the better). So no two returned masks are duplicates.

    Returns at most ``max_instances`` :class:`Proposal` s ordered by their hottest region
    (``regions[0]``), i.e. by the question's evidence; ``score`` says how sure the decoder is
    of each outline.
    """
    arr = _check_map(heat)
    max_instances = _check_count(max_instances, "max_instances")
    max_decodes = _check_count(max_decodes, "max_decodes")
    merge_iou = _check_iou(merge_iou, "merge_iou")
    contain = None if contain is None else _check_iou(contain, "contain")
    if not callable(decode):
        raise InputError("decode must be a function points -> (mask, score).")
    try:
        w, h = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise InputError(f"image_size must be (width, height), not {image_size!r}.") from None
    if regions is None:
        regions = hot_regions(arr, sigma=REGION_SIGMA)
    decoded: list[_Group] = []
    for index, region in enumerate(list(regions)[:max_decodes]):
        if region.grid_mask.shape != arr.shape:
            raise InputError(f"Region {index} has grid shape {region.grid_mask.shape}, the map {arr.shape}.")
        points = region_points(arr, region, (w, h), num_points=points_per_region, num_negative=num_negative)
        if not any(p.label == POSITIVE for p in points):
            continue
        mask, score = _check_decoded(decode(points), (h, w))
        if not mask.any():
            continue
        decoded.append(_Group(list(points), mask, score, index, [index]))
    decoded.sort(key=lambda g: (-g.score, g.region))
    kept: list[_Group] = []
    for cand in decoded:
        dups = duplicates_of(cand.mask, [g.mask for g in kept], merge_iou, contain)
        if not dups:
            kept.append(cand)
            continue
        into = kept[dups[0]]
        seen = {(p.x, p.y, p.label) for p in into.points}
        into.points.extend(p for p in cand.points if (p.x, p.y, p.label) not in seen)
        into.regions.append(cand.region)
    kept.sort(key=lambda g: min(g.regions))
    out = []
    for g in kept[:max_instances]:
        mask = g.mask.copy()
        mask.flags.writeable = False
        out.append(Proposal(points=tuple(g.points), mask=mask, score=g.score, region=g.region,
                            regions=tuple(sorted(g.regions)), area=int(np.count_nonzero(mask))))
    return tuple(out)
