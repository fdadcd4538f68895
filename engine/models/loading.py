"""Loading one located model: BLIP and T5 through ``from_pretrained`` (offline, checked against
their config), EfficientSAM from its checkpoint; every failure named for the person using the app.
:class:`~engine.models.manager.ModelManager` decides when; this module only knows how."""

from __future__ import annotations

import importlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, ResourceError
from .load_errors import load_failure
from .locations import _EXPECTED_MODEL_TYPE, ModelLocation, _read_json, git_lfs_pointers, weight_files


@dataclass
class LoadedBlip:
    """A BLIP model (ITM or captioning) with its processor (image processor + tokenizer)."""

    model: Any
    processor: Any
    location: ModelLocation

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

    @property
    def image_processor(self) -> Any:
        return self.processor.image_processor


@dataclass
class LoadedT5:
    model: Any
    tokenizer: Any
    location: ModelLocation


@dataclass
class LoadedSam:
    model: Any
    location: ModelLocation
    checkpoint: Path  # the file loaded (a .pt, or the published .pt.zip read in place)


def _is_oom(err: BaseException) -> bool:
    from ..runtime.devices import is_out_of_memory

    return isinstance(err, MemoryError) or is_out_of_memory(err)


def quiet_transformers() -> None:
    """No progress bars ("Loading weights", "Writing model shards") and no log chatter from
    transformers: QMask shows its own progress, and checks what a load reports itself."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()


def _load_hf(role: str, cls: Any, loc: ModelLocation, dtype: Any, eager: bool) -> Any:
    """``cls.from_pretrained`` from a local folder, offline, with our checks on the result."""
    folder = loc.path
    assert folder is not None
    quiet_transformers()
    config = _read_json(folder / "config.json")
    if config is None:
        raise CheckpointError(f"{folder / 'config.json'} is missing or not valid JSON; download the "
                              f"{role} model again with: {loc.fetch_command()}")
    expected = _EXPECTED_MODEL_TYPE[role]
    if config.get("model_type") != expected:
        raise CheckpointError(f"The {role} folder {folder} holds a {config.get('model_type')!r} model, not a "
                              f"{expected!r} one; point --models at the right folder or run: {loc.fetch_command()}")
    pointers = git_lfs_pointers(folder)
    if pointers:
        what = "is a Git LFS pointer" if len(pointers) == 1 else "are Git LFS pointers"
        raise CheckpointError(f"{', '.join(pointers)} in {folder} {what}, not the real file (the repository was "
                              f"cloned without Git LFS). Run `git lfs pull` in that folder, or fetch the model "
                              f"with: {loc.fetch_command()}")
    kwargs: dict[str, Any] = dict(dtype=dtype, local_files_only=True, trust_remote_code=False,
                                  output_loading_info=True)
    if any(p.suffix == ".safetensors" for p in weight_files(folder)):
        kwargs["use_safetensors"] = True
    if eager:
        # Grad-CAM needs the cross-attention probabilities, which only the eager path returns.
        kwargs["attn_implementation"] = "eager"
    try:
        model, info = cls.from_pretrained(str(folder), **kwargs)
    except Exception as err:
        if _is_oom(err):
            raise ResourceError(f"Not enough memory to load the {role} model from {folder}.") from err
        raise CheckpointError(f"The {role} model in {folder} could not be loaded. {load_failure(err)} "
                              f"Fetch it again with: {loc.fetch_command()}") from err
    mismatched = info.get("mismatched_keys") or []
    missing = [k for k in (info.get("missing_keys") or []) if not k.endswith(("position_ids", "num_batches_tracked"))]
    params = dict(model.named_parameters())
    missing_numel = sum(params[k].numel() for k in missing if k in params)
    total = sum(p.numel() for p in params.values()) or 1
    # A checkpoint for another architecture loads "successfully" with fresh random weights in
    # place of everything it lacks; refuse that instead of answering with noise.
    if mismatched or missing_numel > 0.01 * total:
        raise CheckpointError(f"The {role} checkpoint in {folder} does not match its config: "
                              f"{len(missing)} missing and {len(mismatched)} mis-shaped tensors "
                              f"(e.g. {(missing + [str(m) for m in mismatched])[:3]}). Fetch it again with: "
                              f"{loc.fetch_command()}")
    return model.eval()


def _missing_modules(names: tuple[str, ...]) -> list[str]:
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def _check_tokenizer_dependencies(role: str, folder: Path) -> None:
    """UnifiedQA publishes only ``spiece.model`` (no ``tokenizer.json``); transformers converts it
    with sentencepiece + protobuf and, without them, fails with an unrelated message (tiktoken)."""
    if not (folder / "spiece.model").is_file() or (folder / "tokenizer.json").is_file():
        return
    missing = _missing_modules(("sentencepiece", "google.protobuf"))
    if missing:
        packages = " ".join("protobuf" if m == "google.protobuf" else m for m in missing)
        raise ResourceError(f"The {role} tokenizer in {folder} is a SentencePiece model (spiece.model); reading "
                            f"it needs the Python package(s) {packages}. Install them with: pip install {packages}")


def _load_processor(role: str, loc: ModelLocation, kind: str) -> Any:
    folder = loc.path
    assert folder is not None
    try:
        if kind == "blip":
            from transformers import BlipProcessor

            return BlipProcessor.from_pretrained(str(folder), local_files_only=True)
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    except Exception as err:
        raise CheckpointError(f"The {role} tokenizer/processor files in {folder} could not be loaded. "
                              f"{load_failure(err)} Fetch them again with: {loc.fetch_command()}") from err


def sam_checkpoint_file(path: Path) -> Path:
    """The ``.pt`` for an EfficientSAM location, extracting the published ``.pt.zip`` once."""
    if path.suffix != ".zip":
        return path
    target = path.with_name(path.name[:-len(".zip")])
    if target.is_file() and target.stat().st_size > 0:
        return target
    try:
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.namelist() if m.endswith(".pt") and not m.startswith("__MACOSX")]
            if not members:
                raise CheckpointError(f"{path} holds no .pt checkpoint.")
            tmp = target.with_name(target.name + ".extracting")
            with zf.open(members[0]) as src, open(tmp, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            os.replace(tmp, target)
    except (zipfile.BadZipFile, OSError) as err:
        raise CheckpointError(f"{path} is not a readable zip archive ({err}); delete it and download it again.") from err
    return target


def _sam_config_for(loc: ModelLocation) -> Any:
    """The EfficientSAM config the checkpoint was built with, None for the published ones."""
    marker = loc.marker or {}
    values = marker.get("efficient_sam_config")
    if not values:
        return None
    from ..sam.model import EfficientSamConfig

    return EfficientSamConfig.from_dict(values)


def _load_sam(loc: ModelLocation, device: Any) -> LoadedSam:
    from ..sam.checkpoint import load_efficient_sam

    assert loc.path is not None
    checkpoint = loc.path  # load_efficient_sam reads the published .pt.zip as well
    try:
        model = load_efficient_sam(checkpoint, config=_sam_config_for(loc), device=device, variant=loc.sam_variant)
    except (CheckpointError, ResourceError):
        raise
    except Exception as err:
        if _is_oom(err):
            raise ResourceError(f"Not enough memory to load EfficientSAM from {checkpoint}.") from err
        raise CheckpointError(f"The EfficientSAM checkpoint {checkpoint} could not be loaded. "
                              f"{load_failure(err)} Fetch it again with: {loc.fetch_command()}") from err
    return LoadedSam(model=model.eval(), location=loc, checkpoint=checkpoint)
