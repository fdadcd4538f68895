"""EfficientSAM's prompt encoder and mask decoder (SAM's two-way transformer).

Layout and semantics follow the published EfficientSAM (yformer/EfficientSAM) so that its
checkpoints load strictly; the code is ours. Notation: ``C`` the transformer width (256),
``h x w`` the image-embedding grid (64x64), ``P`` prompt points per query (padded to 6),
``K`` mask tokens (1 single-mask + 3 multimask), low-res masks ``4h x 4w`` (256x256).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..runtime.versions import tensor_version

# Point labels understood by the prompt encoder.
LABEL_PADDING = -1
LABEL_NEGATIVE = 0  # position encoding only, no learned embedding added
LABEL_POSITIVE = 1
LABEL_BOX_TOP_LEFT = 2
LABEL_BOX_BOTTOM_RIGHT = 3


class MLPBlock(nn.Module):
    """``num_layers`` x (Linear + activation) then a final Linear (named ``fc``), as published."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int,
                 act: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Sequential(nn.Linear(n, hidden_dim), act()) for n in dims_in)
        self.fc = nn.Linear(hidden_dim, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.fc(x)


class PositionEmbeddingRandom(nn.Module):
    """Random Fourier features of (x, y) in [0, 1]: ``[..., 2] -> [..., 2F]`` (sin then cos)."""

    def __init__(self, num_pos_feats: int) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn((2, num_pos_feats)))

    def encode(self, coords01: torch.Tensor) -> torch.Tensor:
        # Always in float32: the frequencies reach ~2*pi*3*|G| and fp16 would lose the phase.
        gauss = self.positional_encoding_gaussian_matrix.float()
        proj = (2.0 * coords01.float() - 1.0) @ gauss
        proj = 2.0 * math.pi * proj
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)

    def dense(self, h: int, w: int) -> torch.Tensor:
        """Encoding of every cell centre of an ``h x w`` grid: ``[2F, h, w]`` float32."""
        device = self.positional_encoding_gaussian_matrix.device
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # [h, w, (x, y)]
        return self.encode(grid).permute(2, 0, 1)


class PromptEncoder(nn.Module):
    def __init__(self, embed_dim: int, image_embedding_size: tuple[int, int],
                 input_image_size: tuple[int, int]) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.image_embedding_size = image_embedding_size  # (h, w) of the embedding grid
        self.input_image_size = input_image_size  # (H, W) of the encoder input, 1024x1024
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        self.invalid_points = nn.Embedding(1, embed_dim)
        self.point_embeddings = nn.Embedding(1, embed_dim)
        self.bbox_top_left_embeddings = nn.Embedding(1, embed_dim)
        self.bbox_bottom_right_embeddings = nn.Embedding(1, embed_dim)
        self._dense_cache: tuple[tuple, torch.Tensor] | None = None

    def get_dense_pe(self) -> torch.Tensor:
        """Position encoding of the embedding grid, ``[1, C, h, w]`` float32 (cached: it only
        depends on the Gaussian matrix, which changes only when weights are loaded)."""
        gauss = self.positional_encoding_matrix
        version = tensor_version(gauss)
        key = (gauss.data_ptr(), version, gauss.device, self.image_embedding_size)
        if version is None or self._dense_cache is None or self._dense_cache[0] != key:
            dense = self.pe_layer.dense(*self.image_embedding_size).unsqueeze(0)
            if version is None:
                return dense
            self._dense_cache = (key, dense)
        return self._dense_cache[1]

    @property
    def positional_encoding_matrix(self) -> torch.Tensor:
        return self.pe_layer.positional_encoding_gaussian_matrix

    def forward(self, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Embed points ``[N, P, 2]`` (x, y in encoder-input pixels) with labels ``[N, P]``.

        Padding points (label -1) are encoded at their (-1, -1) position like the published
        model does, plus the learned "invalid" embedding. Returns ``[N, P, C]`` in the dtype
        of the embedding weights.
        """
        h, w = self.input_image_size
        xy = coords.float() + 0.5  # pixel centre
        xy = torch.stack([xy[..., 0] / w, xy[..., 1] / h], dim=-1)
        emb = self.pe_layer.encode(xy).to(self.point_embeddings.weight.dtype)
        lab = labels[..., None]
        for value, table in ((LABEL_PADDING, self.invalid_points), (LABEL_POSITIVE, self.point_embeddings),
                             (LABEL_BOX_TOP_LEFT, self.bbox_top_left_embeddings),
                             (LABEL_BOX_BOTTOM_RIGHT, self.bbox_bottom_right_embeddings)):
            emb = torch.where(lab == value, emb + table.weight, emb)
        return emb


class TwoWayAttention(nn.Module):
    """Multi-head attention whose inner width is ``embedding_dim / downsample_rate``."""

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads:
            raise InputError(f"{num_heads} heads do not divide the attention width {self.internal_dim}")
        self.head_dim = self.internal_dim // num_heads
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.v_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """``[n, L, D] -> [n, H, L, d]`` (head-major split of the inner width, as published)."""
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        b, _, n, _ = x.shape
        return x.transpose(1, 2).reshape(b, n, self.internal_dim)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v))
        out = F.scaled_dot_product_attention(q, k, v)  # scale 1/sqrt(head dim), as published
        return self.out_proj(self._merge(out))


@dataclass
class ImageContext:
    """Decoder work that depends on the image only, made by ``MaskDecoder.prepare`` and passed
    back on every click on that image: the image tokens ``keys`` ``[n, N, C]``, their position
    encoding ``key_pe`` ``[n or 1, N, C]``, and whatever an accelerated decoder also keeps
    (``extra``: tensors with the batch first)."""

    keys: torch.Tensor
    key_pe: torch.Tensor
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    def repeat(self, times: int) -> "ImageContext":
        """The context for ``times`` prompt queries per image (itself when times == 1)."""
        if times == 1:
            return self

        def rep(x: torch.Tensor) -> torch.Tensor:
            return x.repeat_interleave(times, dim=0)

        key_pe = self.key_pe if self.key_pe.shape[0] == 1 else rep(self.key_pe)
        return ImageContext(rep(self.keys), key_pe, {name: rep(x) for name, x in self.extra.items()})


class TwoWayAttentionBlock(nn.Module):
    """Token self-attention, tokens->image, token MLP, image->tokens (SAM's decoder block)."""

    def __init__(self, embedding_dim: int, num_heads: int, mlp_dim: int, attention_downsample_rate: int = 2,
                 skip_first_layer_pe: bool = False) -> None:
        super().__init__()
        self.self_attn = TwoWayAttention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = TwoWayAttention(embedding_dim, num_heads, attention_downsample_rate)
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLPBlock(embedding_dim, mlp_dim, embedding_dim, 1, nn.GELU)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = TwoWayAttention(embedding_dim, num_heads, attention_downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor,
                key_pe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``[n, T, C]``, image ``[n, N, C]``, and their position encodings."""
        # Self attention. The first layer's queries are the prompt embeddings themselves (PE
        # already inside). Later layers add the PE to the queries *and* keep it in the
        # residual: EfficientSAM differs from SAM here, and its weights were trained this way.
        if not self.skip_first_layer_pe:
            queries = queries + query_pe
        queries = self.norm1(queries + self.self_attn(queries, queries, queries))

        # Cross attention, tokens attending to the image.
        q, k = queries + query_pe, keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q, k, keys))

        # MLP.
        queries = self.norm3(queries + self.mlp(queries))

        # Cross attention, the image attending to the tokens.
        q, k = queries + query_pe, keys + key_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, q, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    def __init__(self, depth: int, embedding_dim: int, num_heads: int, mlp_dim: int,
                 attention_downsample_rate: int = 2) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(embedding_dim, num_heads, mlp_dim, attention_downsample_rate,
                                 skip_first_layer_pe=(i == 0))
            for i in range(depth)
        )
        self.final_attn_token_to_image = TwoWayAttention(embedding_dim, num_heads, attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(self, image_embedding: torch.Tensor, image_pe: torch.Tensor,
                point_embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[n, C, h, w]`` image, ``[1, C, h, w]`` PE, ``[n, T, C]`` tokens ->
        (tokens ``[n, T, C]``, image ``[n, h*w, C]``)."""
        keys = image_embedding.flatten(2).permute(0, 2, 1)
        key_pe = image_pe.to(keys.dtype).flatten(2).permute(0, 2, 1)
        queries = point_embedding
        for layer in self.layers:
            queries, keys = layer(queries, keys, point_embedding, key_pe)
        q, k = queries + point_embedding, keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys


class MaskDecoder(nn.Module):
    """SAM's mask decoder as EfficientSAM publishes it: the two-way transformer over the prompt
    and output tokens and the image, transposed-convolution upscaling, one hypernetwork per
    mask token, and an IoU head. ``engine.runtime.accelerate`` may give an instance a faster
    ``forward`` and ``prepare`` computing the same (``engine.runtime.sam_decoder_fast``)."""

    def __init__(self, *, transformer_dim: int, transformer: TwoWayTransformer, num_multimask_outputs: int,
                 iou_head_depth: int, iou_head_hidden_dim: int, upscaling_layer_dims: Sequence[int]) -> None:
        """``iou_head_depth`` counts the hidden Linear+GELU layers (the published builder passes
        its config value minus one)."""
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.num_mask_tokens = num_multimask_outputs + 1 if num_multimask_outputs > 1 else 1
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)

        self.final_output_upscaling_layers = nn.ModuleList()
        dim = transformer_dim
        for i, out_dim in enumerate(upscaling_layer_dims):
            last = i == len(upscaling_layer_dims) - 1
            self.final_output_upscaling_layers.append(nn.Sequential(
                nn.ConvTranspose2d(dim, out_dim, kernel_size=2, stride=2),
                nn.Identity() if last else nn.GroupNorm(1, out_dim),
                nn.GELU(),
            ))
            dim = out_dim
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLPBlock(transformer_dim, transformer_dim, dim, 2, nn.GELU) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLPBlock(transformer_dim, iou_head_hidden_dim, self.num_mask_tokens,
                                            iou_head_depth, nn.GELU)

    def wanted_tokens(self, multimask_output: bool) -> list[int]:
        """The mask tokens returned: the 3 multimask ones, or the single-mask one."""
        if multimask_output and self.num_multimask_outputs > 1:
            return list(range(1, self.num_mask_tokens))
        return [0]

    def prepare(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor) -> ImageContext:
        """Image-only decoder work for ``[B, C, h, w]`` embeddings, to pass to ``forward`` on
        every click on that image (here only the image and PE as tokens)."""
        keys = image_embeddings.flatten(2).permute(0, 2, 1)
        return ImageContext(keys, image_pe.to(keys.dtype).flatten(2).permute(0, 2, 1))

    def forward(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                sparse_prompt_embeddings: torch.Tensor, multimask_output: bool,
                context: ImageContext | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Image ``[B, C, h, w]``, PE ``[1, C, h, w]``, prompts ``[B, Q, P, C]`` ->
        (masks ``[B*Q, K', 4h, 4w]``, IoU ``[B*Q, K']``), ``K'`` = 3 multimask or 1 single.
        ``context`` (from :meth:`prepare`) is only a speed-up; the plain path does not need it."""
        b, q, p, c = sparse_prompt_embeddings.shape
        image = image_embeddings.repeat_interleave(q, dim=0)  # per image -> per query
        masks, iou_pred = self.predict_masks(image, image_pe, sparse_prompt_embeddings.reshape(b * q, p, c))
        wanted = self.wanted_tokens(multimask_output)
        return masks[:, wanted], iou_pred[:, wanted]

    def predict_masks(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                      sparse_prompt_embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks ``[n, K, 4h, 4w]`` and IoU ``[n, K]`` of every mask token, for ``[n, C, h, w]``
        embeddings and ``[n, P, C]`` prompts."""
        n = sparse_prompt_embeddings.shape[0]
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([output_tokens[None].expand(n, -1, -1), sparse_prompt_embeddings], dim=1)
        b, c, h, w = image_embeddings.shape
        hs, src = self.transformer(image_embeddings, image_pe, tokens)
        iou_token_out = hs[:, 0]
        mask_tokens_out = hs[:, 1:1 + self.num_mask_tokens]

        upscaled = src.transpose(1, 2).reshape(b, c, h, w)
        for upscaling_layer in self.final_output_upscaling_layers:
            upscaled = upscaling_layer(upscaled)
        hyper_in = torch.stack([mlp(mask_tokens_out[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)],
                               dim=1)
        b, c, h, w = upscaled.shape
        masks = (hyper_in @ upscaled.view(b, c, h * w)).view(b, -1, h, w)
        return masks, self.iou_prediction_head(iou_token_out)
