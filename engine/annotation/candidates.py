"""What a mask edit needs beyond the decoder, made where the decoder runs (off the GUI thread)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..imaging import fusion
from ..imaging.masks import encode_rle
from ..results import SegmentationResult

__all__ = ["prepare_candidates"]


def prepare_candidates(result: SegmentationResult, grid_shape: tuple[int, int] | None) -> SegmentationResult:
    """The same result with each candidate's RLE, heat-map-grid coverage and area computed:
    the work a mask edit needs beyond the decoder, done where the decoder runs (off the GUI
    thread)."""
    cands = tuple(replace(c, rle=encode_rle(c.mask) if c.rle is None else c.rle,
                          coverage=(fusion.mask_to_grid(c.mask, grid_shape) if grid_shape is not None
                                    and c.coverage is None else c.coverage),
                          area=int(np.count_nonzero(c.mask)) if c.area is None else c.area)
                  for c in result.candidates)
    return replace(result, candidates=cands)
