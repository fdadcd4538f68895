"""EfficientSAM's image encoder: a plain ViT (timm ``Block``) with a convolutional neck.

Layout and semantics follow the published EfficientSAM (yformer/EfficientSAM) so that its
checkpoints load strictly; the code is ours. Shapes: input ``[B, 3, S, S]`` normalised RGB with
``S = img_size`` (1024), output ``[B, C, S/p, S/p]`` with ``C = neck_dims[-1]`` (256) and ``p``
the patch size (16), i.e. a 64x64 grid of image embeddings.
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torch import nn

from ..runtime.versions import tensor_version
from ..errors import InputError

# The absolute position embedding was learned at this resolution (14x14 patches + CLS) and is
# resized to the working grid; checkpoints store it at this size.
PRETRAIN_IMG_SIZE = 224


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of a ``[B, C, H, W]`` tensor (eps 1e-6, as published)."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.layer_norm on a channels-last view is one fused kernel instead of five element-wise ops.
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch_size`` convolution: ``[B, 3, S, S] -> [B, D, S/p, S/p]``."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class ImageEncoderViT(nn.Module):
    def __init__(self, *, img_size: int, patch_size: int, embed_dim: int, depth: int, num_heads: int,
                 mlp_ratio: float, neck_dims: Sequence[int], in_chans: int = 3) -> None:
        super().__init__()
        self.img_size = img_size
        self.patch_size = patch_size
        self.image_embedding_size = img_size // patch_size
        self.transformer_output_dim = ([embed_dim] + list(neck_dims))[-1]
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        num_positions = (PRETRAIN_IMG_SIZE // patch_size) ** 2 + 1  # + CLS, unused but stored
        self.pos_embed = nn.Parameter(torch.zeros(1, num_positions, embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        # timm's Block has exactly the published parameter names; its attention uses
        # F.scaled_dot_product_attention (fused) when timm allows it, which is what makes the
        # 4096-token attention affordable on a CPU.
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=True, norm_layer=norm, act_layer=nn.GELU)
            for _ in range(depth)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dim, neck_dims[0], kernel_size=1, bias=False),
            LayerNorm2d(neck_dims[0]),
            nn.Conv2d(neck_dims[0], neck_dims[0], kernel_size=3, padding=1, bias=False),
            LayerNorm2d(neck_dims[0]),
        )
        self._pos_cache: tuple[tuple, torch.Tensor] | None = None

    def resized_pos_embed(self, h: int, w: int, dtype: torch.dtype) -> torch.Tensor:
        """The position embedding bicubic-resized to ``[1, h, w, D]`` (CLS dropped), cached.

        The published encoder redoes this resize on every call. At inference the weights do
        not change, so the result is kept and reused until ``pos_embed`` is modified
        (``_version`` changes on in-place updates such as ``load_state_dict``) or replaced.
        """
        pos = self.pos_embed
        version = tensor_version(pos)
        cacheable = version is not None and not (torch.is_grad_enabled() and pos.requires_grad)
        key = (pos.data_ptr(), version, pos.device, h, w, dtype)
        if cacheable and self._pos_cache is not None and self._pos_cache[0] == key:
            return self._pos_cache[1]
        grid = pos[:, 1:]
        side = int(round(grid.shape[1] ** 0.5))
        grid = grid.reshape(1, side, side, -1).permute(0, 3, 1, 2)
        if (side, side) != (h, w):
            # Resize in float32 even for a half-precision model: bicubic on fp16 loses detail.
            grid = F.interpolate(grid.float(), size=(h, w), mode="bicubic", align_corners=False)
        out = grid.permute(0, 2, 3, 1).to(dtype)
        if cacheable:
            self._pos_cache = (key, out.detach())
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.img_size, self.img_size):
            raise InputError(f"the image encoder takes {self.img_size}x{self.img_size} inputs, "
                             f"not {tuple(x.shape[-2:])}; call EfficientSam.preprocess first")
        x = self.patch_embed(x)  # [B, D, h, w]
        b, d, h, w = x.shape
        x = x.permute(0, 2, 3, 1) + self.resized_pos_embed(h, w, x.dtype)
        x = x.reshape(b, h * w, d)
        for block in self.blocks:
            x = block(x)
        x = x.reshape(b, h, w, d).permute(0, 3, 1, 2)
        return self.neck(x)
