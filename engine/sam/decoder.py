"""EfficientSAM's prompt encoder and mask decoder (SAM's two-way transformer).

Layout and semantics follow the published EfficientSAM (yformer/EfficientSAM) so that its
checkpoints load strictly; the code is ours. Notation: ``C`` the transformer width (256),
``h x w`` the image-embedding grid (64x64), ``P`` prompt points per query (padded to 6),
``K`` mask tokens (1 single-mask + 3 multimask), low-res masks ``4h x 4w`` (256x256).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..runtime.cpu_linear import matmul_nt, pack_weight, packed_linear, usable_for
from ..errors import InputError

# Point labels understood by the prompt encoder.
LABEL_PADDING = -1
LABEL_NEGATIVE = 0  # position encoding only, no learned embedding added
LABEL_POSITIVE = 1
LABEL_BOX_TOP_LEFT = 2
LABEL_BOX_BOTTOM_RIGHT = 3


def tensor_version(t: torch.Tensor) -> int | None:
    """In-place modification counter of ``t``; None for inference tensors, which have none
    (then nothing derived from ``t`` may be cached)."""
    try:
        return t._version
    except RuntimeError:
        return None


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
    """Multi-head attention whose inner width is ``embedding_dim / downsample_rate``.

    ``forward`` is the plain computation. The decoder's cross-attentions pair a few prompt
    tokens (T ~ 11) with many image tokens (N = 4096); ``tokens_to_image`` and
    ``image_to_tokens`` compute the same thing with the projections that would touch all N
    image tokens re-associated onto the T tokens instead (a third fewer FLOPs per click).
    """

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

    def _per_head(self, linear: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
        """An input projection's weight as ``[H, d, C]`` and bias as ``[H, d]``."""
        return (linear.weight.view(self.num_heads, self.head_dim, -1),
                linear.bias.view(self.num_heads, self.head_dim))

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v))
        out = F.scaled_dot_product_attention(q, k, v)  # scale 1/sqrt(head dim), as published
        return self.out_proj(self._merge(out))

    def project_image(self, image_k: torch.Tensor, image_v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected image keys and values ``[n, H, N, d]``, for reuse across clicks."""
        return self._heads(self.k_proj(image_k)), self._heads(self.v_proj(image_v))

    def tokens_to_image(self, tokens_q: torch.Tensor, image_k: torch.Tensor | None, image_v: torch.Tensor | None,
                        kv_heads: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``forward(tokens_q, image_k, image_v)`` for T tokens attending to N image tokens.

        With ``kv_heads`` (from :meth:`project_image`) the image projections are reused. Otherwise
        ``q_h . (W_k x + b_k)`` is computed as ``(q_h W_k) . x + q_h . b_k`` and, since each row of
        the attention sums to one, ``P (W_v x + b_v)`` as ``W_v (P x) + b_v``.
        """
        q = self._heads(self.q_proj(tokens_q))  # [n, H, T, d]
        if kv_heads is not None:
            return self.out_proj(self._merge(F.scaled_dot_product_attention(q, *kv_heads)))
        n, heads, t, d = q.shape
        q = q * (d ** -0.5)  # the softmax scale, applied on the small side
        wk, _ = self._per_head(self.k_proj)
        wv, bv = self._per_head(self.v_proj)
        qk = torch.einsum("nhtd,hdc->nhtc", q, wk).reshape(n, heads * t, -1)
        # q_h . b_k is the same for every image token: the softmax over image tokens drops it.
        scores = _scores(qk, image_k)  # [n, H*T, N]
        attn = torch.softmax(scores, dim=-1)
        pooled = torch.bmm(attn, image_v).view(n, heads, t, -1)  # [n, H, T, C]
        out = torch.einsum("nhtc,hdc->nhtd", pooled, wv) + bv[None, :, None, :]
        return self.out_proj(self._merge(out))

    def image_to_tokens(self, image_q: torch.Tensor | None, tokens_k: torch.Tensor, tokens_v: torch.Tensor,
                        q_heads: torch.Tensor | None = None, residual: torch.Tensor | None = None) -> torch.Tensor:
        """``residual + forward(image_q, tokens_k, tokens_v)`` for N image tokens attending to T tokens.

        With ``q_heads`` ``[n, H, N, d]`` (precomputed ``q_proj(image_q)``) the queries are reused;
        otherwise ``q_proj`` is folded into the keys. ``out_proj`` is always folded into the
        values: ``sum_h P_h (v_h W_o,h^T)``, a ``[N, H*T] x [H*T, C]`` product. Scores are kept
        as ``[n, H, T, N]`` so that the softmax over the T tokens runs along contiguous rows of
        N (a softmax along a last axis of 11 is ~15x slower on CPUs).
        """
        k = self._heads(self.k_proj(tokens_k))  # [n, H, T, d]
        v = self._heads(self.v_proj(tokens_v))
        n, heads, t, d = k.shape
        k = k * (d ** -0.5)  # the softmax scale, applied on the small side
        if q_heads is not None:
            scores = k @ q_heads.transpose(2, 3)  # [n, H, T, N]
        else:
            wq, bq = self._per_head(self.q_proj)
            kq = torch.einsum("nhtd,hdc->nhtc", k, wq).reshape(n, heads * t, -1)
            bias = torch.einsum("nhtd,hd->nht", k, bq).reshape(n, heads * t, 1)
            scores = _scores(kq, image_q).add_(bias).view(n, heads, t, -1)
        attn = torch.softmax(scores, dim=2).reshape(n, heads * t, -1)  # [n, H*T, N]
        wo = self.out_proj.weight.view(-1, heads, d)  # [C, H, d]
        values = torch.einsum("nhtd,chd->nhtc", v, wo).reshape(n, heads * t, -1)  # [n, H*T, C]
        if residual is None:
            return torch.baddbmm(self.out_proj.bias.expand(n, 1, -1), attn.transpose(1, 2), values)
        return (residual + self.out_proj.bias).baddbmm_(attn.transpose(1, 2), values)  # one pass fewer


def _scores(a: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """``a @ image^T``: ``[n, M, C]`` token-side rows against ``[n, N, C]`` image tokens."""
    if a.shape[0] == 1 and image.is_contiguous():
        return matmul_nt(a[0], image[0]).unsqueeze(0)
    return torch.bmm(a, image.transpose(1, 2))


def _group_norm_one_group(x: torch.Tensor, norm: nn.GroupNorm) -> torch.Tensor:
    """``GroupNorm(1, C)`` of channels-last ``[n, rows, C]``: one mean and variance per sample.

    Normalisation and the per-channel affine are folded into one multiply-add per element
    (``x * scale + shift``, both ``[n, 1, C]``). ``F.layer_norm`` over a whole sample would
    reduce a single 1M-element row on one thread, then take a second pass for the affine.
    """
    flat = x.reshape(x.shape[0], -1).float()
    # Two passes (mean, then the mean squared deviation): stable, and both reductions are
    # multi-threaded; torch.var_mean over (rows, C) took 3 ms here, single-threaded, and
    # vector_norm lost ~1e-5 relative accuracy in its accumulation.
    mean = flat.mean(dim=1, keepdim=True)
    dev = flat - mean
    var = dev.mul_(dev).mean(dim=1, keepdim=True)
    scale = torch.rsqrt(var + norm.eps)[:, :, None] * norm.weight.float()  # [n, 1, C]
    shift = norm.bias.float() - mean[:, :, None] * scale
    return torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))


@dataclass
class ImageContext:
    """Decoder work that depends on the image only, reused for every click on that image.

    ``keys`` ``[n, N, C]`` image tokens, ``key_pe`` ``[n or 1, N, C]`` their position encoding,
    and the first layer's projections of them (its keys are still the raw image then).
    """

    keys: torch.Tensor
    key_pe: torch.Tensor
    first_kv: tuple[torch.Tensor, torch.Tensor]  # token->image keys/values [n, H, N, d]
    first_q: torch.Tensor  # image->token queries [n, H, N, d]

    def repeat(self, times: int) -> "ImageContext":
        """The context for ``times`` prompt queries per image (a view when times == 1)."""
        if times == 1:
            return self

        def rep(x: torch.Tensor) -> torch.Tensor:
            return x.repeat_interleave(times, dim=0)

        key_pe = self.key_pe if self.key_pe.shape[0] == 1 else rep(self.key_pe)
        return ImageContext(rep(self.keys), key_pe, (rep(self.first_kv[0]), rep(self.first_kv[1])),
                            rep(self.first_q))


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

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor, key_pe: torch.Tensor,
                context: ImageContext | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``[n, T, C]``, image ``[n, N, C]``. ``context`` (first layer only) carries the
        image-side projections already made for this image."""
        # The first layer's queries are the prompt embeddings themselves (PE already inside).
        # Later layers add the PE to the queries *and* keep it in the residual: EfficientSAM
        # differs from SAM here, and its weights were trained this way.
        q = queries if self.skip_first_layer_pe else queries + query_pe
        queries = self.norm1(q + self.self_attn(q, q, q))

        keys_pe = None if context is not None else keys + key_pe
        kv = context.first_kv if context is not None else None
        attn = self.cross_attn_token_to_image.tokens_to_image(queries + query_pe, keys_pe, keys, kv_heads=kv)
        queries = self.norm2(queries + attn)
        queries = self.norm3(queries + self.mlp(queries))

        q = queries + query_pe
        first_q = context.first_q if context is not None else None
        keys = self.norm4(self.cross_attn_image_to_token.image_to_tokens(keys_pe, q, queries, q_heads=first_q,
                                                                         residual=keys))
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

    def prepare(self, image_embedding: torch.Tensor, image_pe: torch.Tensor) -> ImageContext:
        """The image-only part of the first layer: ``[n, C, h, w]`` image, ``[1, C, h, w]`` PE."""
        keys = image_embedding.flatten(2).transpose(1, 2).contiguous()
        key_pe = image_pe.to(keys.dtype).flatten(2).transpose(1, 2).contiguous()
        first = self.layers[0]
        keys_pe = keys + key_pe
        kv = first.cross_attn_token_to_image.project_image(keys_pe, keys)
        q = first.cross_attn_image_to_token._heads(first.cross_attn_image_to_token.q_proj(keys_pe))
        return ImageContext(keys, key_pe, kv, q)

    def forward(self, image_embedding: torch.Tensor | None, image_pe: torch.Tensor | None,
                point_embedding: torch.Tensor, context: ImageContext | None = None,
                outputs: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``[n, C, h, w]`` image and PE (or their ``context``), ``[n, T, C]`` tokens ->
        (tokens ``[n, T, C]``, image ``[n, h*w, C]``).

        ``outputs``: the token positions the caller will read; the final attention (which only
        changes tokens, each on its own) is then computed for those alone and only they are
        returned, in that order.
        """
        if context is None:
            context = self.prepare(image_embedding, image_pe)
        keys, key_pe = context.keys, context.key_pe
        queries = point_embedding
        for i, layer in enumerate(self.layers):
            queries, keys = layer(queries, keys, point_embedding, key_pe, context if i == 0 else None)
        query_pe = point_embedding
        if outputs is not None:
            queries, query_pe = queries[:, list(outputs)], query_pe[:, list(outputs)]
        attn = self.final_attn_token_to_image.tokens_to_image(queries + query_pe, keys + key_pe, keys)
        return self.norm_final_attn(queries + attn), keys


def _deconv_as_matrix(deconv: nn.ConvTranspose2d) -> tuple[torch.Tensor, torch.Tensor]:
    """A stride-2, 2x2 transposed convolution as a Linear: weight ``[4 C_out, C_in]`` with
    rows in (dy, dx, out) order, and the bias repeated to match."""
    c_in, c_out = deconv.weight.shape[:2]
    weight = deconv.weight.detach().permute(2, 3, 1, 0).reshape(4 * c_out, c_in)
    return weight, deconv.bias.detach().repeat(4)


class MaskDecoder(nn.Module):
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
        # Upscaling layer index -> (weight identity and versions, packed matrix, bias): CPU fast path.
        self._packed_upscaling_cache: dict[int, tuple[tuple, torch.Tensor, torch.Tensor]] = {}

    def prepare(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor) -> ImageContext:
        """Image-only decoder work for ``[B, C, h, w]`` embeddings, to pass to ``forward`` on every click."""
        return self.transformer.prepare(image_embeddings, image_pe)

    def forward(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                sparse_prompt_embeddings: torch.Tensor, multimask_output: bool,
                context: ImageContext | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Image ``[B, C, h, w]``, PE ``[1, C, h, w]``, prompts ``[B, Q, P, C]`` ->
        (masks ``[B*Q, K', 4h, 4w]``, IoU ``[B*Q, K']``), ``K'`` = 3 multimask or 1 single."""
        b, q, p, c = sparse_prompt_embeddings.shape
        if context is None:
            context = self.prepare(image_embeddings, image_pe)
        h, w = image_embeddings.shape[-2:]
        prompts = sparse_prompt_embeddings.reshape(b * q, p, c)
        if multimask_output and self.num_multimask_outputs > 1:
            wanted = list(range(1, self.num_mask_tokens))
        else:
            wanted = [0]
        return self.predict_masks(context.repeat(q), (h, w), prompts, wanted)

    def predict_masks(self, context: ImageContext, grid: tuple[int, int], sparse_prompt_embeddings: torch.Tensor,
                      wanted: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks ``[n, len(wanted), 4h, 4w]`` and IoU ``[n, len(wanted)]`` for the chosen mask tokens
        (only their hypernetworks and products are computed)."""
        n = sparse_prompt_embeddings.shape[0]
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([output_tokens[None].expand(n, -1, -1), sparse_prompt_embeddings], dim=1)
        # Only the IoU token and the wanted mask tokens are read after the transformer.
        hs, src = self.transformer(None, None, tokens, context=context, outputs=[0, *(1 + i for i in wanted)])
        hyper_in = torch.stack([self.output_hypernetworks_mlps[i](hs[:, 1 + j]) for j, i in enumerate(wanted)], dim=1)
        masks = self._upscale_and_project(src, grid, hyper_in)
        iou_pred = self.iou_prediction_head(hs[:, 0])[:, wanted]
        return masks, iou_pred

    def _packed_upscaling(self, index: int, deconv: nn.ConvTranspose2d) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer's packed matrix and bias (see :func:`_deconv_as_matrix`), made once and
        remade only when the weights change (in place or replaced)."""
        key = (deconv.weight.data_ptr(), tensor_version(deconv.weight), deconv.bias.data_ptr(),
               tensor_version(deconv.bias))
        cache = self._packed_upscaling_cache
        hit = cache.get(index)
        if hit is not None and hit[0] == key and None not in key:
            return hit[1], hit[2]
        weight, bias = _deconv_as_matrix(deconv)
        packed = pack_weight(weight)
        cache[index] = (key, packed, bias)
        return packed, bias

    def _upscale_and_project(self, src: torch.Tensor, grid: tuple[int, int], hyper_in: torch.Tensor) -> torch.Tensor:
        """Upscaling layers and the hypernetwork product, ``[n, h*w, C]`` -> ``[n, K, 2^L h, 2^L w]``.

        A stride-2, 2x2 transposed convolution maps each input pixel to its own 2x2 output
        block: it is one matrix product per pixel. Working channels-last on rows that keep
        the sub-pixel offsets (i, j, dy1, dx1, dy2, dx2, ...) turns every layer into a single
        GEMM (oneDNN's transposed convolution is an order of magnitude slower on CPUs); the
        rows are put in image order once, on the small K-channel mask logits.
        """
        n = src.shape[0]
        h, w = grid
        x = src.reshape(-1, src.shape[-1])
        fast = usable_for(x)
        for index, layer in enumerate(self.final_output_upscaling_layers):
            deconv, norm = layer[0], layer[1]
            c_out = deconv.weight.shape[1]
            with_norm = isinstance(norm, nn.GroupNorm)  # GroupNorm(1, C): statistics over all of a sample
            if fast:
                # oneDNN, weight packed once per model; the GELU of the last layer is fused in.
                packed, bias = self._packed_upscaling(index, deconv)
                x = packed_linear(x, packed, bias, gelu=not with_norm).view(n, -1, c_out)
            else:
                weight, bias = _deconv_as_matrix(deconv)
                x = torch.addmm(bias, x, weight.t()).view(n, -1, c_out)
            if with_norm:
                x = _group_norm_one_group(x, norm)
            if with_norm or not fast:
                x = F.gelu(x)
            x = x.reshape(-1, c_out)
        levels = len(self.final_output_upscaling_layers)
        k = hyper_in.shape[1]
        masks = torch.bmm(hyper_in, x.view(n, -1, x.shape[-1]).transpose(1, 2))  # [n, K, rows]
        masks = masks.view(n, k, h, w, *([2, 2] * levels))
        # dims: 0 n, 1 K, 2 i, 3 j, then (dy_l, dx_l) pairs -> [n, K, i, dy_1..dy_L, j, dx_1..dx_L]
        dys = [4 + 2 * lv for lv in range(levels)]
        dxs = [5 + 2 * lv for lv in range(levels)]
        order = [0, 1, 2, *dys, 3, *dxs]
        scale = 2 ** levels
        return masks.permute(*order).reshape(n, k, h * scale, w * scale)
