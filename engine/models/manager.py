"""Where QMask's models are and how they are loaded.

Four roles: ``itm`` (BLIP image-text matching, for Grad-CAM), ``caption`` (BLIP captioning),
``qa`` (UnifiedQA-v2 T5, size set by the preset) and ``efficient_sam`` (EfficientSAM-Ti or -S).

Where a role is looked for, in order, never touching the network:

1. a models folder (``--models DIR`` or ``$QMASK_MODELS_DIR``) holding ``itm/``, ``caption/``,
   ``qa/`` (or ``qa-<preset>/``) in ``from_pretrained`` layout and ``efficient_sam/`` with
   ``efficient_sam_vitt.pt`` / ``efficient_sam_vits.pt`` (or the published ``.pt.zip``);
2. the Hugging Face cache (``huggingface_hub.try_to_load_from_cache``, offline) for the BLIP
   and T5 models, and QMask's own cache folder (:func:`qmask_cache_dir`) for EfficientSAM.

Folders are read as the repositories publish them (tests/test_published_layouts.py): UnifiedQA's
``pytorch_model.bin`` + ``spiece.model`` without ``tokenizer.json`` (transformers converts it with
sentencepiece + protobuf), the BLIP ports' legacy configs and ``bert-base-uncased`` tokenizers,
both weight formats side by side (safetensors preferred), Hugging Face cache snapshots of
symlinks into ``blobs/``, EfficientSAM-S as its ``.pt.zip``.

A role found nowhere raises :class:`~engine.errors.ModelMissingError` naming the
``qmask models download`` command that fetches it. :class:`ModelManager` loads roles lazily
(on first use), on the chosen device and dtype, and frees a role's memory when it is replaced.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, InputError, ModelMissingError, ResourceError
from .load_errors import load_failure
from .random_models import MARKER_NAME, read_marker

ROLES = ("itm", "caption", "qa", "efficient_sam")
PRESETS = ("base", "large", "3b")
SAM_VARIANTS = ("vitt", "vits")

ITM_REPO = "Salesforce/blip-itm-large-coco"
CAPTION_REPO = "Salesforce/blip-image-captioning-large"
QA_REPOS = {
    "base": "allenai/unifiedqa-v2-t5-base-1363200",
    "large": "allenai/unifiedqa-v2-t5-large-1363200",
    "3b": "allenai/unifiedqa-v2-t5-3b-1363200",
}
SAM_REPO = "yformer/EfficientSAM"
# variant -> (checkpoint file name, path of the published file in the GitHub repository)
SAM_FILES = {
    "vitt": ("efficient_sam_vitt.pt", "weights/efficient_sam_vitt.pt"),
    "vits": ("efficient_sam_vits.pt", "weights/efficient_sam_vits.pt.zip"),
}
SOURCE_NAME = "QMASK_SOURCE.json"  # written next to what ``qmask models download --to`` fetched

# A folder counts as holding weights when one of these is present.
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")
_EXPECTED_MODEL_TYPE = {"itm": "blip", "caption": "blip", "qa": "t5"}


def check_preset(preset: str) -> str:
    if preset not in PRESETS:
        raise InputError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    return preset


def check_sam_variant(variant: str) -> str:
    if variant not in SAM_VARIANTS:
        raise InputError(f"Unknown EfficientSAM variant {variant!r}; choose one of {', '.join(SAM_VARIANTS)}.")
    return variant


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InputError(f"Unknown model role {role!r}; roles are {', '.join(ROLES)}.")
    return role


def repo_id(role: str, preset: str = "base") -> str:
    """The published source of a role: a Hugging Face repo id, or the EfficientSAM GitHub repo."""
    check_role(role)
    if role == "itm":
        return ITM_REPO
    if role == "caption":
        return CAPTION_REPO
    if role == "qa":
        return QA_REPOS[check_preset(preset)]
    return SAM_REPO


def models_dir_from_env(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """``--models DIR`` when given, else ``$QMASK_MODELS_DIR``, else None."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("QMASK_MODELS_DIR", "").strip()
    return Path(env).expanduser() if env else None


def qmask_cache_dir() -> Path:
    """QMask's own download cache (EfficientSAM checkpoints): ``$QMASK_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/qmask``, else ``~/.cache/qmask``."""
    env = os.environ.get("QMASK_CACHE_DIR", "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "qmask"


def fetch_command(role: str | None = None, preset: str = "base", sam_variant: str = "vitt",
                  to: Path | None = None) -> str:
    """The command line that downloads what ``role`` needs (all roles of the preset when None)."""
    cmd = f"qmask models download {preset}"
    if sam_variant != "vitt":
        cmd += f" --sam {sam_variant}"
    if to is not None:
        cmd += f" --to {to}"
    return cmd


@dataclass(frozen=True)
class ModelLocation:
    """Where one role was found (or not).

    ``path`` is the ``from_pretrained`` folder for BLIP/T5 and the checkpoint file (``.pt``, or
    the published ``.pt.zip``) for EfficientSAM; None when missing. ``source`` is
    ``models-dir``, ``hf-cache``, ``qmask-cache`` or ``missing``.
    """

    role: str
    preset: str
    sam_variant: str
    source: str
    path: Path | None
    model_id: str
    random: bool = False
    marker: dict[str, Any] | None = None
    size_bytes: int = 0
    revision: str | None = None
    note: str = ""  # why a candidate was passed over (incomplete download, other preset ...)
    models_dir: Path | None = None

    @property
    def found(self) -> bool:
        return self.path is not None

    def fetch_command(self) -> str:
        return fetch_command(self.role, self.preset, self.sam_variant, self.models_dir)

    def require(self) -> "ModelLocation":
        """This location, or a :class:`ModelMissingError` that names the fetch command."""
        if self.found:
            return self
        what = {"itm": "BLIP image-text matching", "caption": "BLIP captioning",
                "qa": f"UnifiedQA ({self.preset})", "efficient_sam": f"EfficientSAM ({self.sam_variant})"}[self.role]
        where = f" in {self.models_dir} or" if self.models_dir else ""
        extra = f" ({self.note})" if self.note else ""
        raise ModelMissingError(
            f"The {what} model ({self.model_id}) was not found{where} in the local caches{extra}. "
            f"Fetch it with: {self.fetch_command()}", role=self.role)


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file():  # follows the Hugging Face cache's symlinks into blobs/
                total += p.stat().st_size
        except OSError:
            continue
    return total


def _has_weights(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any((folder / name).is_file() for name in _WEIGHT_FILES)


def weight_files(folder: Path) -> list[Path]:
    """The weight files ``from_pretrained`` reads from ``folder``, in its order of preference:
    ``model.safetensors`` (or its shards), else ``pytorch_model.bin`` (or its shards). A cloned
    repository also holds the other format and TF/Flax copies; those are never read."""
    for single, index in (("model.safetensors", "model.safetensors.index.json"),
                          ("pytorch_model.bin", "pytorch_model.bin.index.json")):
        data = _read_json(folder / index) if (folder / index).is_file() else None
        if data and isinstance(data.get("weight_map"), dict):
            return [folder / name for name in sorted(set(map(str, data["weight_map"].values())))]
        if (folder / single).is_file():
            return [folder / single]
    return []


_LFS_POINTER = b"version https://git-lfs.github.com/spec/"
_TOKENIZER_FILES = ("spiece.model", "tokenizer.json", "vocab.txt")


def git_lfs_pointers(folder: Path) -> list[str]:
    """Names of the files QMask reads from ``folder`` (weights, tokenizer) that are Git LFS
    pointers: a repository cloned without ``git lfs`` holds ~130-byte text stubs instead.
    Copies that are never read (``tf_model.h5``, the other weight format) do not count."""
    needed = weight_files(folder) + [folder / name for name in _TOKENIZER_FILES]
    found = []
    for path in needed:
        try:
            if path.is_file() and path.stat().st_size < 1024:
                with open(path, "rb") as fh:
                    if fh.read(len(_LFS_POINTER)) == _LFS_POINTER:
                        found.append(path.name)
        except OSError:
            continue
    return found


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _dir_model_id(role: str, folder: Path, marker: dict[str, Any] | None) -> str:
    if marker is not None:
        return str(marker.get("name_or_path") or f"qmask-random/{role}")
    source = _read_json(folder / SOURCE_NAME)
    if source and source.get("repo_id"):
        return str(source["repo_id"])
    return f"{folder.resolve()}"


def _locate_in_dir(role: str, preset: str, variant: str, models_dir: Path) -> tuple[Path | None, str]:
    """(path, note) of a role inside a models folder."""
    if role == "efficient_sam":
        folder = models_dir / "efficient_sam"
        name, remote = SAM_FILES[variant]
        for candidate in (folder / name, folder / Path(remote).name):
            if candidate.is_file() and candidate.stat().st_size > 0:
                return candidate, ""
        return None, ""
    candidates = [models_dir / f"qa-{preset}", models_dir / "qa"] if role == "qa" else [models_dir / role]
    note = ""
    for folder in candidates:
        if not folder.is_dir():
            continue
        if not _has_weights(folder):
            note = f"{folder} has no config.json and weights"
            continue
        if role == "qa" and folder.name == "qa":
            # A plain qa/ folder fits any preset unless it says it holds another one.
            held = _qa_preset_of(folder)
            if held is not None and held != preset:
                note = f"{folder} holds the {held} model, not {preset}"
                continue
        return folder, ""
    return None, note


def _qa_preset_of(folder: Path) -> str | None:
    marker = read_marker(folder)
    if marker is not None and marker.get("size") == "full":
        return marker.get("qa_size") or marker.get("preset")
    if marker is not None:
        return None  # tiny random models stand in for every preset
    source = _read_json(folder / SOURCE_NAME)
    if source and source.get("repo_id") in QA_REPOS.values():
        return {v: k for k, v in QA_REPOS.items()}[source["repo_id"]]
    return None


def _locate_in_hf_cache(repo: str, hf_cache_dir: Path | None) -> tuple[Path | None, str | None, str]:
    """(snapshot folder, revision, note) from the Hugging Face cache, offline."""
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(repo, "config.json", cache_dir=str(hf_cache_dir) if hf_cache_dir else None)
    if not isinstance(cached, str):
        return None, None, ""
    folder = Path(cached).parent
    if not _has_weights(folder):
        return None, None, f"the Hugging Face cache holds only part of {repo}"
    return folder, folder.name, ""


def locate(role: str, preset: str = "base", sam_variant: str = "vitt", models_dir: str | os.PathLike[str] | None = None,
           hf_cache_dir: str | os.PathLike[str] | None = None, use_env: bool = True) -> ModelLocation:
    """Find one role on this machine (no network); ``found`` is False when it is nowhere."""
    check_role(role)
    check_preset(preset)
    check_sam_variant(sam_variant)
    mdir = models_dir_from_env(models_dir) if use_env else (Path(models_dir) if models_dir else None)
    hf_dir = Path(hf_cache_dir) if hf_cache_dir else None
    rid = repo_id(role, preset)
    notes: list[str] = []
    common = dict(role=role, preset=preset, sam_variant=sam_variant, models_dir=mdir)
    if mdir is not None:
        path, note = _locate_in_dir(role, preset, sam_variant, mdir)
        if note:
            notes.append(note)
        if path is not None:
            marker_dir = path.parent if path.is_file() else path
            marker = read_marker(marker_dir)
            mid = _dir_model_id(role, marker_dir, marker)
            if role == "efficient_sam" and marker is None:
                source = _read_json(marker_dir / SOURCE_NAME)
                mid = f"{SAM_REPO}:{SAM_FILES[sam_variant][1]}" if source else str(path.resolve())
            return ModelLocation(source="models-dir", path=path, model_id=mid, random=marker is not None,
                                 marker=marker, size_bytes=_tree_size(path), **common)
    if role == "efficient_sam":
        folder = qmask_cache_dir() / "efficient_sam"
        name, remote = SAM_FILES[sam_variant]
        for candidate in (folder / name, folder / Path(remote).name):
            if candidate.is_file() and candidate.stat().st_size > 0:
                return ModelLocation(source="qmask-cache", path=candidate, model_id=f"{SAM_REPO}:{remote}",
                                     size_bytes=candidate.stat().st_size, **common)
        return ModelLocation(source="missing", path=None, model_id=f"{SAM_REPO}:{remote}",
                             note="; ".join(notes), **common)
    folder, revision, note = _locate_in_hf_cache(rid, hf_dir)
    if note:
        notes.append(note)
    if folder is not None:
        marker = read_marker(folder)
        return ModelLocation(source="hf-cache", path=folder, model_id=rid, random=marker is not None, marker=marker,
                             size_bytes=_tree_size(folder), revision=revision, **common)
    return ModelLocation(source="missing", path=None, model_id=rid, note="; ".join(notes), **common)


def locate_all(preset: str = "base", sam_variant: str = "vitt", models_dir: str | os.PathLike[str] | None = None,
               hf_cache_dir: str | os.PathLike[str] | None = None,
               roles: tuple[str, ...] = ROLES) -> dict[str, ModelLocation]:
    return {r: locate(r, preset, sam_variant, models_dir, hf_cache_dir) for r in roles}


def format_size(num_bytes: int) -> str:
    size = float(num_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover


# ----------------------------------------------------------------------------- loading


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
    from ..sam.model import load_efficient_sam

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
