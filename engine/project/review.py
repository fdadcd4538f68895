"""How much a person should look at an annotation: a score in [0, 1], higher = review sooner.

Three signs that the automatic chain may be wrong, averaged:

- ``1 - itm_probability``: BLIP doubts the image matches the question at all;
- ``1 - mask_score``: EfficientSAM's own predicted IoU of the chosen mask is low;
- heat-map / mask disagreement: ``1 - max(0, r)``, r the Pearson correlation over the ``G x G``
  grid between the Grad-CAM map and the fraction of each cell the mask covers. A mask far
  from where the question's evidence is gets a high value.

A missing value counts as 0.5 (unknown); a missing mask as 1 for both mask terms. Accepted
records need no review (0). An image's priority is the largest of its questions'.
"""

from __future__ import annotations

import numpy as np

from ..fusion import mask_to_grid
from .records import ImageRecord, QuestionRecord

__all__ = ["review_priority", "question_review_priority", "heat_mask_disagreement"]


def heat_mask_disagreement(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """``1 - max(0, corr(heatmap, mask coverage on the heat-map grid))``, in [0, 1].

    ``heatmap`` [G, G] float, ``mask`` [H, W] bool. A constant map or an empty/full mask has no
    defined correlation: 1.0 for an empty mask (nothing where the evidence is), else 0.5.
    """
    heat = np.asarray(heatmap, dtype=np.float64)
    if not mask.any():
        return 1.0
    cover = mask_to_grid(mask, heat.shape).astype(np.float64)
    hs, cs = heat.std(), cover.std()
    if hs == 0 or cs == 0 or not np.isfinite(hs):
        return 0.5
    r = float(((heat - heat.mean()) * (cover - cover.mean())).mean() / (hs * cs))
    return float(1.0 - max(0.0, min(1.0, r)))


def question_review_priority(record: QuestionRecord) -> float:
    if record.accepted:
        return 0.0
    key = (record.mask_rle["counts"] if record.mask_rle else None, record.itm_probability,
           record.mask_score, id(record.heatmap))
    cached = record._priority_cache
    if cached is not None and cached[0] == key:
        return cached[1]
    itm_term = 0.5 if record.itm_probability is None else 1.0 - float(record.itm_probability)
    mask = record.mask()
    if mask is None:
        iou_term = dis_term = 1.0
    else:
        iou_term = 0.5 if record.mask_score is None else 1.0 - float(record.mask_score)
        dis_term = 0.5 if record.heatmap is None else heat_mask_disagreement(record.heatmap, mask)
    value = float(np.clip((itm_term + iou_term + dis_term) / 3.0, 0.0, 1.0))
    record._priority_cache = (key, value)
    return value


def review_priority(record: ImageRecord | QuestionRecord) -> float:
    """Review need of an image (max over its questions; 0 with none) or of one question."""
    if isinstance(record, QuestionRecord):
        return question_review_priority(record)
    return max((question_review_priority(q) for q in record.questions), default=0.0)
