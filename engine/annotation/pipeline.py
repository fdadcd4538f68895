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
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import CancelledError, CheckpointError, InputError, ModelMissingError
from ..imaging.images import check_rgb
from ..vqa.question import clean_question_text
from ..prompts import Box, Point
from ..results import (AnswerResult, CaptionsResult, ChainResult, FusionResult, HeatmapResult,
                      PrepareResult, SegmentationResult)

ProgressFn = Callable[[str, float], None]
CancelFn = Callable[[], bool]

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
    # call on CUDA, 50 on the CPU.
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


@dataclass
class _ImageEntry:
    rgb: np.ndarray  # [H, W, 3] uint8
    itm_embeds: Any = None  # torch [1, 1 + G*G, D] on the model's device
    caption_embeds: Any = None


def _now() -> float:
    return time.perf_counter()


def _check_encoder(role: str) -> None:
    if role not in ENCODERS:
        raise InputError(f"Unknown encoder {role!r}; choose from {', '.join(ENCODERS)}.")


def word_maps(heat: HeatmapResult) -> tuple[tuple[str, np.ndarray], ...]:
    """Per-word heat maps for the GUI: word pieces (``##ing``) merged into their word.

    Returns ``(word, [G, G] float32)`` pairs in question order; a word's map is the mean of its
    pieces' maps (same units as ``heat.token_maps``).
    """
    words: list[tuple[str, list[np.ndarray]]] = []
    for piece, tmap in zip(heat.tokens, heat.token_maps):
        if piece.startswith("##") and words:
            word, maps = words[-1]
            words[-1] = (word + piece[2:], maps + [tmap])
        else:
            words.append((piece, [tmap]))
    return tuple((w, np.mean(np.stack(ms), axis=0).astype(np.float32)) for w, ms in words)


class Pipeline:
    """The QMask chain on one image at a time; see the module docstring for the contract.

    ``encode_count`` counts vision-encoder runs per encoder (``itm``, ``caption``,
    ``efficient_sam``): a new question on a cached image must not change it.
    """

    def __init__(self, settings: PipelineSettings, manager: Any):
        self.settings = settings.check()
        self.manager = manager
        self.encode_count: dict[str, int] = {e: 0 for e in ENCODERS}
        self.encode_seconds: dict[str, float] = {e: 0.0 for e in ENCODERS}
        self.last_notes: list[str] = []
        self.last_question_use: Any = None  # engine.vqa.question_use.QuestionUse of the last run()
        self._images: OrderedDict[str, _ImageEntry] = OrderedDict()
        self._current: str | None = None
        self._segmenter: Any = None
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
        self._images.clear()
        self._segmenter = None
        self._kv = None
        self.manager.release_all()

    # -- image -------------------------------------------------------------------------

    @property
    def image_id(self) -> str | None:
        return self._current

    @property
    def image_size(self) -> tuple[int, int]:
        """(W, H) of the current image."""
        rgb = self._entry().rgb
        return int(rgb.shape[1]), int(rgb.shape[0])

    def set_image(self, rgb: np.ndarray, image_id: str | None = None) -> None:
        """Make an image current. Encoders run lazily (on the first stage that needs them) and
        their outputs are kept per ``image_id`` (LRU, ``image_cache_size`` images)."""
        # Our own writable copy: decoded images are often read-only (torch warns on those), and a
        # caller reusing its buffer must not change a cached image.
        arr = check_rgb(rgb).copy()
        if image_id is None:
            digest = hashlib.sha1(repr(arr.shape).encode())
            digest.update(arr.tobytes())
            image_id = digest.hexdigest()[:16]
        if not isinstance(image_id, str) or not image_id:
            raise InputError("set_image needs a non-empty image_id string.")
        entry = self._images.get(image_id)
        if entry is None or entry.rgb.shape != arr.shape:
            entry = _ImageEntry(rgb=arr)
            self._images[image_id] = entry
            if self._kv is not None:
                self._kv.drop(image_id)
        self._images.move_to_end(image_id)
        while len(self._images) > self.settings.image_cache_size:
            self._images.popitem(last=False)
        self._current = image_id

    def _entry(self) -> _ImageEntry:
        if self._current is None or self._current not in self._images:
            raise InputError("No image: call set_image first.")
        return self._images[self._current]

    def prepare(self, roles: Sequence[str] | None = None, progress: ProgressFn | None = None,
                cancel: CancelFn | None = None) -> PrepareResult:
        """Run the current image's vision encoders now, before a question or a click needs them.

        ``roles``: any of ``efficient_sam``, ``itm``, ``caption``, run in that order; default: all
        that the settings use (EfficientSAM first, so that clicks are served soonest). Encoders
        already cached for this image are skipped, so this is cheap to repeat. ``cancel()`` is
        checked before each encoder block (:func:`engine.runtime.interrupt.stop_between`) and raises
        :class:`CancelledError`; encoders that finished stay cached. ``progress(stage, i / n)``
        before each encoder. A missing or broken EfficientSAM checkpoint is not an error here
        (the chain can run without masks): it is skipped and said in ``notes``.
        """
        from ..runtime.interrupt import stop_between

        entry = self._entry()
        wanted = tuple(ENCODERS) if roles is None else tuple(roles)
        for role in wanted:
            _check_encoder(role)
        order = [r for r in PREPARE_ORDER if r in wanted and (r != "efficient_sam" or self.settings.segment)]
        image_id = str(self._current)
        before = dict(self.encode_count)
        notes: list[str] = []
        start = _now()
        for i, role in enumerate(order):
            if cancel is not None and cancel():
                raise CancelledError("Cancelled while encoding the image.")
            if progress is not None:
                progress(f"encoding image ({ROLE_LABELS[role]})", i / len(order))
            message = f"Cancelled while encoding the image for the {ROLE_LABELS[role]}."
            if role == "efficient_sam":
                try:
                    seg = self._get_segmenter()
                except (CheckpointError, ModelMissingError) as err:
                    notes.append(f"Segmentation model not available ({err}).")
                    continue
                with self._guard("encoding the image"), stop_between(seg.model.image_encoder.blocks, cancel, message):
                    self._sam_set_image(seg, entry)
            else:
                blip = self._load(role)
                embeds = self._itm_embeds if role == "itm" else self._caption_embeds
                with self._guard("encoding the image"), \
                        stop_between(blip.model.vision_model.encoder.layers, cancel, message):
                    embeds(blip)
        if progress is not None:
            progress("image encoded", 1.0)
        encoded = tuple(r for r in order if self.encode_count[r] > before[r])
        return PrepareResult(image_id=image_id, encoded=encoded, notes=tuple(notes), seconds=_now() - start)

    def is_encoded(self, role: str) -> bool:
        """Whether the current image's ``role`` encoder output (``itm``, ``caption``,
        ``efficient_sam``) is cached, i.e. a stage needing it runs without encoding."""
        entry = self._entry()
        _check_encoder(role)
        if role == "efficient_sam":
            return self._segmenter is not None and self._segmenter.is_cached(str(self._current))
        return getattr(entry, f"{role}_embeds") is not None

    def _itm_embeds(self, itm: Any) -> Any:
        from ..vqa.gradcam import encode_image_itm

        return self._vision_embeds("itm", itm, encode_image_itm)

    def _caption_embeds(self, cap: Any) -> Any:
        from ..vqa.captions import encode_image_caption

        return self._vision_embeds("caption", cap, encode_image_caption)

    def _vision_embeds(self, role: str, blip: Any, encode: Callable[[Any, Any], Any]) -> Any:
        """The current image's BLIP vision output for ``role`` (itm | caption): encoded once per
        image, then moved along if the model moved (offload)."""
        from ..vqa.gradcam import preprocess_image

        entry = self._entry()
        attr = f"{role}_embeds"
        embeds = getattr(entry, attr)
        device = next(blip.model.parameters()).device
        if embeds is None:
            start = _now()
            embeds = encode(blip.model, preprocess_image(entry.rgb, blip.processor))
            self.encode_count[role] += 1
            self.encode_seconds[role] = _now() - start
        elif embeds.device != device:
            embeds = embeds.to(device)
        setattr(entry, attr, embeds)
        return embeds

    def _guard(self, what: str) -> Any:
        from ..runtime.devices import out_of_memory_as_resource_error

        return out_of_memory_as_resource_error(self.manager.device, what)

    # -- stages ------------------------------------------------------------------------

    def heatmap(self, question: str) -> HeatmapResult:
        """BLIP ITM Grad-CAM of ``question`` on the current image (vision encoder cached)."""
        text = clean_question_text(question)
        self._entry()
        from ..vqa.gradcam import compute_gradcam

        itm = self._load("itm")
        if self._kv is None or self._kv.model is not itm.model:
            from ..runtime.accelerate import CrossAttentionKVCache

            self._kv = CrossAttentionKVCache(itm.model)
        start = _now()
        with self._guard("computing the heat map"), self._kv.active(str(self._current)):
            embeds = self._itm_embeds(itm)
            res = compute_gradcam(itm.model, itm.processor, None, [text], block_num=self.settings.block_num,
                                  image_embeds=embeds)
        tokens, maps = res.question_token_maps(0)
        return HeatmapResult(question=text, question_map=res.question_maps[0], token_maps=maps, tokens=tokens,
                             itm_probability=float(res.itm_probabilities()[0]), seconds=_now() - start)

    def question_use(self, question: str) -> Any:
        """Which part of ``question`` the heat map follows and whether the answer model reads it
        whole (an ``engine.vqa.question_use.QuestionUse``; its ``note()`` is "" when nothing is cut).
        Loads the heat-map and answer models if they are not loaded yet."""
        from ..vqa.answer import SEPARATOR
        from ..vqa.question_use import question_use

        text = clean_question_text(question)
        qa = self._load("qa")
        return question_use(self._load("itm").processor, text, qa.tokenizer, text.lower().strip() + SEPARATOR)

    def auto_points(self, heat: HeatmapResult | np.ndarray, num_points: int | None = None) -> tuple[Point, ...]:
        """Salient positive points (image pixels, ``source="auto"``) from a heat map."""
        from ..imaging.points import auto_points

        grid = heat.question_map if isinstance(heat, HeatmapResult) else np.asarray(heat)
        n = self.settings.num_points if num_points is None else int(num_points)
        return auto_points(grid, self.image_size, num_points=n)

    def _load(self, role: str) -> Any:
        """A role's model, loaded outside the stage timers (load time is in ``manager.stats``)."""
        with self._guard(f"loading the {role} model"):
            return {"itm": self.manager.itm, "caption": self.manager.caption, "qa": self.manager.qa,
                    "efficient_sam": self.manager.sam}[role]()

    def _get_segmenter(self) -> Any:
        sam = self._load("efficient_sam")
        if self._segmenter is None or self._segmenter.model is not sam.model:
            from ..sam.segmenter import Segmenter

            self._segmenter = Segmenter(sam.model, device=self.manager.device, dtype=self.settings.dtype,
                                        cache_size=self.settings.image_cache_size)
        return self._segmenter

    def _sam_set_image(self, seg: Any, entry: _ImageEntry) -> None:
        """Make the current image EfficientSAM's (encoding it unless cached), counting encodes."""
        if seg.set_image(entry.rgb, str(self._current)):
            self.encode_count["efficient_sam"] += 1
            self.encode_seconds["efficient_sam"] = seg.last_encode_seconds

    def segment(self, points: Sequence[Point] = (), box: Box | None = None, multimask: bool = True
                ) -> SegmentationResult:
        """EfficientSAM masks from prompts (the image encoder runs once per image, cached)."""
        entry = self._entry()
        seg = self._get_segmenter()
        start = _now()
        with self._guard("segmenting"):
            self._sam_set_image(seg, entry)
            result = seg.predict(points, box=box, multimask=multimask)
        return dataclasses.replace(result, seconds=_now() - start)

    def fuse(self, heat_map: np.ndarray, mask: np.ndarray | None, alpha: float | None = None) -> FusionResult:
        """Heat map and mask fused on the heat-map grid, rescaled to [0, 1] (mask None: heat only)."""
        from ..imaging.fusion import fuse

        a = self.settings.alpha if alpha is None else float(alpha)
        start = _now()
        fused = fuse(np.asarray(heat_map), mask, a)
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

        self._entry()
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
            embeds = self._caption_embeds(cap)
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
            cancel: CancelFn | None = None) -> ChainResult:
        """Every stage on the current image (:func:`engine.annotation.chain.run_chain`), as the
        command line runs it. ``points`` None: automatic points from the heat map.

        When segmentation is off, or the heat map has no salient point, the plain heat map drives
        captioning (the reason is in ``last_notes`` and the result's ``notes``). A mask that was
        asked for and cannot be made fails the run: the chain's ``segmentation_error`` is raised
        with the class of the fault (an answer without its mask is not a success on the command
        line; the app keeps the answer and shows the error instead).
        """
        from .chain import ChainRequest, raise_segmentation_error, run_chain

        text = clean_question_text(question)
        self._entry()
        encodes_before = dict(self.encode_count)
        loads_before = dict(self.manager.stats.loads)
        request = ChainRequest(text, points=None if points is None else tuple(points), box=box, alpha=alpha,
                               segment=segment)
        result = run_chain(self, request, progress=progress, cancel=cancel)
        timings = dict(result.timings)
        for enc in ENCODERS:
            if self.encode_count[enc] > encodes_before[enc]:
                timings[f"encode_{enc}"] = self.encode_seconds[enc]
        for role, count in self.manager.stats.loads.items():
            if count > loads_before.get(role, 0):
                timings[f"load_{role}"] = self.manager.stats.load_seconds[role]
        result = dataclasses.replace(result, timings=timings)
        self.last_question_use = self.question_use(text)
        self.last_notes = list(result.notes)
        raise_segmentation_error(result)
        return result


__all__ = ["Pipeline", "PipelineSettings", "ProgressFn", "CancelFn", "STAGES", "ENCODERS",
           "ROLE_LABELS", "CPU_CAPTION_BATCH", "caption_batch_size_for", "word_maps", "clean_question_text"]
