"""One object of the shown image, live: its record plus what only the session knows.

:class:`ObjectState` holds an object's :class:`~engine.project.ObjectRecord` (what the project
keeps) and its live editing state: the prompts given to the decoder, the decoder's candidates
and the chosen one, the brush's add/erase layers (:mod:`.corrections`), a change counter for the
decoder's replies (``generation``: latest wins) and a small cache of segmentations, so undo and
redo show a mask at once. ``hidden`` is a view setting (the panel's eye), not saved.

The final mask is ``(model | add) & ~erase`` ([H, W] bool, image pixels): the chosen candidate,
or the record's own mask while no decoder ran on it (reopened, imported, painted), with the
strokes applied. An object whose mask no prompt made (imported, drawn, painted) keeps that mask
as its *base*: prompts added to it decode a new mask, and taking them all away again (undo)
gives the base back, never nothing. Masks are decoded only when asked: an image holding 1,000
objects decodes the one being edited, not all of them.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..project import ObjectRecord
from ..results import MaskCandidate, SegmentationResult
from .corrections import Corrections, restore_corrections
from .prompts import PromptState

__all__ = ["ObjectState", "SEG_CACHE_SIZE"]

SEG_CACHE_SIZE = 16  # segmentations kept per object, so undo/redo shows a mask at once


class ObjectState:
    """See the module docstring. Engine arrays (candidates) are never modified."""

    def __init__(self, record: ObjectRecord) -> None:
        self.record = record
        self.prompts = PromptState(tuple(record.points), record.box)
        self.segmentation: SegmentationResult | None = None
        self.chosen = 0
        self.corrections = restore_corrections(record)
        self.generation = 0
        self.hidden = False
        # The mask no prompt made (imported, drawn, painted): what the object is without prompts.
        self.base_rle = dict(record.mask_rle) if record.has_mask and not record.points and record.box is None \
            else None
        self.base_source = record.mask_source
        self._base_mask: np.ndarray | None = None
        # The model's mask for the prompts while no segmentation is held (reopened, or released):
        # (prompts key, chosen, RLE). Strokes lie over it, so a stroke's undo gives back its pixels.
        self._released: tuple[tuple, int, dict] | None = None
        self._released_mask: np.ndarray | None = None
        written = record.__dict__.get("_mask_rle_value")  # (a mask still waiting to be encoded is not read here)
        if isinstance(written, dict) and self.base_rle is None:
            self._released = (self.prompts.key(), 0, written)  # as written (strokes applied: all it knows)
        self._seg_cache: OrderedDict[tuple, SegmentationResult] = OrderedDict()

    @property
    def uid(self) -> str:
        return self.record.uid

    # ------------------------------------------------------------------ masks
    @property
    def candidate(self) -> MaskCandidate | None:
        """The chosen candidate of the current segmentation, or None."""
        if self.segmentation is None or not self.segmentation.candidates:
            return None
        return self.segmentation.candidates[min(self.chosen, len(self.segmentation.candidates) - 1)]

    @property
    def model_mask(self) -> np.ndarray | None:
        """The decoder's chosen mask (before strokes), else the record's mask, [H, W] bool, or None."""
        chosen = self.candidate
        if chosen is not None:
            return chosen.mask
        if self.prompts.empty and self.base_rle is not None:
            if self._base_mask is None:
                from ..imaging.rle import decode_rle

                self._base_mask = decode_rle(self.base_rle)
                self._base_mask.flags.writeable = False
            return self._base_mask
        kept = self._released
        if self.segmentation is None and kept is not None and kept[:2] == (self.prompts.key(), self.chosen):
            if self._released_mask is None:
                from ..imaging.rle import decode_rle

                self._released_mask = decode_rle(kept[2])
                self._released_mask.flags.writeable = False
            return self._released_mask
        if self.segmentation is None and not self.prompts.empty and self.record.has_mask:
            return self.record.mask()  # the final mask, not decoded again yet: strokes applied again change nothing
        return None

    @property
    def mask(self) -> np.ndarray | None:
        """The final mask, [H, W] bool (read-only), or None: what is shown, fused, saved, exported."""
        return self.corrections.apply(self.model_mask)

    @property
    def mask_shape(self) -> tuple[int, int] | None:
        size = self.record.mask_size
        if size is not None:
            return size
        model = self.model_mask
        return model.shape if model is not None else self.corrections.shape

    @property
    def edited(self) -> bool:
        """The prompts differ from the ones the object was proposed with, a non-default candidate
        is chosen, or strokes change the mask."""
        auto = PromptState(tuple(self.record.auto_points))
        return self.prompts.key() != auto.key() or self.chosen != 0 or not self.corrections.empty

    def coverage(self, grid_shape: tuple[int, int]) -> np.ndarray:
        """The final mask's coverage of the heat-map grid (``[Gh, Gw]`` float32 in [0, 1]): the
        chosen candidate's (computed off the GUI thread) while no stroke changes it, else from the
        live mask, else from the record's RLE runs (no decoding)."""
        from ..imaging.fusion import mask_to_grid
        from ..project.review import rle_to_grid

        shape = tuple(int(v) for v in grid_shape)
        chosen = self.candidate
        if chosen is not None and chosen.coverage is not None and chosen.coverage.shape == shape \
                and self.corrections.empty:
            return chosen.coverage
        known = self.record.known_coverage(shape)
        if known is not None:
            return known
        if self.segmentation is not None or not self.corrections.empty:
            mask = self.mask
            cover = np.zeros(shape, np.float32) if mask is None else mask_to_grid(mask, shape).astype(np.float32)
        elif self.record.has_mask:
            cover = rle_to_grid(self.record.mask_rle, shape)
        else:
            return np.zeros(shape, np.float32)
        self.record.remember_coverage(cover)
        return cover

    def release(self) -> None:
        """Forget decoded arrays (another object is edited now): the record keeps the mask as RLE."""
        self.record._mask_cache = None
        self._base_mask = None
        self._released_mask = None
        chosen = self.candidate
        if chosen is not None:  # its model mask is kept, compact, for the strokes over it
            from ..imaging.rle import encode_rle

            rle = dict(chosen.rle) if chosen.rle is not None else encode_rle(chosen.mask)
            self._released = (self.prompts.key(), self.chosen, rle)
        self._seg_cache.clear()
        if self.segmentation is not None and not self.corrections.empty:
            self.corrections.pack(self.record_layers())
        self.segmentation = None

    def record_layers(self) -> tuple[dict | None, dict | None]:
        return self.record.stroke_add_rle, self.record.stroke_erase_rle

    # ------------------------------------------------------------------ segmentations
    def cached_segmentation(self, prompts: PromptState) -> SegmentationResult | None:
        result = self._seg_cache.get(prompts.key())
        if result is not None:
            self._seg_cache.move_to_end(prompts.key())
        return result

    def cache_segmentation(self, prompts: PromptState, result: SegmentationResult) -> None:
        self._seg_cache[prompts.key()] = result
        self._seg_cache.move_to_end(prompts.key())
        while len(self._seg_cache) > SEG_CACHE_SIZE:
            self._seg_cache.popitem(last=False)

    def needs_segmentation(self) -> bool:
        return not self.prompts.empty and self.cached_segmentation(self.prompts) is None

    # ------------------------------------------------------------------ the record
    def write_mask(self) -> None:
        """Put the final mask in the record: the chosen candidate's RLE (encoded off the GUI thread)
        while no stroke changes it, else the corrected mask, encoded where the record is first read
        (the project's store thread), not here. An edited object is a person's, no longer a proposal."""
        chosen, record = self.candidate, self.record
        source = "user" if self.edited else "auto"
        record.points, record.box = list(self.prompts.points), self.prompts.box
        record.stroke_add_rle, record.stroke_erase_rle = self.corrections.to_rles()
        if chosen is None and self.prompts.empty and self.corrections.empty:  # the base, or nothing
            record.mask_rle = None if self.base_rle is None else dict(self.base_rle)
            record.mask_source = self.base_source if self.base_rle is not None else source  # type: ignore[assignment]
            record.touch()
            return
        if chosen is not None and chosen.rle is not None and self.corrections.empty:
            record.mask_rle, record.mask_source = dict(chosen.rle), source
            record.mask_score = float(chosen.iou)
            if chosen.coverage is not None:  # computed with the RLE: the project write need not
                record.remember_coverage(chosen.coverage)
            record.touch()
        else:
            mask = self.mask
            record.set_mask(mask, source=source, score=record.mask_score if chosen is None else chosen.iou,
                            encode_later=mask is not None and not mask.flags.writeable)
        if source == "user":
            record.proposal = False
        elif record.mask_rle is not None and record.auto_mask_rle is None:
            record.auto_mask_rle = dict(record.mask_rle)
