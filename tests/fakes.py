"""Stand-ins shared by tests, without Qt."""

from __future__ import annotations

import numpy as np

from engine.annotation.prompts import PromptState
from engine.results import MaskCandidate, SegmentationResult


def fake_segmentation(prompts: PromptState, h: int = 30, w: int = 40) -> SegmentationResult:
    """Three candidates that depend on the prompts (so different prompts give different masks)."""
    cands = []
    for k in range(3):
        m = np.zeros((h, w), bool)
        for p in prompts.points:
            m[max(0, int(p.y) - 3 - k):int(p.y) + 4 + k, max(0, int(p.x) - 3 - k):int(p.x) + 4 + k] = p.label == 1
        cands.append(MaskCandidate(m, np.zeros((256, 256), np.float32), 0.9 - 0.1 * k))
    return SegmentationResult(candidates=tuple(cands), points=prompts.points, box=prompts.box)
