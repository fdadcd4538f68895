"""EfficientSAM checkpoints, read safely and loaded strictly: the published files
(``efficient_sam_vitt.pt``, ``efficient_sam_vits.pt.zip``) or any of the same layout, their
config recognised from the tensor shapes, and one variant's weights refused in the other's place.
Every failure names the file and what to do."""

from __future__ import annotations

import io
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, InputError, ModelMissingError
from ..models.load_errors import load_failure
from .model import EfficientSam, EfficientSamConfig, build_efficient_sam

__all__ = ["load_efficient_sam", "read_checkpoint", "infer_config", "state_dict_problems"]


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """Read a published-layout checkpoint safely: (state_dict, embedded config or None).

    Accepts a torch file holding ``{"model": state_dict}`` (or a bare state_dict), or a zip
    holding one such ``.pt`` (EfficientSAM-S ships as ``efficient_sam_vits.pt.zip``). Only
    tensors and plain containers are unpickled (``weights_only=True``).
    """
    path = Path(path)
    if not path.exists():
        raise ModelMissingError(f"The EfficientSAM checkpoint {path} does not exist. Fetch the weights "
                                "with `qmask models` (see `qmask models --help`) or give the right path.",
                                role="efficient_sam")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not an EfficientSAM checkpoint file.")
    if path.stat().st_size == 0:
        raise CheckpointError(f"The EfficientSAM checkpoint {path} is empty (0 bytes); download it again.")
    try:
        obj = _torch_load(path)
    except CheckpointError:
        raise
    except Exception as err:  # torch raises many types (RuntimeError, UnpicklingError, EOFError...)
        reason = load_failure(err, reading=True)
        raise CheckpointError(f"{path} is not a readable EfficientSAM checkpoint. {reason} "
                              "Replace it with a good copy (qmask models download fetches one).") from err

    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not an EfficientSAM checkpoint "
                              "(a dict with a 'model' state_dict).")
    config = obj.get("config") if isinstance(obj.get("config"), Mapping) else None
    state = obj.get("model", obj)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: its 'model' entry is a {type(state).__name__}, not a state_dict.")
    bad = [str(k) for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path} is not an EfficientSAM checkpoint: {len(bad)} entr"
                              f"{'y is' if len(bad) == 1 else 'ies are'} not tensors ({_some(bad)}).")
    return dict(state), dict(config) if config is not None else None


def _torch_load(path: Path) -> Any:
    with warnings.catch_warnings():
        # A file that is not a torch checkpoint at all can make torch warn about its pickle
        # protocol before failing; the failure is what we report.
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        return _torch_load_unfiltered(path)


def _torch_load_unfiltered(path: Path) -> Any:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            # A torch archive stores <name>/data.pkl; a zip *around* a .pt file does not.
            if not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
                inner = [n for n in names if n.endswith((".pt", ".pth")) and not Path(n).name.startswith("._")]
                if not inner:
                    raise CheckpointError(f"The zip file {path} holds no .pt checkpoint "
                                          f"(it holds {_some(names) or 'nothing'}).")
                preferred = [n for n in inner if Path(n).name.startswith("efficient_sam")]
                if len(preferred or inner) > 1:
                    raise CheckpointError(f"The zip file {path} holds several checkpoints "
                                          f"({_some(preferred or inner)}); extract the one you want.")
                data = archive.read((preferred or inner)[0])
                return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    return torch.load(path, map_location="cpu", weights_only=True)


def _some(items: list[str], n: int = 5) -> str:
    shown = ", ".join(items[:n])
    return shown + (f", ... ({len(items) - n} more)" if len(items) > n else "")


def infer_config(state: Mapping[str, torch.Tensor], source: str = "the checkpoint") -> EfficientSamConfig:
    """The config of a state_dict, from its tensor shapes.

    Published presets are recognised. Head counts (encoder and decoder) and the input size
    cannot be read from shapes, so any other model needs its config passed explicitly.
    """
    try:
        found = _shape_facts(state)
    except (KeyError, IndexError, ValueError) as err:
        raise CheckpointError(f"{source} is not an EfficientSAM checkpoint: could not read its layout "
                              f"({err!s}).") from err
    for name in ("vitt", "vits"):
        preset = EfficientSamConfig.preset(name)
        if all(getattr(preset, k) == v for k, v in found.items()):
            return preset
    facts = ", ".join(f"{k}={v}" for k, v in found.items())
    raise CheckpointError(f"{source} is not one of the published EfficientSAM models (Ti or S): its weights "
                          f"say {facts}. Its head counts cannot be read from the weights: pass its config.")


def _shape_facts(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    def indices(prefix: str) -> list[int]:
        pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
        return sorted({int(m.group(1)) for k in state if (m := pattern.match(k))})

    patch = state["image_encoder.patch_embed.proj.weight"]
    embed_dim, patch_size = int(patch.shape[0]), int(patch.shape[-1])
    depth = len(indices("image_encoder.blocks."))
    hidden = int(state["image_encoder.blocks.0.mlp.fc1.weight"].shape[0])
    neck = int(state["image_encoder.neck.0.weight"].shape[0])
    n_up = len(indices("mask_decoder.final_output_upscaling_layers."))
    if not depth or not n_up:
        raise ValueError("no encoder blocks or no decoder upscaling layers")
    return dict(
        patch_size=patch_size,
        patch_embed_dim=embed_dim,
        depth=depth,
        mlp_ratio=hidden / embed_dim,
        neck_dims=(neck, neck),
        decoder_transformer_depth=len(indices("mask_decoder.transformer.layers.")),
        decoder_transformer_mlp_dim=int(state["mask_decoder.transformer.layers.0.mlp.layers.0.0.weight"].shape[0]),
        decoder_upscaling_layer_dims=tuple(
            int(state[f"mask_decoder.final_output_upscaling_layers.{i}.0.weight"].shape[1]) for i in range(n_up)),
        num_multimask_outputs=max(int(state["mask_decoder.mask_tokens.weight"].shape[0]) - 1, 1),
        iou_head_depth=len(indices("mask_decoder.iou_prediction_head.layers.")) + 1,
        iou_head_hidden_dim=int(state["mask_decoder.iou_prediction_head.layers.0.0.weight"].shape[0]),
    )


def state_dict_problems(expected: Mapping[str, torch.Size | tuple], state: Mapping[str, torch.Tensor]) -> list[str]:
    """Human-readable differences between expected key shapes and a state_dict (empty if none)."""
    problems = []
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} is {tuple(state[k].shape)}, expected {tuple(expected[k])}"
             for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k])]
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_some(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_some(unexpected)}")
    if wrong:
        problems.append(f"{len(wrong)} shape mismatch(es): {_some(wrong, 3)}")
    return problems


VARIANT_NAMES = {"vitt": "EfficientSAM-Ti", "vits": "EfficientSAM-S"}
SLOT_FILES = {"vitt": "efficient_sam_vitt.pt", "vits": "efficient_sam_vits.pt(.zip)"}


def _check_variant(path: Path, state: Mapping[str, torch.Tensor], variant: str | None,
                   config: EfficientSamConfig | None) -> None:
    """Refuse weights of one EfficientSAM variant in the place of the other, naming both.

    The width of the patch embedding tells them apart (Ti 192, S 384; a configured model, e.g.
    a random test model, has its own): without this check a published S file in the Ti place
    would load as S, silently.
    """
    if variant not in VARIANT_NAMES:
        return
    patch = state.get("image_encoder.patch_embed.proj.weight")
    if not isinstance(patch, torch.Tensor) or patch.ndim < 1:
        return
    width = int(patch.shape[0])
    wanted = config if config is not None else EfficientSamConfig.preset(variant)
    if width == wanted.patch_embed_dim:
        return
    published = {c.patch_embed_dim: VARIANT_NAMES[n] for n, c in
                 (("vitt", EfficientSamConfig.vitt()), ("vits", EfficientSamConfig.vits()))}
    found = published.get(width, "EfficientSAM")
    other = next((n for n in VARIANT_NAMES if n != variant and VARIANT_NAMES[n] == found), None)
    fetch = f"fetch the {VARIANT_NAMES[variant]} checkpoint with: qmask models download --sam {variant}"
    advice = (f"Put it in the {VARIANT_NAMES[other]} place ({SLOT_FILES[other]}) and use --sam {other}, or {fetch}"
              if other else fetch[0].upper() + fetch[1:])
    raise CheckpointError(f"{path} holds {found} weights (embedding width {width}), but it is in the place of "
                          f"{VARIANT_NAMES[variant]} ({SLOT_FILES[variant]}, embedding width "
                          f"{wanted.patch_embed_dim}); QMask does not load one for the other. {advice}")


def load_efficient_sam(path: str | Path, config: EfficientSamConfig | Mapping[str, Any] | None = None,
                       device: torch.device | str | None = None, variant: str | None = None) -> EfficientSam:
    """Load a published (or same-layout) checkpoint strictly, in eval mode, float32.

    ``config`` None: taken from the checkpoint's own ``config`` entry if it has one, else
    recognised from the tensor shapes (published Ti / S). ``device`` None means CPU; strings
    go through :func:`engine.runtime.devices.resolve_device`. ``variant`` (``vitt``/``vits``): the place
    the file was found in; weights of the other variant are refused. Raises
    ``ModelMissingError`` for a missing file and ``CheckpointError`` (naming the file and the
    mismatch) for a bad one.
    """
    path = Path(path)
    state, embedded = read_checkpoint(path)
    if config is None and embedded is not None:
        try:
            config = EfficientSamConfig.from_dict(embedded)
        except InputError as err:
            raise CheckpointError(f"{path}: its embedded config is invalid: {err}") from err
    if isinstance(config, Mapping):
        config = EfficientSamConfig.from_dict(config)
    _check_variant(path, state, variant, config)
    if config is None:
        config = infer_config(state, source=str(path))

    model = build_efficient_sam(config, device="meta")
    expected = {k: v.shape for k, v in model.state_dict().items()}
    problems = state_dict_problems(expected, state)
    if problems:
        names = {"vitt": "EfficientSAM-Ti", "vits": "EfficientSAM-S"}
        which = names.get(config.variant or "", "configured EfficientSAM")
        raise CheckpointError(f"{path} does not match the {which} model: "
                              + "; ".join(problems) + ".")
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{path} holds NaN or infinite values in {len(bad)} tensor(s) ({_some(bad)}); "
                              "the file is damaged: download it again.")
    model.to_empty(device="cpu")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:  # e.g. a dtype that cannot be copied (complex, ...)
        raise CheckpointError(f"{path} could not be loaded into EfficientSAM: {str(err).splitlines()[0]}") from err
    model.reset_constants()
    model.eval()
    if device is not None:
        from ..runtime.devices import resolve_device

        model.to(resolve_device(device) if isinstance(device, str) else device)
    return model
