"""EfficientSAM (Xiong et al., 2023): configuration and model (checkpoints: :mod:`.checkpoint`).

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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .decoder import ImageContext, MaskDecoder, PromptEncoder, TwoWayTransformer
from .encoder import ImageEncoderViT, LayerNorm2d
from ..errors import InputError

__all__ = [
    "EfficientSamConfig", "EfficientSam", "build_efficient_sam", "ImageEncoderViT", "PromptEncoder", "MaskDecoder",
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


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
