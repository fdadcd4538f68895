"""The manager that holds QMask's models: each role loaded lazily, at most one per role, on the
chosen device and dtype, moved off the GPU when memory is short and freed when replaced.

Where a role is found: :mod:`engine.models.locations`; how it is loaded:
:mod:`engine.models.loading`. Their public names are importable from here as well.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, ResourceError
from .loading import (LoadedBlip, LoadedSam, LoadedT5, _check_tokenizer_dependencies, _is_oom, _load_hf,
                      _load_processor, _load_sam, sam_checkpoint_file)
from .random_models import MARKER_NAME
from .locations import (CAPTION_REPO, ITM_REPO, PRESETS, QA_REPOS, ROLES, SAM_FILES, SAM_REPO,
                        SAM_VARIANTS, SOURCE_NAME, ModelLocation, check_preset, check_role, check_sam_variant,
                        fetch_command, format_size, git_lfs_pointers, locate, locate_all, models_dir_from_env,
                        qmask_cache_dir, repo_id, weight_files)


@dataclass
class _Slot:
    loaded: Any
    on_device: bool = True
    nbytes: int = 0


@dataclass
class ModelManagerStats:
    """Counters for tests and the benchmark: how often each role was loaded / offloaded."""

    loads: dict[str, int] = field(default_factory=lambda: {r: 0 for r in ROLES})
    offloads: dict[str, int] = field(default_factory=lambda: {r: 0 for r in ROLES})
    releases: dict[str, int] = field(default_factory=lambda: {r: 0 for r in ROLES})
    load_seconds: dict[str, float] = field(default_factory=lambda: {r: 0.0 for r in ROLES})


class ModelManager:
    """Loads the four roles lazily and keeps at most one model per role in memory.

    ``itm()``, ``caption()``, ``qa()`` and ``sam()`` load on first use and return the same
    object afterwards. ``set_preset`` / ``set_sam_variant`` release the replaced model (its
    memory is freed: references dropped, ``gc.collect()``, ``torch.cuda.empty_cache()``).
    On CUDA, before a role is loaded or brought back, other roles are moved to the CPU when
    free GPU memory is short (``offload="auto"``; as LAVIS does for the 3B QA model), and moved
    back on their next use. ``offload="never"`` keeps everything on the GPU; ``"always"``
    keeps only the role in use there.
    """

    def __init__(self, preset: str = "base", sam_variant: str = "vitt", device: str = "auto",
                 dtype: str = "auto", models_dir: str | os.PathLike[str] | None = None,
                 hf_cache_dir: str | os.PathLike[str] | None = None, offload: str = "auto"):
        from ..runtime.devices import resolve_device, resolve_dtype

        self.preset = check_preset(preset)
        self.sam_variant = check_sam_variant(sam_variant)
        if offload not in ("auto", "never", "always"):
            raise InputError(f"Unknown offload policy {offload!r}; choose auto, never or always.")
        self.offload = offload
        self.models_dir = models_dir_from_env(models_dir)
        self.hf_cache_dir = Path(hf_cache_dir) if hf_cache_dir else None
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.stats = ModelManagerStats()
        self._slots: dict[str, _Slot] = {}
        self._locations: dict[str, ModelLocation] = {}
        self._lock = threading.RLock()

    # -- where -------------------------------------------------------------------------

    def location(self, role: str) -> ModelLocation:
        """Where ``role`` is (cached after the first look; no network)."""
        check_role(role)
        with self._lock:
            if role not in self._locations:
                self._locations[role] = locate(role, self.preset, self.sam_variant, self.models_dir,
                                               self.hf_cache_dir, use_env=False)
            return self._locations[role]

    def locations(self) -> dict[str, ModelLocation]:
        return {r: self.location(r) for r in ROLES}

    def check_available(self, roles: tuple[str, ...] = ROLES) -> None:
        """Raise ModelMissingError for the first role that is nowhere on this machine."""
        for role in roles:
            self.location(role).require()

    def model_ids(self) -> dict[str, str]:
        return {r: loc.model_id for r, loc in self.locations().items()}

    @property
    def random_weights(self) -> bool:
        """True when any role that is present carries the random-weights marker."""
        return any(loc.random for loc in self.locations().values() if loc.found)

    # -- loading -----------------------------------------------------------------------

    def is_loaded(self, role: str) -> bool:
        return role in self._slots

    def itm(self) -> LoadedBlip:
        return self._get("itm")

    def caption(self) -> LoadedBlip:
        return self._get("caption")

    def qa(self) -> LoadedT5:
        return self._get("qa")

    def sam(self) -> LoadedSam:
        return self._get("efficient_sam")

    def _get(self, role: str) -> Any:
        with self._lock:
            slot = self._slots.get(role)
            if slot is not None:
                if not slot.on_device:
                    self._make_room(role, slot.nbytes)
                    self._move(role, slot, to_device=True)
                elif self.offload == "always":
                    self._make_room(role, slot.nbytes)
                return slot.loaded
            loc = self.location(role).require()
            start = time.perf_counter()
            self._make_room(role, self._estimate_bytes(loc))
            try:
                loaded = self._load(role, loc)
            except Exception as err:
                if _is_oom(err):
                    raise ResourceError(f"Not enough {'GPU ' if self.device.type == 'cuda' else ''}memory to "
                                        f"load the {role} model; try --device cpu or a smaller preset.") from err
                raise
            model = loaded.model
            nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
            self._slots[role] = _Slot(loaded=loaded, on_device=True, nbytes=nbytes)
            self.stats.loads[role] += 1
            self.stats.load_seconds[role] = time.perf_counter() - start
            return loaded

    def _load(self, role: str, loc: ModelLocation) -> Any:
        loaded = self._load_role(role, loc)
        if self.device.type == "cpu":
            _pack_inference_linears(role, loaded.model)
        return loaded

    def _load_role(self, role: str, loc: ModelLocation) -> Any:
        if role == "efficient_sam":
            return _load_sam(loc, self.device)
        from transformers import BlipForConditionalGeneration, BlipForImageTextRetrieval, T5ForConditionalGeneration

        if role == "itm":
            model = _load_hf(role, BlipForImageTextRetrieval, loc, self.dtype, eager=True)
            out: Any = LoadedBlip(model=model, processor=_load_processor(role, loc, "blip"), location=loc)
        elif role == "caption":
            model = _load_hf(role, BlipForConditionalGeneration, loc, self.dtype, eager=False)
            out = LoadedBlip(model=model, processor=_load_processor(role, loc, "blip"), location=loc)
        else:
            # T5 in fp16 overflows (a known T5 issue); bfloat16 is safe, so fp16 becomes bf16 for QA.
            dtype = self.dtype
            import torch

            if dtype == torch.float16:
                dtype = torch.bfloat16 if _bf16_ok(self.device) else torch.float32
            assert loc.path is not None
            _check_tokenizer_dependencies(role, loc.path)  # before minutes of loading weights
            model = _load_hf(role, T5ForConditionalGeneration, loc, dtype, eager=False)
            out = LoadedT5(model=model, tokenizer=_load_processor(role, loc, "t5"), location=loc)
        out.model.to(self.device)
        return out

    def _estimate_bytes(self, loc: ModelLocation) -> int:
        import torch

        size = loc.size_bytes
        if loc.path is not None and loc.path.is_dir():
            # Only the weights that will be read count, not a clone's other formats (.bin, .h5).
            size = sum(p.stat().st_size for p in weight_files(loc.path) if p.is_file()) or size
        # Checkpoints are usually stored in float32; half precision halves them in memory.
        if self.dtype in (torch.float16, torch.bfloat16):
            size //= 2
        return size

    # -- GPU memory --------------------------------------------------------------------

    def _make_room(self, role: str, need: int) -> None:
        if self.device.type != "cuda" or self.offload == "never":
            return
        import torch

        margin = 1 << 30  # activations, Grad-CAM's graph, caption batches
        # EfficientSAM stays: it is small, and its Segmenter keeps image embeddings on the device.
        order = [r for r in ("caption", "itm", "qa") if r != role]
        for other in order:
            slot = self._slots.get(other)
            if slot is None or not slot.on_device:
                continue
            if self.offload == "auto":
                free, _total = torch.cuda.mem_get_info(self.device)
                if free >= need + margin:
                    return
            self._move(other, slot, to_device=False)

    def _move(self, role: str, slot: _Slot, to_device: bool) -> None:
        import torch

        target = self.device if to_device else torch.device("cpu")
        slot.loaded.model.to(target)
        slot.on_device = to_device
        if not to_device:
            self.stats.offloads[role] += 1
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    # -- replacing ---------------------------------------------------------------------

    def release(self, role: str) -> None:
        """Drop a loaded role and give its memory back (CPU and GPU)."""
        with self._lock:
            slot = self._slots.pop(role, None)
            if slot is None:
                return
            self.stats.releases[role] += 1
            del slot
            _free_memory(self.device)

    def release_all(self) -> None:
        for role in list(self._slots):
            self.release(role)

    def set_preset(self, preset: str) -> None:
        """Switch the QA size; the loaded QA model (if any) is released."""
        check_preset(preset)
        with self._lock:
            if preset == self.preset:
                return
            self.preset = preset
            self._locations.pop("qa", None)
            self.release("qa")

    def set_sam_variant(self, variant: str) -> None:
        check_sam_variant(variant)
        with self._lock:
            if variant == self.sam_variant:
                return
            self.sam_variant = variant
            self._locations.pop("efficient_sam", None)
            self.release("efficient_sam")


def _pack_inference_linears(role: str, model: Any) -> int:
    """CPU models: what ``engine.runtime.accelerate`` gives each role (packed oneDNN layers)."""
    from ..runtime.accelerate import accelerate

    return accelerate(model, role).packed_layers


def _bf16_ok(device: Any) -> bool:
    import torch

    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def _free_memory(device: Any) -> None:
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


__all__ = [
    "ROLES", "PRESETS", "SAM_VARIANTS", "ITM_REPO", "CAPTION_REPO", "QA_REPOS", "SAM_REPO", "SAM_FILES",
    "SOURCE_NAME", "MARKER_NAME", "ModelLocation", "ModelManager", "LoadedBlip", "LoadedT5", "LoadedSam",
    "locate", "locate_all", "repo_id", "fetch_command", "models_dir_from_env", "qmask_cache_dir",
    "sam_checkpoint_file", "format_size", "check_preset", "check_sam_variant", "weight_files", "git_lfs_pointers",
]
