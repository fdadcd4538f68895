"""Where QMask's models are: each role's folder or checkpoint, found without the network.

Four roles: ``itm`` (BLIP image-text matching, for Grad-CAM), ``caption`` (BLIP captioning),
``qa`` (UnifiedQA-v2 T5, size set by the preset) and ``efficient_sam`` (EfficientSAM-Ti or -S).

Where a role is looked for, in order, never touching the network:

1. a models folder (``--models DIR`` or ``$QMASK_MODELS_DIR``) holding ``itm/``, ``caption/``,
   ``qa/`` (or ``qa-<preset>/``) in ``from_pretrained`` layout and ``efficient_sam/`` with
   ``efficient_sam_vitt.pt`` / ``efficient_sam_vits.pt`` (or the published ``.pt.zip``);
2. the Hugging Face cache (``huggingface_hub.try_to_load_from_cache``, offline) for the BLIP
   and T5 models, and QMask's own cache folder (:func:`qmask_cache_dir`) for EfficientSAM.

Folders are read as the repositories publish them (tests/engine/models/test_published_layouts.py): UnifiedQA's
``pytorch_model.bin`` + ``spiece.model`` without ``tokenizer.json`` (transformers converts it with
sentencepiece + protobuf), the BLIP ports' legacy configs and ``bert-base-uncased`` tokenizers,
both weight formats side by side (safetensors preferred), Hugging Face cache snapshots of
symlinks into ``blobs/``, EfficientSAM-S as its ``.pt.zip``.

A role found nowhere raises :class:`~engine.errors.ModelMissingError` naming the
``qmask models download`` command that fetches it. Loading: :mod:`engine.models.loading`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, ModelMissingError
from .random_models import read_marker

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
