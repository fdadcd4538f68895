"""Why one object needs a person's look: its review need in [0, 1] and the reasons, in words.

An object's need comes from named reasons, each a sign of a specific mistake with its own weight
in (0, 1] (:mod:`engine.project.review` gathers an object's inputs and adds BLIP's doubt):

- ``empty_mask`` (weight 1): the object has no pixels;
- ``negative_answer`` (:data:`NEGATIVE_WEIGHT`): the answer says nothing is there ("no",
  "none", "0", ...) yet the object has a mask;
- ``count_mismatch``: the question counts ("how many ...") and the answer's number differs from
  the objects kept for it; weight ``0.5 + 0.5 * |n - k| / max(n, k)`` (one off of three: 0.67);
  an answer of 0 is left to ``negative_answer``;
- ``heat_outside``: the mask holds less than :data:`HEAT_SHARE_MIN` of the heat map's mass over
  the object's evidence; weight ``HEAT_WEIGHT * (1 - share / HEAT_SHARE_MIN)``;
- ``low_score``: the decoder's score is below :data:`SCORE_MIN`; weight ``1 - score / SCORE_MIN``.

The need is the chance that at least one reason is right, were they independent:
``1 - prod(1 - weight)``; 0 with no reason. Missing inputs (no question, no heat map, no score)
give no reason: the need only rises on evidence.

Heat share (the frames of :mod:`engine.imaging.fusion`): the mask ``[H, W]`` is brought onto
the ``[Gh, Gw]`` grid as the fraction of each cell it covers (``mask_to_grid``; or give that
``coverage`` directly), the map is taken above its minimum (as point picking measures it), and
``share = sum(heat' * coverage * evidence) / sum(heat' * evidence)``. ``evidence`` is the
``[Gh, Gw]`` bool cells the object was proposed from (its hot region's ``grid_mask``) or None for
the whole map: with three dogs on one map each dog holds only about a third of the whole map's
heat, so pass each one's region.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..imaging.fusion import mask_to_grid
from ..imaging.points import _check_map
from ..vqa.counting import answer_count, count_question, negative_answer

__all__ = ["ReviewReason", "ObjectReview", "object_review", "heat_share", "HEAT_SHARE_MIN", "SCORE_MIN",
           "NEGATIVE_WEIGHT", "HEAT_WEIGHT"]

# Below this share of its evidence's heat mass inside the mask, the mask is likely off the evidence:
# a mask on the right object holds most of its region's heat; a quarter leaves room for a coarse map.
HEAT_SHARE_MIN = 0.25
# The heat term's largest weight: a 24 x 24 map is coarse, so it never alone outweighs the answer.
HEAT_WEIGHT = 0.8
# EfficientSAM's predicted IoU under this is an uncertain outline (good masks predict ~0.85-0.98).
SCORE_MIN = 0.75
# "No" with a mask is nearly always a wrong mask or a wrong answer: either way a person decides.
NEGATIVE_WEIGHT = 0.9


@dataclass(frozen=True)
class ReviewReason:
    """One reason: ``code`` (stable key: empty_mask, negative_answer, count_mismatch,
    heat_outside, low_score), ``weight`` in (0, 1], and ``text``, a sentence saying what is wrong
    and what to do."""

    code: str
    weight: float
    text: str


@dataclass(frozen=True)
class ObjectReview:
    """An object's review ``need`` in [0, 1] (``1 - prod(1 - weight)``) and its ``reasons``,
    heaviest first (ties in the order of the module's list)."""

    need: float
    reasons: tuple[ReviewReason, ...]


def heat_share(heat: np.ndarray, coverage: np.ndarray, evidence: np.ndarray | None = None) -> float | None:
    """Share of the heat mass (above the map's minimum) over ``evidence`` that lies inside the mask.

    heat: ``[Gh, Gw]`` map; coverage: ``[Gh, Gw]`` in [0, 1], the fraction of each cell the mask
    covers (:func:`engine.imaging.fusion.mask_to_grid`); evidence: ``[Gh, Gw]`` bool or None (all
    cells). Returns a float in [0, 1], or None when the evidence holds no heat (flat map, no cell).
    """
    arr = _check_map(heat)
    cov = np.asarray(coverage, dtype=np.float64)
    if cov.shape != arr.shape:
        raise InputError(f"The mask coverage has shape {cov.shape}, the heat map {arr.shape}.")
    w = arr - arr.min()
    if evidence is not None:
        ev = np.asarray(evidence)
        if ev.dtype != np.bool_ or ev.shape != arr.shape:
            raise InputError(f"evidence must be a [Gh, Gw] bool grid of shape {arr.shape}.")
        w = np.where(ev, w, 0.0)
    total = float(w.sum())
    if not total > 0:
        return None
    return float(np.clip((w * np.clip(cov, 0.0, 1.0)).sum() / total, 0.0, 1.0))


def object_review(mask: np.ndarray | None = None, *, coverage: np.ndarray | None = None,
                  heat: np.ndarray | None = None, evidence: np.ndarray | None = None,
                  score: float | None = None, question: str | None = None, answer: str | None = None,
                  objects_kept: int | None = None) -> ObjectReview:
    """The review need and reasons of one object.

    mask: ``[H, W]`` bool in image pixels, or None when ``coverage`` (``[Gh, Gw]``, see
    :func:`heat_share`) is given instead (one of them is needed for the mask reasons; with
    neither the object counts as having no mask information, not as empty).
    heat: the question's ``[Gh, Gw]`` map; evidence: the object's ``[Gh, Gw]`` bool region (see
    the module). score: the decoder's score (None for drawn or imported masks). question /
    answer: the question this object came from and its answer. objects_kept: how many objects
    that question keeps now, this one included.
    """
    reasons: list[ReviewReason] = []
    filled: bool | None = None  # does the object have pixels? None: not known (no mask, no coverage)
    if mask is not None:
        m = np.asarray(mask)
        if m.ndim != 2 or m.dtype != np.bool_:
            raise InputError(f"The mask must be a 2-D [H, W] bool array, not {m.dtype} of shape {m.shape}.")
        filled = bool(m.any())
        if heat is not None and filled and coverage is None:
            coverage = mask_to_grid(m, np.shape(heat))
    elif coverage is not None:
        cov = _check_map(coverage, "mask coverage")
        if heat is not None and cov.shape != np.shape(heat):
            raise InputError(f"The mask coverage has shape {cov.shape}, the heat map {np.shape(heat)}.")
        filled = bool(cov.sum() > 0)
    if filled is False:
        reasons.append(ReviewReason("empty_mask", 1.0, "the object has no pixels: draw it or delete it."))
    if answer is not None and filled and negative_answer(answer):
        reasons.append(ReviewReason(
            "negative_answer", NEGATIVE_WEIGHT,
            f"the answer is \"{answer.strip()}\", yet this object has a mask: delete it if nothing is "
            "there, or ask again."))
    if question is not None and answer is not None and objects_kept is not None and count_question(question):
        n, k = answer_count(answer), int(objects_kept)
        if n is not None and n > 0 and n != k:
            noun = "object is" if k == 1 else "objects are"
            more = "add the missing ones" if n > k else "delete the extra ones"
            reasons.append(ReviewReason(
                "count_mismatch", 0.5 + 0.5 * abs(n - k) / max(n, k),
                f"the answer says {n} but {k} {noun} kept: {more}, or correct the answer."))
    if heat is not None and coverage is not None and filled:
        share = heat_share(heat, coverage, evidence)
        if share is not None and share < HEAT_SHARE_MIN:
            reasons.append(ReviewReason(
                "heat_outside", HEAT_WEIGHT * (1.0 - share / HEAT_SHARE_MIN),
                f"only {share:.0%} of the question's heat lies inside this mask: check that it "
                "outlines what the question is about."))
    if score is not None:
        s = float(score)
        if not math.isfinite(s):
            raise InputError(f"The decoder's score must be a finite number, not {score!r}.")
        if filled is not False and s < SCORE_MIN:
            reasons.append(ReviewReason(
                "low_score", min(1.0, 1.0 - max(s, 0.0) / SCORE_MIN),
                f"the segmenter rates this outline {s:.2f} (below {SCORE_MIN:.2f}): check its edges, "
                "add a point or paint the boundary."))
    reasons.sort(key=lambda r: -r.weight)  # stable: ties keep the list's order
    need = 1.0 - math.prod(1.0 - r.weight for r in reasons)
    return ObjectReview(need=float(min(1.0, max(0.0, need))), reasons=tuple(reasons))
