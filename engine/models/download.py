"""Fetching the published models: ``qmask models download``.

BLIP and UnifiedQA come from the Hugging Face Hub through ``huggingface_hub`` (its own progress
bars and resumable downloads; safetensors files only when the repository has them, never the
TensorFlow/Flax copies). EfficientSAM comes from its GitHub repository over plain HTTPS with
:func:`download_file`: the data goes to ``<name>.part``, an interrupted download resumes with an
HTTP ``Range`` request, and the file takes its final name only when complete. EfficientSAM-S is
published as a zip, which is unpacked after download.

Every download takes a ``cancel()`` callback (the GUI's Cancel button): it is checked between
chunks of a file and between files, and raises :class:`~engine.errors.CancelledError`. What was
fetched so far stays on disk (``.part`` here, huggingface_hub's ``.incomplete`` for the Hub), so
the next run resumes it.

Nothing here runs unless the user asks for a download: loading (``engine.models.manager``) is offline.
"""

from __future__ import annotations

import fnmatch
import inspect
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import CancelledError, CheckpointError, DownloadError
from .http_download import CancelFn, _check_cancel, download_file, require_reachable, validate_url
from .loading import sam_checkpoint_file
from .locations import (ROLES, SAM_FILES, SAM_REPO, SOURCE_NAME, check_preset, check_sam_variant, locate,
                        qmask_cache_dir, repo_id)

SAM_BASE_URL = f"https://github.com/{SAM_REPO}/raw/main/"

__all__ = ["DownloadError", "DownloadOutcome", "download_file", "fetch_efficient_sam", "fetch_hf_model",
           "download_models", "choose_weight_patterns", "select_repo_files", "verify_sam_checkpoint",
           "role_target_dir", "validate_url", "require_reachable", "SAM_BASE_URL"]


# ----------------------------------------------------------------------------- EfficientSAM


def verify_sam_checkpoint(path: Path) -> None:
    """Raise CheckpointError unless ``path`` is a torch file holding ``{"model": state_dict}``."""
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable EfficientSAM checkpoint ({type(err).__name__}); "
                              "delete it and download it again.") from err
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict) or not data["model"]:
        raise CheckpointError(f"{path} is a torch file but not an EfficientSAM checkpoint ({{'model': state_dict}}).")


def fetch_efficient_sam(variant: str, dest_dir: str | os.PathLike[str], *, base_url: str = SAM_BASE_URL,
                        progress: bool = True, verify: bool = True, cancel: CancelFn | None = None) -> Path:
    """Download EfficientSAM-``variant`` into ``dest_dir``; returns the ``.pt`` path.

    ``cancel()`` is checked between chunks (see :func:`download_file`).

    ``vits`` is published as ``efficient_sam_vits.pt.zip``: it is downloaded (resumably),
    unpacked to ``efficient_sam_vits.pt`` and the zip removed.
    """
    check_sam_variant(variant)
    dest_dir = Path(dest_dir)
    name, remote = SAM_FILES[variant]
    target = dest_dir / name
    if target.is_file() and target.stat().st_size > 0:
        return target
    url = base_url.rstrip("/") + "/" + remote
    fetched = download_file(url, dest_dir / Path(remote).name, progress=progress, desc=f"EfficientSAM {variant}",
                            cancel=cancel)
    if fetched.suffix == ".zip":
        try:
            out = sam_checkpoint_file(fetched)
        except CheckpointError:
            fetched.unlink(missing_ok=True)  # a bad zip would otherwise be "found" next time
            raise
        fetched.unlink(missing_ok=True)
    else:
        out = fetched
    if verify:
        try:
            verify_sam_checkpoint(out)
        except CheckpointError:
            out.unlink(missing_ok=True)
            raise
    (dest_dir / SOURCE_NAME).write_text(json.dumps({"repo_id": SAM_REPO, "file": remote, "url": url}, indent=2) + "\n",
                                        encoding="utf-8")
    return out


# ----------------------------------------------------------------------------- Hugging Face

# What a BLIP/T5 folder needs besides the weights; TF/Flax/ONNX copies are never fetched.
_SIDE_FILES = ["*.json", "*.txt", "*.model"]


def choose_weight_patterns(files: list[str]) -> list[str]:
    """Safetensors when the repository has them, else the PyTorch ``.bin`` files."""
    top = [f for f in files if "/" not in f]
    if any(f.endswith(".safetensors") for f in top):
        return ["*.safetensors"]
    if any(f.endswith(".bin") for f in top):
        return ["*.bin"]
    raise DownloadError("The repository has neither safetensors nor PyTorch weights at its top level.")


def select_repo_files(files: list[str]) -> list[str]:
    """The files of a BLIP/T5 repository QMask fetches: top-level weights (see
    :func:`choose_weight_patterns`) and side files (config, tokenizer, vocabulary), in the
    repository's order. Subfolders (ONNX, TF, Flax copies) are never fetched."""
    top = [f for f in files if "/" not in f]
    patterns = choose_weight_patterns(files) + _SIDE_FILES
    return [f for f in top if any(fnmatch.fnmatchcase(f, p) for p in patterns)]


def _cancelling_tqdm(cancel: CancelFn, show: bool, what: str) -> type:
    """A tqdm class for huggingface_hub whose ``update`` raises CancelledError once ``cancel()``
    is true, so a cancel stops inside a large file (huggingface_hub keeps the ``.incomplete``
    file and resumes it next time)."""
    from tqdm.auto import tqdm

    class CancellingTqdm(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)  # huggingface_hub's own bars take a name; tqdm does not
            if not show:
                kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            out = super().update(n)
            _check_cancel(cancel, what)
            return out

    return CancellingTqdm


def fetch_hf_model(repo: str, local_dir: str | os.PathLike[str] | None = None,
                   cache_dir: str | os.PathLike[str] | None = None, hub: Any = None, *,
                   progress: bool = True, cancel: CancelFn | None = None) -> Path:
    """Download a BLIP/T5 repository (resumable, with progress bars) and return its folder.

    ``local_dir`` None fills the Hugging Face cache; otherwise the files land in ``local_dir``
    with a ``QMASK_SOURCE.json`` naming the repository. Files are fetched one by one with
    ``hf_hub_download`` so that ``cancel()`` is checked between files and, through the progress
    bar, between the chunks of a file. ``hub`` replaces ``huggingface_hub`` (``list_repo_files``
    and ``hf_hub_download``) in tests.
    """
    if hub is None:
        import huggingface_hub as hub
    _check_cancel(cancel, repo)
    folder: Path | None = Path(local_dir) if local_dir is not None else None
    try:
        wanted = select_repo_files(list(hub.list_repo_files(repo)))
        kwargs: dict[str, Any] = {}
        if local_dir is not None:
            kwargs["local_dir"] = str(local_dir)
        if cache_dir is not None:
            kwargs["cache_dir"] = str(cache_dir)
        takes_tqdm = "tqdm_class" in inspect.signature(hub.hf_hub_download).parameters
        if takes_tqdm and (cancel is not None or not progress):
            kwargs["tqdm_class"] = _cancelling_tqdm(cancel or (lambda: False), progress, repo)
        for name in wanted:
            _check_cancel(cancel, repo)
            path = Path(hub.hf_hub_download(repo, name, **kwargs))
            if folder is None:
                folder = path.parent  # the cache's snapshot folder (top-level files only)
    except (DownloadError, CancelledError):
        raise
    except Exception as err:
        # A cancel seen by a download backend that wraps our exception in its own is still a cancel.
        _check_cancel(cancel, repo)
        raise DownloadError(f"Downloading {repo} from the Hugging Face Hub failed ({type(err).__name__}: "
                            f"{str(err).splitlines()[0] if str(err) else ''}). Check the network and run the "
                            "command again (finished files are kept), or fetch the models on another computer "
                            "and give them with --models DIR.") from err
    _check_cancel(cancel, repo)
    if folder is None:
        raise DownloadError(f"{repo} has no files QMask can use.")
    if local_dir is not None:
        (Path(local_dir) / SOURCE_NAME).write_text(json.dumps({"repo_id": repo}, indent=2) + "\n", encoding="utf-8")
    return folder


# ----------------------------------------------------------------------------- all roles


@dataclass(frozen=True)
class DownloadOutcome:
    role: str
    action: str  # "present" | "downloaded" | "skipped-random"
    path: Path | None
    detail: str = ""


def role_target_dir(role: str, preset: str, to: Path) -> Path:
    """The folder ``--to DIR`` fills for ``role``: ``qa/`` unless it already holds another preset."""
    if role == "efficient_sam":
        return to / "efficient_sam"
    if role != "qa":
        return to / role
    plain = to / "qa"
    if not plain.exists():
        return plain
    source = {}
    try:
        source = json.loads((plain / SOURCE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    return plain if source.get("repo_id") == repo_id("qa", preset) else to / f"qa-{preset}"


def download_models(preset: str = "base", sam_variant: str = "vitt", to: str | os.PathLike[str] | None = None,
                    roles: tuple[str, ...] = ROLES, *, base_url: str = SAM_BASE_URL, hub: Any = None,
                    progress: bool = True, say: Callable[[str], None] = print,
                    cancel: CancelFn | None = None) -> list[DownloadOutcome]:
    """Fetch every role of ``preset`` that is not on this machine yet (or not in ``to``).

    Without ``to``: roles found anywhere (models folder, Hugging Face cache, QMask cache) are
    left alone; BLIP/T5 go to the Hugging Face cache and EfficientSAM to QMask's cache. With
    ``to``: only that folder counts, and the files land there in the ``--models`` layout.
    Random-weight models are never overwritten. ``cancel()`` is checked between roles, files
    and chunks; it raises CancelledError and the next call resumes.
    """
    check_preset(preset)
    check_sam_variant(sam_variant)
    to_path = Path(to).expanduser() if to is not None else None
    if to_path is not None:
        to_path.mkdir(parents=True, exist_ok=True)
    outcomes: list[DownloadOutcome] = []
    for role in roles:
        _check_cancel(cancel, "the models")
        if to_path is not None:
            loc = locate(role, preset, sam_variant, models_dir=to_path, use_env=False)
            found = loc.found and loc.source == "models-dir"
        else:
            loc = locate(role, preset, sam_variant)
            found = loc.found
        if found and loc.random:
            say(f"{role}: {loc.path} holds random weights; remove it to download the published model.")
            outcomes.append(DownloadOutcome(role, "skipped-random", loc.path))
            continue
        if found:
            say(f"{role}: already present ({loc.path})")
            outcomes.append(DownloadOutcome(role, "present", loc.path))
            continue
        if not any(o.action == "downloaded" for o in outcomes):  # offline: fail at once, not after retries
            hub_url = None if hub is not None else os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
            require_reachable(base_url if role == "efficient_sam" else hub_url)
        if role == "efficient_sam":
            dest = role_target_dir(role, preset, to_path) if to_path else qmask_cache_dir() / "efficient_sam"
            say(f"{role}: downloading EfficientSAM {sam_variant} from github.com/{SAM_REPO} into {dest}")
            path = fetch_efficient_sam(sam_variant, dest, base_url=base_url, progress=progress, cancel=cancel)
        else:
            rid = repo_id(role, preset)
            dest_dir = role_target_dir(role, preset, to_path) if to_path else None
            say(f"{role}: downloading {rid} into {dest_dir or 'the Hugging Face cache'}")
            path = fetch_hf_model(rid, local_dir=dest_dir, hub=hub, progress=progress, cancel=cancel)
        outcomes.append(DownloadOutcome(role, "downloaded", path))
    return outcomes
