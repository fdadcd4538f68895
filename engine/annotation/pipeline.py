"""One pipeline, stage by stage, shared by the GUI worker, ``qmask ask`` and ``qmask batch``.

Like segment-anything's ``SamPredictor``: ``set_image`` once (vision encoders run once per image
and are cached, LRU), then cheap per-question / per-click stages:

    heatmap(question) -> auto_points(heatmap) -> segment(points) -> fuse(map, mask, alpha)
        -> captions(fused map) -> answer(question, captions)

Each stage returns a typed result (``engine.results``) with its wall time, so a changed point
reruns only ``segment`` and later stages, and a changed alpha only ``fuse`` and later.
Not thread-safe: one thread (the GUI's worker, or the CLI's main thread) owns a Pipeline.

Use:

    settings = PipelineSettings(preset="base", device="auto")
    pipe = Pipeline.from_settings(settings, models_dir=None)  # lazy: no model loaded yet
    pipe.load(progress=cb, cancel=is_cancelled)     # optional: every model now, not on first use
    pipe.set_image(rgb_uint8_hxwx3, image_id="path-or-hash")
    pipe.prepare(progress=cb, cancel=is_cancelled)  # optional: encoders now (the GUI, on open)
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

import dataclasses
import time
from typing import Any, Sequence

import numpy as np

from ..errors import CancelledError, CheckpointError, InputError, ModelMissingError
from ..vqa.question import clean_question_text
from ..vqa.question_use import QuestionUse, question_use
from ..prompts import Box, Point
from ..results import (AnswerResult, CaptionsResult, ChainResult, FusionResult, HeatmapResult, PrepareResult,
                       SegmentationResult)
from .image_encoders import ImageEncoders, memory_guard, role_model
from .pipeline_protocol import CancelFn, ProgressFn
from .settings import ENCODERS, ROLE_LABELS, PipelineSettings, caption_batch_size_for


def _now() -> float:
    return time.perf_counter()


class Pipeline:
    """The QMask chain on one image at a time; see the module docstring for the contract. It
    implements :class:`~engine.annotation.pipeline_protocol.PipelineProtocol`.

    ``encoders`` (:class:`~engine.annotation.image_encoders.ImageEncoders`) holds the images and
    their cached encoder outputs; ``set_image``, ``prepare``, ``is_encoded``, ``image_id``,
    ``image_size`` and ``encode_count`` are its, through the pipeline.
    """

    def __init__(self, settings: PipelineSettings, manager: Any):
        self.settings = settings.check()
        self.manager = manager
        self.encoders = ImageEncoders(self.settings, manager)
        self.last_notes: list[str] = []
        self.last_question_use: QuestionUse | None = None  # of the last run()
        self._kv: Any = None  # engine.runtime.accelerate.CrossAttentionKVCache of the ITM model

    @classmethod
    def from_settings(cls, settings: PipelineSettings | None = None, models_dir: Any = None,
                      hf_cache_dir: Any = None) -> "Pipeline":
        """A pipeline whose models load lazily, on first use (nothing is loaded here)."""
        from ..models.manager import ModelManager

        settings = (settings or PipelineSettings()).check()
        manager = ModelManager(preset=settings.preset, sam_variant=settings.sam_variant, device=settings.device,
                               dtype=settings.dtype, models_dir=models_dir, hf_cache_dir=hf_cache_dir,
                               offload=settings.offload)
        return cls(settings, manager)

    # -- the image (the encoders') ----------------------------------------------------------

    @property
    def image_id(self) -> str | None:
        return self.encoders.image_id

    @property
    def image_size(self) -> tuple[int, int]:
        """(W, H) of the current image."""
        return self.encoders.image_size

    @property
    def encode_count(self) -> dict[str, int]:
        """Vision-encoder runs so far, per encoder (a question on a cached image adds none)."""
        return self.encoders.encode_count

    def set_image(self, rgb: np.ndarray, image_id: str | None = None) -> None:
        """Make an image current (see :meth:`ImageEncoders.set_image`); ``image_id`` None: a
        hash of the pixels."""
        if self.encoders.set_image(rgb, image_id) and self._kv is not None:
            self._kv.drop(str(self.encoders.image_id))  # the ITM cross-attention of older pixels

    def prepare(self, roles: Sequence[str] | None = None, progress: ProgressFn | None = None,
                cancel: CancelFn | None = None) -> PrepareResult:
        """Run the current image's encoders now (see :meth:`ImageEncoders.prepare`)."""
        return self.encoders.prepare(roles, progress=progress, cancel=cancel)

    def is_encoded(self, role: str) -> bool:
        """Whether the current image's ``role`` encoder output is cached."""
        return self.encoders.is_encoded(role)

    # -- facts -------------------------------------------------------------------------

    @property
    def device(self) -> str:
        return str(self.manager.device)

    @property
    def random_weights(self) -> bool:
        return bool(self.manager.random_weights)

    def model_ids(self) -> dict[str, str]:
        return self.manager.model_ids()

    def needed_roles(self) -> tuple[str, ...]:
        """The model roles the chain uses, in the order it first needs them."""
        return ("itm",) + (("efficient_sam",) if self.settings.segment else ()) + ("caption", "qa")

    def check_models(self) -> None:
        """ModelMissingError now (naming the download command) rather than halfway through a run."""
        roles = ("itm", "caption", "qa") + (("efficient_sam",) if self.settings.segment else ())
        self.manager.check_available(roles)

    def load(self, progress: ProgressFn | None = None, cancel: CancelFn | None = None,
             optional: tuple[str, ...] = ()) -> list[str]:
        """Load every model the chain needs now (the pipeline is otherwise lazy).

        ``progress(stage, fraction)`` is called before each role (``"loading <what>"``,
        ``i / n``) and once at the end (``"models loaded"``, 1.0). ``cancel()`` is checked
        between roles and raises :class:`CancelledError`; roles already loaded stay loaded.
        A role in ``optional`` (the app: ``efficient_sam``) that is missing or broken does not
        stop the others: the returned notes say why it was not loaded.
        """
        roles = self.needed_roles()
        notes: list[str] = []
        for i, role in enumerate(roles):
            if cancel is not None and cancel():
                raise CancelledError("Cancelled while loading the models.")
            if progress is not None:
                progress(f"loading {ROLE_LABELS.get(role, role)}", i / len(roles))
            try:
                self._load(role)
            except (CheckpointError, ModelMissingError) as err:
                if role not in optional:
                    raise
                notes.append(f"The {ROLE_LABELS.get(role, role)} could not be loaded, so there will be no "
                             f"masks. {err}")
        if cancel is not None and cancel():
            raise CancelledError("Cancelled while loading the models.")
        if progress is not None:
            progress("models loaded", 1.0)
        return notes

    def set_preset(self, preset: str) -> None:
        """Switch the UnifiedQA size; the previous QA model's memory is released."""
        self.manager.set_preset(preset)
        self.settings.preset = preset

    def close(self) -> None:
        """Release every model and cached embedding."""
        self.encoders.clear()
        self._kv = None
        self.manager.release_all()

    def _guard(self, what: str) -> Any:
        return memory_guard(self.manager, what)

    # -- stages ------------------------------------------------------------------------

    def heatmap(self, question: str) -> HeatmapResult:
        """BLIP ITM Grad-CAM of ``question`` on the current image (vision encoder cached)."""
        text = clean_question_text(question)
        self.encoders.require_image()
        from ..vqa.gradcam import compute_gradcam

        itm = self._load("itm")
        if self._kv is None or self._kv.model is not itm.model:
            from ..runtime.accelerate import CrossAttentionKVCache

            self._kv = CrossAttentionKVCache(itm.model)
        start = _now()
        with self._guard("computing the heat map"), self._kv.active(str(self.image_id)):
            embeds = self.encoders.itm_embeds(itm)
            res = compute_gradcam(itm.model, itm.processor, None, [text], block_num=self.settings.block_num,
                                  image_embeds=embeds)
        tokens, maps = res.question_token_maps(0)
        return HeatmapResult(question=text, question_map=res.question_maps[0], token_maps=maps, tokens=tokens,
                             itm_probability=float(res.itm_probabilities()[0]), seconds=_now() - start)

    def question_use(self, question: str) -> QuestionUse:
        """Which part of ``question`` the heat map follows and whether the answer model reads it
        whole (an ``engine.vqa.question_use.QuestionUse``; its ``note()`` is "" when nothing is cut).
        Loads the heat-map and answer models if they are not loaded yet."""
        text = clean_question_text(question)
        qa = self._load("qa")
        return question_use(self._load("itm").processor, text, qa.tokenizer)

    def auto_points(self, heat: HeatmapResult | np.ndarray, num_points: int | None = None) -> tuple[Point, ...]:
        """Salient positive points (image pixels, ``source="auto"``) from a heat map."""
        from ..imaging.points import auto_points

        grid = heat.question_map if isinstance(heat, HeatmapResult) else np.asarray(heat)
        n = self.settings.num_points if num_points is None else int(num_points)
        return auto_points(grid, self.image_size, num_points=n)

    def _load(self, role: str) -> Any:
        """A role's model, loaded outside the stage timers (load time is in ``manager.stats``)."""
        return role_model(self.manager, role)

    def segment(self, points: Sequence[Point] = (), box: Box | None = None, multimask: bool = True
                ) -> SegmentationResult:
        """EfficientSAM masks from prompts (the image encoder runs once per image, cached)."""
        self.encoders.require_image()
        seg = self.encoders.segmenter()
        start = _now()
        with self._guard("segmenting"):
            self.encoders.sam_set_image(seg)
            result = seg.predict(points, box=box, multimask=multimask)
        return dataclasses.replace(result, seconds=_now() - start)

    def fuse(self, heat_map: np.ndarray, mask: np.ndarray | None, alpha: float | None = None,
             coverage: np.ndarray | None = None) -> FusionResult:
        """Heat map and mask fused on the heat-map grid, rescaled to [0, 1] (mask None: heat only).

        ``coverage``: the mask already on the heat-map grid (``MaskCandidate.coverage``, ``[G, G]``
        float32), used in place of ``mask`` when given; the fused map is the same.
        """
        from ..imaging.fusion import fuse, fuse_coverage

        a = self.settings.alpha if alpha is None else float(alpha)
        start = _now()
        heat = np.asarray(heat_map)
        fused = fuse(heat, mask, a) if coverage is None else fuse_coverage(heat, coverage, a)
        return FusionResult(fused_map=fused, alpha=a, seconds=_now() - start)

    def caption_batch_size(self, num_captions: int | None = None) -> int:
        """Captions per ``generate()`` call on this pipeline's device (see :func:`caption_batch_size_for`)."""
        n = self.settings.num_captions if num_captions is None else int(num_captions)
        return caption_batch_size_for(self.device, n, self.settings.caption_batch_size)

    def captions(self, sampling_map: np.ndarray, progress: ProgressFn | None = None,
                 cancel: CancelFn | None = None, num_captions: int | None = None,
                 seed: int | None | str = "settings") -> CaptionsResult:
        """Question-guided captions sampled from ``sampling_map`` ([G, G], >= 0)."""
        from ..vqa.captions import generate_captions

        self.encoders.require_image()
        n = self.settings.num_captions if num_captions is None else int(num_captions)
        use_seed = self.settings.seed if seed == "settings" else seed
        cap = self._load("caption")
        start = _now()

        shown = [0.0]  # the bar never moves back (duplicates can lower the estimate)

        def report(fraction: float) -> None:
            shown[0] = max(shown[0], min(1.0, fraction))
            if progress is not None:
                progress("captions", shown[0])

        def on_round(_round: int, kept: int) -> None:
            report(kept / n)

        def on_step(expected: float) -> None:  # within one generate() call (100 on a CPU: seconds)
            report(expected / n)

        with self._guard("writing captions"):
            embeds = self.encoders.caption_embeds(cap)
            result = generate_captions(cap.model, cap.processor, embeds, sampling_map, num_captions=n,
                                       num_patches=self.settings.num_patches, top_k=self.settings.top_k,
                                       batch_size=self.caption_batch_size(n), seed=use_seed,
                                       max_rounds=self.settings.max_caption_rounds, progress=on_round,
                                       cancel=cancel, step_progress=on_step)
        return dataclasses.replace(result, seconds=_now() - start)

    def answer(self, question: str, captions: Sequence[str], cancel: CancelFn | None = None) -> AnswerResult:
        """UnifiedQA Fusion-in-Decoder answer from the captions. ``cancel()`` is checked before
        each T5 block (encoder and decoder: tens of milliseconds apart on a 2-core CPU) and raises
        :class:`CancelledError`."""
        from ..vqa.answer import answer_from_captions
        from ..runtime.interrupt import stop_between

        text = clean_question_text(question)
        if not captions:
            raise InputError("No captions to answer from: the caption stage produced none.")
        qa = self._load("qa")
        start = _now()
        blocks = [*qa.model.encoder.block, *qa.model.decoder.block]
        with self._guard("answering"), stop_between(blocks, cancel, "Cancelled while writing the answer."):
            answer = answer_from_captions(qa.model, qa.tokenizer, text, list(captions),
                                          max_length=self.settings.max_answer_length)
        return AnswerResult(answer=answer.strip(), seconds=_now() - start)

    # -- the chain ---------------------------------------------------------------------

    def run(self, question: str, points: Sequence[Point] | None = None, box: Box | None = None,
            alpha: float | None = None, segment: bool | None = None, progress: ProgressFn | None = None,
            cancel: CancelFn | None = None, instances: str = "auto") -> ChainResult:
        """Every stage on the current image (:func:`engine.annotation.chain.run_chain`), as the
        command line runs it. ``points`` None: automatic points from the heat map. ``instances``:
        "one" object, "several" (one per hot region of the heat map) or "auto" (from the question).

        When segmentation is off, or the heat map has no salient point, the plain heat map drives
        captioning (the reason is in ``last_notes`` and the result's ``notes``). A mask that was
        asked for and cannot be made fails the run: the chain's ``segmentation_error`` is raised
        with the class of the fault (an answer without its mask is not a success on the command
        line; the app keeps the answer and shows the error instead).
        """
        from .chain import ChainRequest, raise_segmentation_error, run_chain

        text = clean_question_text(question)
        self.encoders.require_image()
        encodes_before = dict(self.encode_count)
        loads_before = dict(self.manager.stats.loads)
        request = ChainRequest(text, points=None if points is None else tuple(points), box=box, alpha=alpha,
                               segment=segment, instances=instances)
        result = run_chain(self, request, progress=progress, cancel=cancel)
        timings = dict(result.timings)
        for enc in ENCODERS:
            if self.encode_count[enc] > encodes_before[enc]:
                timings[f"encode_{enc}"] = self.encoders.encode_seconds[enc]
        for role, count in self.manager.stats.loads.items():
            if count > loads_before.get(role, 0):
                timings[f"load_{role}"] = self.manager.stats.load_seconds[role]
        result = dataclasses.replace(result, timings=timings)
        self.last_question_use = self.question_use(text)
        self.last_notes = list(result.notes)
        raise_segmentation_error(result)
        return result


__all__ = ["Pipeline"]
