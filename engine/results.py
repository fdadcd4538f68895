"""Typed results of the pipeline stages.

Arrays are numpy; shapes and frames are given per field. ``G`` is the heat-map grid side
(24 for BLIP-large at 384 px), ``H`` x ``W`` the image as displayed. ``seconds`` is wall time
of the stage that produced the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .prompts import Box, Point


@dataclass(frozen=True)
class HeatmapResult:
    """BLIP image-question Grad-CAM (LAVIS ``compute_gradcam`` semantics)."""

    question: str
    question_map: np.ndarray  # [G, G] float32, >= 0, not normalised (used as sampling weights)
    token_maps: np.ndarray  # [T, G, G] float32, one per question token (no [ENC]/[SEP])
    tokens: tuple[str, ...]  # T word pieces aligned with token_maps
    itm_probability: float  # softmax(itm_logits)[1]
    seconds: float = 0.0

    def word_maps(self) -> tuple[tuple[str, np.ndarray], ...]:
        """Per-word heat maps (the app's word list): word pieces (``##ing``) merged into their word.

        Returns ``(word, [G, G] float32)`` pairs in question order; a word's map is the mean of its
        pieces' maps (same units as ``token_maps``).
        """
        words: list[tuple[str, list[np.ndarray]]] = []
        for piece, tmap in zip(self.tokens, self.token_maps):
            if piece.startswith("##") and words:
                word, maps = words[-1]
                words[-1] = (word + piece[2:], maps + [tmap])
            else:
                words.append((piece, [tmap]))
        return tuple((w, np.mean(np.stack(ms), axis=0).astype(np.float32)) for w, ms in words)


@dataclass(frozen=True)
class MaskCandidate:
    mask: np.ndarray  # [H, W] bool, full image size
    low_res_logits: np.ndarray  # [256, 256] float32, decoder output before upscaling
    iou: float  # EfficientSAM's predicted IoU
    # Made off the GUI thread for the app (engine.annotation.prepare_candidates), else None:
    rle: dict | None = None  # the mask as COCO RLE, as the project stores it
    coverage: np.ndarray | None = None  # [Gh, Gw] float32: fraction of each heat-map cell the mask covers
    area: int | None = None  # pixels in the mask


@dataclass(frozen=True)
class SegmentationResult:
    candidates: tuple[MaskCandidate, ...]  # sorted by predicted IoU, best first
    points: tuple[Point, ...]  # the points actually given to the decoder (at most 6)
    dropped_points: int = 0  # how many older points were left out (EfficientSAM takes 6)
    box: Box | None = None
    seconds: float = 0.0

    @property
    def best(self) -> MaskCandidate:
        return self.candidates[0]

    @property
    def note(self) -> str:
        if self.dropped_points:
            return (f"EfficientSAM takes at most 6 prompts: the {self.dropped_points} oldest "
                    "point(s) were left out.")
        return ""


@dataclass(frozen=True)
class ProposalsResult:
    """The objects a question proposes: one segmentation per proposal, best first.

    ``instances`` "one": a single proposal from all the automatic points (the published chain);
    "several": one per separate hot region of the heat map, duplicates merged by mask overlap
    (:mod:`engine.annotation.proposals`). ``regions``: how many hot regions the map had."""

    segmentations: tuple[SegmentationResult, ...]
    instances: str = "one"
    regions: int = 1
    seconds: float = 0.0


@dataclass(frozen=True)
class FusionResult:
    fused_map: np.ndarray  # [G, G] float32 in [0, 1]
    alpha: float
    seconds: float = 0.0


@dataclass(frozen=True)
class CaptionsResult:
    captions: tuple[str, ...]
    rounds: int
    complete: bool  # False when the round cap or a cancel stopped before num_captions
    cancelled: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class AnswerResult:
    answer: str
    seconds: float = 0.0


@dataclass(frozen=True)
class PrepareResult:
    """What ``Pipeline.prepare`` did for the current image: the encoders it ran now (roles, in
    order; those already cached are not listed) and why any was skipped."""

    image_id: str
    encoded: tuple[str, ...]
    notes: tuple[str, ...] = ()
    seconds: float = 0.0


@dataclass
class ChainResult:
    """Everything one image + question run produced (``qmask ask``, batch, the GUI)."""

    image_id: str
    image_size: tuple[int, int]  # (W, H)
    question: str
    heatmap: HeatmapResult
    points: tuple[Point, ...]
    segmentation: SegmentationResult | None
    chosen: int  # index into segmentation.candidates
    fusion: FusionResult
    captions: CaptionsResult
    answer: AnswerResult
    timings: dict[str, float] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)  # role -> model id
    random_weights: bool = False
    notes: tuple[str, ...] = ()  # things the user should know (fallbacks, dropped points, ...)
    # Set when a mask was asked for and could not be made (engine.annotation.chain): the rest of
    # the chain ran on the plain heat map, and every front end reports the run as failed.
    segmentation_error: str | None = None
    segmentation_fault: str | None = None  # its error class: CheckpointError, ResourceError, ...
    points_asked: int | None = None  # automatic positive points asked for; None: the points were given
    proposals: tuple[SegmentationResult, ...] = ()  # one per proposed object, best first
    instances: str = "one"  # "one" or "several" (see ProposalsResult)

    @property
    def mask(self) -> np.ndarray | None:
        """The first proposal's chosen mask (the only one with ``instances="one"``)."""
        if self.segmentation is None:
            return None
        return self.segmentation.candidates[self.chosen].mask
