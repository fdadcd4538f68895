"""The current image and its encoders' outputs, held by a :class:`~engine.annotation.pipeline.Pipeline`.

Like segment-anything's ``SamPredictor``: ``set_image`` once, then the vision encoders (BLIP ITM,
BLIP captioning, EfficientSAM) run at most once per image, lazily or ahead of time
(:meth:`ImageEncoders.prepare`), and their outputs are kept per image id, least recently used
first out (``image_cache_size`` images). The pipeline's stages then read the cached outputs.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from contextlib import AbstractContextManager
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import CancelledError, CheckpointError, InputError, ModelMissingError
from ..imaging.images import check_rgb
from ..results import PrepareResult
from .pipeline_protocol import CancelFn, ProgressFn
from .settings import ENCODERS, PREPARE_ORDER, ROLE_LABELS, PipelineSettings

__all__ = ["ImageEncoders", "role_model", "memory_guard"]



@dataclass
class _ImageEntry:
    rgb: np.ndarray  # [H, W, 3] uint8
    itm_embeds: Any = None  # torch [1, 1 + G*G, D] on the model's device
    caption_embeds: Any = None


def _check_encoder(role: str) -> None:
    if role not in ENCODERS:
        raise InputError(f"Unknown encoder {role!r}; choose from {', '.join(ENCODERS)}.")


def memory_guard(manager: Any, what: str) -> AbstractContextManager[None]:
    """Out of memory while doing ``what`` on the manager's device, raised as a ResourceError."""
    from ..runtime.devices import out_of_memory_as_resource_error

    return out_of_memory_as_resource_error(manager.device, what)


def role_model(manager: Any, role: str) -> Any:
    """A role's model (``itm``, ``caption``, ``qa``, ``efficient_sam``) from an
    :class:`~engine.models.manager.ModelManager`, loaded on first use (its load time is in
    ``manager.stats``, outside any stage timer)."""
    with memory_guard(manager, f"loading the {role} model"):
        return {"itm": manager.itm, "caption": manager.caption, "qa": manager.qa,
                "efficient_sam": manager.sam}[role]()


class ImageEncoders:
    """The images a pipeline was given and their vision encoders' cached outputs.

    ``manager``: the pipeline's :class:`~engine.models.manager.ModelManager` (the encoders'
    models). ``encode_count`` counts vision-encoder runs per encoder (``itm``, ``caption``,
    ``efficient_sam``): a new question on a cached image must not change it; ``encode_seconds``
    holds each encoder's last run time.
    """

    def __init__(self, settings: PipelineSettings, manager: Any) -> None:
        self.settings = settings
        self.manager = manager
        self.encode_count: dict[str, int] = {e: 0 for e in ENCODERS}
        self.encode_seconds: dict[str, float] = {e: 0.0 for e in ENCODERS}
        self._images: OrderedDict[str, _ImageEntry] = OrderedDict()
        self._current: str | None = None
        self._segmenter: Any = None

    def clear(self) -> None:
        """Forget every image and the segmenter (with its cached encodings)."""
        self._images.clear()
        self._segmenter = None

    @property
    def image_id(self) -> str | None:
        return self._current

    @property
    def image_size(self) -> tuple[int, int]:
        """(W, H) of the current image."""
        rgb = self._entry().rgb
        return int(rgb.shape[1]), int(rgb.shape[0])

    @property
    def rgb(self) -> np.ndarray:
        """The current image, [H, W, 3] uint8 (InputError when there is none)."""
        return self._entry().rgb

    def set_image(self, rgb: np.ndarray, image_id: str | None = None) -> bool:
        """Make an image current. Encoders run lazily (on the first stage that needs them) and
        their outputs are kept per ``image_id`` (LRU, ``image_cache_size`` images). True when
        the image is new to the cache (or its size changed): nothing is cached for it."""
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
        new = entry is None or entry.rgb.shape != arr.shape
        if new:
            self._images[image_id] = _ImageEntry(rgb=arr)
        self._images.move_to_end(image_id)
        while len(self._images) > self.settings.image_cache_size:
            self._images.popitem(last=False)
        self._current = image_id
        return new

    def require_image(self) -> None:
        """InputError unless an image is current."""
        self._entry()

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

        self._entry()
        wanted = tuple(ENCODERS) if roles is None else tuple(roles)
        for role in wanted:
            _check_encoder(role)
        order = [r for r in PREPARE_ORDER if r in wanted and (r != "efficient_sam" or self.settings.segment)]
        image_id = str(self._current)
        before = dict(self.encode_count)
        notes: list[str] = []
        start = time.perf_counter()
        for i, role in enumerate(order):
            if cancel is not None and cancel():
                raise CancelledError("Cancelled while encoding the image.")
            if progress is not None:
                progress(f"encoding image ({ROLE_LABELS[role]})", i / len(order))
            message = f"Cancelled while encoding the image for the {ROLE_LABELS[role]}."
            if role == "efficient_sam":
                try:
                    seg = self.segmenter()
                except (CheckpointError, ModelMissingError) as err:
                    notes.append(f"Segmentation model not available ({err}).")
                    continue
                with memory_guard(self.manager, "encoding the image"), \
                        stop_between(seg.model.image_encoder.blocks, cancel, message):
                    self.sam_set_image(seg)
            else:
                blip = role_model(self.manager, role)
                embeds = self.itm_embeds if role == "itm" else self.caption_embeds
                with memory_guard(self.manager, "encoding the image"), \
                        stop_between(blip.model.vision_model.encoder.layers, cancel, message):
                    embeds(blip)
        if progress is not None:
            progress("image encoded", 1.0)
        encoded = tuple(r for r in order if self.encode_count[r] > before[r])
        return PrepareResult(image_id=image_id, encoded=encoded, notes=tuple(notes), seconds=time.perf_counter() - start)

    def is_encoded(self, role: str) -> bool:
        """Whether the current image's ``role`` encoder output (``itm``, ``caption``,
        ``efficient_sam``) is cached, i.e. a stage needing it runs without encoding."""
        entry = self._entry()
        _check_encoder(role)
        if role == "efficient_sam":
            return self._segmenter is not None and self._segmenter.is_cached(str(self._current))
        return getattr(entry, f"{role}_embeds") is not None

    def itm_embeds(self, itm: Any) -> Any:
        """The current image's BLIP ITM vision output (``[1, 1 + G*G, D]``), encoded once."""
        from ..vqa.gradcam import encode_image_itm

        return self._vision_embeds("itm", itm, encode_image_itm)

    def caption_embeds(self, cap: Any) -> Any:
        """The current image's BLIP captioning vision output, encoded once."""
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
            start = time.perf_counter()
            embeds = encode(blip.model, preprocess_image(entry.rgb, blip.processor))
            self.encode_count[role] += 1
            self.encode_seconds[role] = time.perf_counter() - start
        elif embeds.device != device:
            embeds = embeds.to(device)
        setattr(entry, attr, embeds)
        return embeds

    def segmenter(self) -> Any:
        """The EfficientSAM :class:`~engine.sam.segmenter.Segmenter` (its model loaded on first use)."""
        sam = role_model(self.manager, "efficient_sam")
        if self._segmenter is None or self._segmenter.model is not sam.model:
            from ..sam.segmenter import Segmenter

            self._segmenter = Segmenter(sam.model, device=self.manager.device, dtype=self.settings.dtype,
                                        cache_size=self.settings.image_cache_size)
        return self._segmenter

    def sam_set_image(self, seg: Any) -> None:
        """Make the current image EfficientSAM's (encoding it unless cached), counting encodes."""
        if seg.set_image(self._entry().rgb, str(self._current)):
            self.encode_count["efficient_sam"] += 1
            self.encode_seconds["efficient_sam"] = seg.last_encode_seconds
