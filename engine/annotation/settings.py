"""What a :class:`~engine.annotation.pipeline.Pipeline` is told: its settings and the names of its
stages, model roles and encoders, kept apart from the stages so that the app and the command line
read them without loading the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError

__all__ = ["PipelineSettings", "STAGES", "ENCODERS", "ROLE_LABELS", "PREPARE_ORDER", "CPU_CAPTION_BATCH",
           "caption_batch_size_for"]

STAGES = ("heatmap", "points", "segment", "fuse", "captions", "answer")
# What a progress message calls each model role while it loads.
ROLE_LABELS = {"itm": "heat-map model", "efficient_sam": "segmentation model", "caption": "caption model",
               "qa": "answer model"}
ENCODERS = ("itm", "caption", "efficient_sam")
PREPARE_ORDER = ("efficient_sam", "itm", "caption")  # clicks first, then the question's stages in order


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
    offload: str = "auto"  # auto | never | always: move idle models off the GPU (engine.models.manager)
    # Captions per generate() call; None = auto (see caption_batch_size_for): all of them in one
    # call on CUDA, CPU_CAPTION_BATCH on the CPU.
    caption_batch_size: int | None = None
    max_answer_length: int = 20  # UnifiedQA answer tokens (PNP-VQA)

    def check(self) -> "PipelineSettings":
        """Raise InputError for a value no stage can use; returns self."""
        def bad(msg: str) -> InputError:
            return InputError(f"Invalid setting: {msg}.")

        if not 0.0 <= float(self.alpha) <= 1.0:
            raise bad(f"alpha must be between 0 and 1, not {self.alpha}")
        for name in ("num_points", "block_num"):
            if int(getattr(self, name)) < 0:
                raise bad(f"{name} must be >= 0, not {getattr(self, name)}")
        for name in ("num_captions", "num_patches", "top_k", "max_caption_rounds", "image_cache_size",
                     "caption_batch_size", "max_answer_length"):
            value = getattr(self, name)
            if value is None and name == "caption_batch_size":
                continue  # auto
            if int(value) < 1:
                raise bad(f"{name} must be >= 1, not {value}")
        return self


# On a 2-core CPU, 100 captions in one generate() call took 4.5 s against 5.8 s in two calls
# of 50 (the decoder's weights are read once per step instead of twice).
CPU_CAPTION_BATCH = 100


def caption_batch_size_for(device: str, num_captions: int, requested: int | None = None) -> int:
    """Captions per ``generate()`` call: ``requested`` when given, else all ``num_captions`` in one
    call on CUDA (100 captions: ~0.2 s in one batch against 0.80 s in batches of 25 on an H100,
    where the per-call overhead dominates), else :data:`CPU_CAPTION_BATCH`.

    ``device`` is the pipeline's resolved device ("cpu", "cuda", "cuda:1", ...).
    """
    if requested is not None:
        return max(1, int(requested))
    if str(device).split(":", 1)[0] == "cuda":
        return max(1, int(num_captions))
    return CPU_CAPTION_BATCH
