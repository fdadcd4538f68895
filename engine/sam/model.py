"""EfficientSAM (Xiong et al., 2023): configuration, model, and strict checkpoint loading.

EfficientSAM is not on PyPI, so QMask carries its own implementation. It reproduces the
published model (yformer/EfficientSAM): the same state_dict keys and shapes, so
``efficient_sam_vitt.pt`` and ``efficient_sam_vits.pt.zip`` load strictly, and the same
methods and semantics (``forward``, ``get_image_embeddings``, ``predict_masks``).

Frames: images ``[B, 3, H, W]`` RGB floats in [0, 1] at any size (resized to 1024x1024 without
padding, so x and y scale separately); points ``[B, Q, P, 2]`` as (x, y) in pixels of that
input image, negative for padding; labels ``[B, Q, P]``: 1 positive, 0 negative, -1 padding,
2 / 3 box top-left / bottom-right. ``Q`` queries each get their own masks.

Interactive use goes through :class:`engine.sam.segmenter.Segmenter` (encode once, decode per click).
"""

from __future__ import annotations

import dataclasses
import io
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .decoder import ImageContext, MaskDecoder, PromptEncoder, TwoWayTransformer
from .encoder import ImageEncoderViT, LayerNorm2d
from ..errors import CheckpointError, InputError, ModelMissingError
from ..models.load_errors import load_failure

__all__ = [
    "EfficientSamConfig", "EfficientSam", "build_efficient_sam", "load_efficient_sam",
    "read_checkpoint", "infer_config", "ImageEncoderViT", "PromptEncoder", "MaskDecoder",
    "TwoWayTransformer", "ImageContext", "LayerNorm2d", "PIXEL_MEAN", "PIXEL_STD",
]

PIXEL_MEAN = (0.485, 0.456, 0.406)  # ImageNet, on [0, 1] RGB
PIXEL_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class EfficientSamConfig:
    """Hyper-parameters, named as in the published builder (and the fixture's JSON)."""

    img_size: int
    patch_size: int
    patch_embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float
    neck_dims: tuple[int, ...]
    decoder_max_num_input_points: int
    decoder_transformer_depth: int
    decoder_transformer_mlp_dim: int
    decoder_num_heads: int
    decoder_upscaling_layer_dims: tuple[int, ...]
    num_multimask_outputs: int
    iou_head_depth: int  # hidden Linear+GELU layers of the IoU head, plus one (published convention)
    iou_head_hidden_dim: int

    def __post_init__(self) -> None:
        # Accept JSON lists (and numbers as floats) but keep the config immutable and typed.
        for name in ("neck_dims", "decoder_upscaling_layer_dims"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise InputError(f"EfficientSAM config: {name} must be a list of integers, not {value!r}.")
            object.__setattr__(self, name, tuple(_as_int(name, v) for v in value))
        for f in dataclasses.fields(self):
            if f.name in ("neck_dims", "decoder_upscaling_layer_dims"):
                continue
            value = getattr(self, f.name)
            typed = _as_float(f.name, value) if f.name == "mlp_ratio" else _as_int(f.name, value)
            object.__setattr__(self, f.name, typed)
        self._validate()

    def _validate(self) -> None:
        problems = []
        lists = ("neck_dims", "decoder_upscaling_layer_dims")
        positive = [f.name for f in dataclasses.fields(self) if f.name not in lists]
        problems += [f"{n} must be positive" for n in positive if getattr(self, n) <= 0]
        if not self.neck_dims or not self.decoder_upscaling_layer_dims:
            problems.append("neck_dims and decoder_upscaling_layer_dims need at least one entry")
        if self.patch_size > 0 and self.img_size % self.patch_size:
            problems.append(f"patch_size {self.patch_size} does not divide img_size {self.img_size}")
        if self.num_heads > 0 and self.patch_embed_dim % self.num_heads:
            problems.append(f"num_heads {self.num_heads} does not divide patch_embed_dim {self.patch_embed_dim}")
        width = self.neck_dims[-1] if self.neck_dims else 0
        if self.decoder_num_heads > 0 and (width // 2) % self.decoder_num_heads:
            problems.append(f"decoder_num_heads {self.decoder_num_heads} does not divide half the "
                            f"decoder width ({width} // 2)")
        if self.iou_head_depth < 2:
            problems.append("iou_head_depth must be at least 2 (hidden layers + the output layer)")
        if problems:
            raise InputError("Invalid EfficientSAM config: " + "; ".join(problems) + ".")

    @classmethod
    def vitt(cls) -> "EfficientSamConfig":
        """EfficientSAM-Ti (efficient_sam_vitt.pt): ViT-Tiny, 192 wide, 3 heads."""
        return cls(**_PUBLISHED, patch_embed_dim=192, num_heads=3)

    @classmethod
    def vits(cls) -> "EfficientSamConfig":
        """EfficientSAM-S (efficient_sam_vits.pt.zip): ViT-Small, 384 wide, 6 heads."""
        return cls(**_PUBLISHED, patch_embed_dim=384, num_heads=6)

    @classmethod
    def tiny(cls) -> "EfficientSamConfig":
        """A small model of the same classes (the reference fixture's), for tests and smoke runs."""
        return cls(img_size=1024, patch_size=16, patch_embed_dim=32, depth=2, num_heads=2, mlp_ratio=4.0,
                   neck_dims=(32, 32), decoder_max_num_input_points=6, decoder_transformer_depth=2,
                   decoder_transformer_mlp_dim=64, decoder_num_heads=4, decoder_upscaling_layer_dims=(16, 8),
                   num_multimask_outputs=3, iou_head_depth=3, iou_head_hidden_dim=32)

    @classmethod
    def preset(cls, name: str) -> "EfficientSamConfig":
        if name not in ("vitt", "vits"):
            raise InputError(f"Unknown EfficientSAM variant {name!r}; choose vitt (Ti) or vits (S).")
        return cls.vitt() if name == "vitt" else cls.vits()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EfficientSamConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        missing = sorted(names - set(data))
        if unknown or missing:
            raise InputError(f"Invalid EfficientSAM config: unknown keys {unknown}, missing keys {missing}.")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (lists, not tuples), the inverse of :meth:`from_dict`."""
        out = dataclasses.asdict(self)
        out["neck_dims"] = list(self.neck_dims)
        out["decoder_upscaling_layer_dims"] = list(self.decoder_upscaling_layer_dims)
        return out

    @property
    def variant(self) -> str | None:
        """``"vitt"`` / ``"vits"`` when this is a published preset, else None."""
        for name in ("vitt", "vits"):
            if self == EfficientSamConfig.preset(name):
                return name
        return None


_PUBLISHED: dict[str, Any] = dict(
    img_size=1024, patch_size=16, depth=12, mlp_ratio=4.0, neck_dims=(256, 256),
    decoder_max_num_input_points=6, decoder_transformer_depth=2, decoder_transformer_mlp_dim=2048,
    decoder_num_heads=8, decoder_upscaling_layer_dims=(64, 32), num_multimask_outputs=3,
    iou_head_depth=3, iou_head_hidden_dim=256,
)


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"EfficientSAM config: {name} must be a number, not {value!r}.")
    return float(value)


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise InputError(f"EfficientSAM config: {name} must be an integer, not {value!r}.")
    return int(value)


class EfficientSam(nn.Module):
    """The published model's interface: encoder, prompt encoder, mask decoder."""

    mask_threshold: float = 0.0
    image_format: str = "RGB"

    def __init__(self, config: EfficientSamConfig) -> None:
        super().__init__()
        self.config = config
        self.image_encoder = ImageEncoderViT(
            img_size=config.img_size, patch_size=config.patch_size, embed_dim=config.patch_embed_dim,
            depth=config.depth, num_heads=config.num_heads, mlp_ratio=config.mlp_ratio,
            neck_dims=config.neck_dims,
        )
        width = self.image_encoder.transformer_output_dim
        grid = self.image_encoder.image_embedding_size
        self.prompt_encoder = PromptEncoder(width, (grid, grid), (config.img_size, config.img_size))
        self.decoder_max_num_input_points = config.decoder_max_num_input_points
        self.mask_decoder = MaskDecoder(
            transformer_dim=width,
            transformer=TwoWayTransformer(config.decoder_transformer_depth, width, config.decoder_num_heads,
                                          config.decoder_transformer_mlp_dim),
            num_multimask_outputs=config.num_multimask_outputs,
            iou_head_depth=config.iou_head_depth - 1,
            iou_head_hidden_dim=config.iou_head_hidden_dim,
            upscaling_layer_dims=config.decoder_upscaling_layer_dims,
        )
        self.register_buffer("pixel_mean", torch.empty(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.empty(1, 3, 1, 1), persistent=False)
        self.reset_constants()

    def reset_constants(self) -> None:
        """(Re)fill the non-learned buffers, e.g. after ``to_empty``."""
        with torch.no_grad():
            self.pixel_mean.copy_(torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1))
            self.pixel_std.copy_(torch.tensor(PIXEL_STD).view(1, 3, 1, 1))

    @property
    def img_size(self) -> int:
        return self.image_encoder.img_size

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` in [0, 1] -> bilinear (no padding, no antialias) to img_size, normalised."""
        s = self.img_size
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, (s, s), mode="bilinear", align_corners=False)
        return (x - self.pixel_mean.to(x.dtype)) / self.pixel_std.to(x.dtype)

    def get_image_embeddings(self, batched_images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` RGB in [0, 1] -> ``[B, C, 64, 64]`` image embeddings."""
        return self.image_encoder(self.preprocess(batched_images))

    def get_rescaled_pts(self, batched_points: torch.Tensor, input_h: int, input_w: int) -> torch.Tensor:
        """Input-image pixels -> encoder-input pixels; negative coordinates stay -1 (padding)."""
        s = self.img_size
        x, y = batched_points[..., 0], batched_points[..., 1]
        return torch.stack([torch.where(x >= 0, x * s / input_w, -1.0),
                            torch.where(y >= 0, y * s / input_h, -1.0)], dim=-1)

    def prepare_decoder(self, image_embeddings: torch.Tensor) -> ImageContext:
        """The decoder's image-only work for ``[B, C, h, w]`` embeddings; pass it to
        :meth:`predict_masks` as ``image_context`` to skip that work on every click."""
        return self.mask_decoder.prepare(image_embeddings, self.prompt_encoder.get_dense_pe())

    def predict_masks(self, image_embeddings: torch.Tensor, batched_points: torch.Tensor,
                      batched_point_labels: torch.Tensor, multimask_output: bool, input_h: int, input_w: int,
                      output_h: int = -1, output_w: int = -1,
                      image_context: ImageContext | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder only.

        ``image_embeddings`` ``[B, C, h, w]``, points ``[B, Q, P, 2]``, labels ``[B, Q, P]``.
        Points beyond ``decoder_max_num_input_points`` are cut (the first ones are kept), fewer
        are padded with label -1. Returns (mask logits ``[B, Q, K, oh, ow]``, IoU ``[B, Q, K]``)
        with K = 3 (multimask) or 1; masks are bicubic-scaled to (output_h, output_w) when both
        are positive, else the 256x256 low-res logits. ``image_context`` (from
        :meth:`prepare_decoder` on the same embeddings) is an optional speed-up.
        """
        b, q, p, _ = batched_points.shape
        m = self.decoder_max_num_input_points
        points = self.get_rescaled_pts(batched_points, input_h, input_w)
        labels = batched_point_labels
        if p > m:
            points, labels = points[:, :, :m], labels[:, :, :m]
        elif p < m:
            points = F.pad(points, (0, 0, 0, m - p), value=-1.0)
            labels = F.pad(labels, (0, m - p), value=-1)
        sparse = self.prompt_encoder(points.reshape(b * q, m, 2), labels.reshape(b * q, m))
        sparse = sparse.reshape(b, q, m, -1)
        low_res, iou = self.mask_decoder(image_embeddings, self.prompt_encoder.get_dense_pe(), sparse,
                                         multimask_output, context=image_context)
        k, side_h, side_w = low_res.shape[1:]
        if output_h > 0 and output_w > 0:
            masks = F.interpolate(low_res, (output_h, output_w), mode="bicubic", align_corners=False)
            masks = masks.reshape(b, q, k, output_h, output_w)
        else:
            masks = low_res.reshape(b, q, k, side_h, side_w)
        return masks, iou.reshape(b, q, k)

    def forward(self, batched_images: torch.Tensor, batched_points: torch.Tensor,
                batched_point_labels: torch.Tensor,
                scale_to_original_image_size: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """End to end, multimask: (logits ``[B, Q, 3, H, W]`` or ``[..., 256, 256]``, IoU ``[B, Q, 3]``)."""
        _, _, h, w = batched_images.shape
        embeddings = self.get_image_embeddings(batched_images)
        scale = scale_to_original_image_size
        return self.predict_masks(embeddings, batched_points, batched_point_labels, multimask_output=True,
                                  input_h=h, input_w=w, output_h=h if scale else -1, output_w=w if scale else -1)


def build_efficient_sam(config: EfficientSamConfig, device: torch.device | str | None = None) -> EfficientSam:
    """A randomly initialised model; ``device="meta"`` builds it without allocating weights."""
    if device is None:
        return EfficientSam(config)
    with torch.device(device):
        return EfficientSam(config)


# --- checkpoints -------------------------------------------------------------------------------

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


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
