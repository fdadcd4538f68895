"""Stand-ins shared by tests, without Qt."""

from __future__ import annotations

import cv2
import numpy as np

from engine.annotation.chain import ChainRequest, raise_segmentation_error, run_chain
from engine.annotation.prompts import PromptState
from engine.annotation.settings import PipelineSettings
from engine.imaging.fusion import fuse, fuse_coverage
from engine.imaging.points import auto_points
from engine.prompts import Point
from engine.results import (AnswerResult, CaptionsResult, ChainResult, FusionResult, HeatmapResult, MaskCandidate,
                            PrepareResult, SegmentationResult)
from engine.vqa.question_use import QuestionUse


def fake_segmentation(prompts: PromptState, h: int = 30, w: int = 40) -> SegmentationResult:
    """Three candidates that depend on the prompts (so different prompts give different masks)."""
    cands = []
    for k in range(3):
        m = np.zeros((h, w), bool)
        for p in prompts.points:
            m[max(0, int(p.y) - 3 - k):int(p.y) + 4 + k, max(0, int(p.x) - 3 - k):int(p.x) + 4 + k] = p.label == 1
        cands.append(MaskCandidate(m, np.zeros((256, 256), np.float32), 0.9 - 0.1 * k))
    return SegmentationResult(candidates=tuple(cands), points=prompts.points, box=prompts.box)


class PipelineStandIn:
    """All of :class:`engine.annotation.pipeline_protocol.PipelineProtocol` without models, for
    tests of what drives a pipeline (the chain, the batch, the Annotator): the heat map and every
    mask are the image's bright pixels (mean over RGB > 128), one caption, the answer "thing".
    A test's stand-in subclasses it and overrides the stages it needs otherwise, with the same
    signatures (tests/engine/annotation/test_pipeline_protocol.py checks them)."""

    device = "cpu"
    random_weights = True
    image_id: str | None = None
    rgb: np.ndarray | None = None

    def __init__(self, settings: PipelineSettings | None = None) -> None:
        self.settings = settings or PipelineSettings(device="cpu")

    # -- models
    def model_ids(self) -> dict[str, str]:
        return {"itm": "stand-in"}

    def check_models(self) -> None:
        pass

    def load(self, progress=None, cancel=None, optional: tuple[str, ...] = ()) -> list[str]:
        return []

    def close(self) -> None:
        pass

    # -- the image
    @property
    def image_size(self) -> tuple[int, int]:
        h, w = self.rgb.shape[:2]
        return int(w), int(h)

    def set_image(self, rgb: np.ndarray, image_id: str | None = None) -> None:
        self.rgb, self.image_id = rgb, image_id or "stand-in"

    def prepare(self, roles=None, progress=None, cancel=None) -> PrepareResult:
        return PrepareResult(image_id=str(self.image_id), encoded=())

    def is_encoded(self, role: str) -> bool:
        return True  # nothing to encode

    # -- the stages
    def bright(self) -> np.ndarray:
        """[H, W] bool: the image's bright pixels."""
        return self.rgb.mean(axis=2) > 128

    def question_use(self, question: str) -> QuestionUse:
        return QuestionUse(question=question, used=question, word_pieces=1, heat_limit=33)

    def heatmap(self, question: str) -> HeatmapResult:
        heat = cv2.resize(self.bright().astype(np.float32), (24, 24), interpolation=cv2.INTER_AREA)
        return HeatmapResult(question=question, question_map=heat, token_maps=heat[None], tokens=("x",),
                             itm_probability=0.5)

    def auto_points(self, heat, num_points: int | None = None) -> tuple[Point, ...]:
        grid = heat.question_map if isinstance(heat, HeatmapResult) else np.asarray(heat)
        n = self.settings.num_points if num_points is None else int(num_points)
        return auto_points(grid, self.image_size, num_points=n)

    def segment(self, points=(), box=None, multimask: bool = True) -> SegmentationResult:
        cand = MaskCandidate(mask=self.bright(), low_res_logits=np.zeros((256, 256), np.float32), iou=0.5)
        return SegmentationResult(candidates=(cand,), points=tuple(points), box=box)

    def fuse(self, heat_map, mask, alpha: float | None = None, coverage=None) -> FusionResult:
        a = self.settings.alpha if alpha is None else float(alpha)
        fused = fuse(heat_map, mask, a) if coverage is None else fuse_coverage(heat_map, coverage, a)
        return FusionResult(fused_map=fused, alpha=a)

    def captions(self, sampling_map, progress=None, cancel=None, num_captions: int | None = None,
                 seed="settings") -> CaptionsResult:
        return CaptionsResult(captions=("a thing",), rounds=1, complete=True)

    def answer(self, question: str, captions, cancel=None) -> AnswerResult:
        return AnswerResult(answer="thing")

    def run(self, question: str, points=None, box=None, alpha: float | None = None, segment: bool | None = None,
            progress=None, cancel=None, instances: str = "auto") -> ChainResult:
        request = ChainRequest(question, points=None if points is None else tuple(points), box=box, alpha=alpha,
                               segment=segment, instances=instances)
        result = run_chain(self, request, progress=progress, cancel=cancel)
        raise_segmentation_error(result)
        return result
