"""One pipeline, stage by stage, shared by the GUI worker, ``qmask ask`` and ``qmask batch``.

Like segment-anything's ``SamPredictor``: ``set_image`` once (vision encoders run once per image
and are cached, LRU), then cheap per-question / per-click stages:

    heatmap(question) -> auto_points(heatmap) -> segment(points) -> fuse(map, mask, alpha)
        -> captions(fused map) -> answer(question, captions)

Each stage returns a typed result (``engine.results``) with its wall time, so a changed point
reruns only ``segment`` and later stages, and a changed alpha only ``fuse`` and later.
Not thread-safe: one thread (the GUI's worker, or the CLI's main thread) owns a Pipeline.

INTERFACE CONTRACT (implemented by the model-management/pipeline work; others build on it):

    settings = PipelineSettings(preset="base", device="auto")
    pipe = Pipeline.from_settings(settings, models_dir=None)  # lazy: no model loaded yet
    pipe.set_image(rgb_uint8_hxwx3, image_id="path-or-hash")
    heat = pipe.heatmap("what is the man holding?")
    points = pipe.auto_points(heat)                 # tuple[Point], source="auto"
    seg = pipe.segment(points)                      # SegmentationResult, decoder only
    fused = pipe.fuse(heat.question_map, seg.best.mask, alpha=0.5)
    caps = pipe.captions(fused.fused_map, progress=cb, cancel=is_cancelled)
    ans = pipe.answer(heat.question, caps.captions)
    chain = pipe.run("question")                    # all of the above -> ChainResult

``progress(stage: str, fraction: float)`` is called from the owning thread; ``cancel()``
returns True to stop at the next checkpoint (raises ``CancelledError`` except in ``captions``,
which returns what it has with ``cancelled=True``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

ProgressFn = Callable[[str, float], None]
CancelFn = Callable[[], bool]


@dataclass
class PipelineSettings:
    preset: str = "base"  # base | large | 3b (size of UnifiedQA)
    sam_variant: str = "vitt"  # vitt | vits
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "auto"  # auto (fp32 on CPU, fp16 on CUDA) | float32 | float16 | bfloat16
    block_num: int = 7  # Grad-CAM cross-attention layer (PNP-VQA)
    num_points: int = 5
    alpha: float = 0.5
    num_captions: int = 100
    num_patches: int = 20
    top_k: int = 50
    max_caption_rounds: int = 50
    seed: int | None = 0
    image_cache_size: int = 8
    segment: bool = True
