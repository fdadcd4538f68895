"""The EfficientSAM mask decoder's fast path, registered by :mod:`engine.runtime.accelerate`.

``engine.sam.decoder`` keeps the published computation, plain and readable. This module
computes the same masks and IoU predictions with less work per click; the accelerator gives a
``MaskDecoder`` instance :func:`forward` and :func:`prepare` in place of its own (model classes
and weights untouched). ``tests/engine/runtime/test_accelerate.py`` checks that both paths agree.

What it changes (not what it computes):

- **Image-only work once per image** (:func:`prepare`): the image tokens, their position
  encoding, and the first layer's projections of them, reused by every click on that image.
- **Cross-attention re-associated** (:func:`tokens_to_image`, :func:`image_to_tokens`): the
  decoder pairs a few prompt tokens (T ~ 11) with many image tokens (N = 4096); the projections
  that would touch all N image tokens are moved onto the T tokens (a third fewer FLOPs).
- **Only what is read**: the final attention and the hypernetworks run for the IoU token and
  the wanted mask tokens only.
- **Upscaling as GEMMs** (:func:`upscale_and_project`): each stride-2, 2x2 transposed
  convolution is one matrix product on channels-last rows; on the CPU in fp32 the matrix is
  packed for oneDNN once per weight version (GELU fused into the last product), and the
  ``GroupNorm(1, C)`` is folded into one multiply-add.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..sam.decoder import ImageContext, MaskDecoder, TwoWayAttention, TwoWayAttentionBlock, TwoWayTransformer
from .cpu_linear import fused_gelu_available, matmul_nt, pack_weight, packed_linear, usable_for
from .versions import tensor_version


def _per_head(attn: TwoWayAttention, linear: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
    """An input projection's weight as ``[H, d, C]`` and bias as ``[H, d]``."""
    return (linear.weight.view(attn.num_heads, attn.head_dim, -1),
            linear.bias.view(attn.num_heads, attn.head_dim))


def _scores(a: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """``a @ image^T``: ``[n, M, C]`` token-side rows against ``[n, N, C]`` image tokens."""
    if a.shape[0] == 1 and image.is_contiguous():
        return matmul_nt(a[0], image[0]).unsqueeze(0)
    return torch.bmm(a, image.transpose(1, 2))


def tokens_to_image(attn: TwoWayAttention, tokens_q: torch.Tensor, image_k: torch.Tensor | None,
                    image_v: torch.Tensor | None,
                    kv_heads: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """``attn(tokens_q, image_k, image_v)`` for T tokens attending to N image tokens.

    With ``kv_heads`` (the image keys and values already projected) they are reused. Otherwise
    ``q_h . (W_k x + b_k)`` is computed as ``(q_h W_k) . x + q_h . b_k`` and, since each row of
    the attention sums to one, ``P (W_v x + b_v)`` as ``W_v (P x) + b_v``.
    """
    q = attn._heads(attn.q_proj(tokens_q))  # [n, H, T, d]
    if kv_heads is not None:
        return attn.out_proj(attn._merge(F.scaled_dot_product_attention(q, *kv_heads)))
    n, heads, t, d = q.shape
    q = q * (d ** -0.5)  # the softmax scale, applied on the small side
    wk, _ = _per_head(attn, attn.k_proj)
    wv, bv = _per_head(attn, attn.v_proj)
    qk = torch.einsum("nhtd,hdc->nhtc", q, wk).reshape(n, heads * t, -1)
    # q_h . b_k is the same for every image token: the softmax over image tokens drops it.
    scores = _scores(qk, image_k)  # [n, H*T, N]
    probs = torch.softmax(scores, dim=-1)
    pooled = torch.bmm(probs, image_v).view(n, heads, t, -1)  # [n, H, T, C]
    out = torch.einsum("nhtc,hdc->nhtd", pooled, wv) + bv[None, :, None, :]
    return attn.out_proj(attn._merge(out))


def image_to_tokens(attn: TwoWayAttention, image_q: torch.Tensor | None, tokens_k: torch.Tensor,
                    tokens_v: torch.Tensor, q_heads: torch.Tensor | None = None,
                    residual: torch.Tensor | None = None) -> torch.Tensor:
    """``residual + attn(image_q, tokens_k, tokens_v)`` for N image tokens attending to T tokens.

    With ``q_heads`` ``[n, H, N, d]`` (precomputed ``q_proj(image_q)``) the queries are reused;
    otherwise ``q_proj`` is folded into the keys. ``out_proj`` is always folded into the
    values: ``sum_h P_h (v_h W_o,h^T)``, a ``[N, H*T] x [H*T, C]`` product. Scores are kept
    as ``[n, H, T, N]`` so that the softmax over the T tokens runs along contiguous rows of
    N (a softmax along a last axis of 11 is ~15x slower on CPUs).
    """
    k = attn._heads(attn.k_proj(tokens_k))  # [n, H, T, d]
    v = attn._heads(attn.v_proj(tokens_v))
    n, heads, t, d = k.shape
    k = k * (d ** -0.5)  # the softmax scale, applied on the small side
    if q_heads is not None:
        scores = k @ q_heads.transpose(2, 3)  # [n, H, T, N]
    else:
        wq, bq = _per_head(attn, attn.q_proj)
        kq = torch.einsum("nhtd,hdc->nhtc", k, wq).reshape(n, heads * t, -1)
        bias = torch.einsum("nhtd,hd->nht", k, bq).reshape(n, heads * t, 1)
        scores = _scores(kq, image_q).add_(bias).view(n, heads, t, -1)
    probs = torch.softmax(scores, dim=2).reshape(n, heads * t, -1)  # [n, H*T, N]
    wo = attn.out_proj.weight.view(-1, heads, d)  # [C, H, d]
    values = torch.einsum("nhtd,chd->nhtc", v, wo).reshape(n, heads * t, -1)  # [n, H*T, C]
    if residual is None:
        return torch.baddbmm(attn.out_proj.bias.expand(n, 1, -1), probs.transpose(1, 2), values)
    return (residual + attn.out_proj.bias).baddbmm_(probs.transpose(1, 2), values)  # one pass fewer


def block_forward(block: TwoWayAttentionBlock, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor,
                  key_pe: torch.Tensor, context: ImageContext | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``block(queries, keys, query_pe, key_pe)``; ``context`` (first layer only) carries the
    image-side projections already made for this image."""
    q = queries if block.skip_first_layer_pe else queries + query_pe
    queries = block.norm1(q + block.self_attn(q, q, q))

    keys_pe = None if context is not None else keys + key_pe
    kv = (context.extra["first_k"], context.extra["first_v"]) if context is not None else None
    attn = tokens_to_image(block.cross_attn_token_to_image, queries + query_pe, keys_pe, keys, kv_heads=kv)
    queries = block.norm2(queries + attn)
    queries = block.norm3(queries + block.mlp(queries))

    q = queries + query_pe
    first_q = context.extra["first_q"] if context is not None else None
    keys = block.norm4(image_to_tokens(block.cross_attn_image_to_token, keys_pe, q, queries, q_heads=first_q,
                                       residual=keys))
    return queries, keys


def transformer_prepare(transformer: TwoWayTransformer, image_embedding: torch.Tensor,
                        image_pe: torch.Tensor) -> ImageContext:
    """The image-only part of the first layer: ``[n, C, h, w]`` image, ``[1, C, h, w]`` PE."""
    keys = image_embedding.flatten(2).transpose(1, 2).contiguous()
    key_pe = image_pe.to(keys.dtype).flatten(2).transpose(1, 2).contiguous()
    first = transformer.layers[0]
    keys_pe = keys + key_pe
    t2i, i2t = first.cross_attn_token_to_image, first.cross_attn_image_to_token
    first_k, first_v = t2i._heads(t2i.k_proj(keys_pe)), t2i._heads(t2i.v_proj(keys))
    first_q = i2t._heads(i2t.q_proj(keys_pe))
    return ImageContext(keys, key_pe, {"first_k": first_k, "first_v": first_v, "first_q": first_q})


def transformer_forward(transformer: TwoWayTransformer, context: ImageContext, point_embedding: torch.Tensor,
                        outputs: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens at ``outputs`` ``[n, len(outputs), C]``, image ``[n, h*w, C]``): the final
    attention (which changes each token on its own) runs for the tokens read only."""
    keys, key_pe = context.keys, context.key_pe
    queries = point_embedding
    for i, layer in enumerate(transformer.layers):
        queries, keys = block_forward(layer, queries, keys, point_embedding, key_pe, context if i == 0 else None)
    queries, query_pe = queries[:, list(outputs)], point_embedding[:, list(outputs)]
    attn = tokens_to_image(transformer.final_attn_token_to_image, queries + query_pe, keys + key_pe, keys)
    return transformer.norm_final_attn(queries + attn), keys


def group_norm_one_group(x: torch.Tensor, norm: nn.GroupNorm) -> torch.Tensor:
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


def _deconv_as_matrix(deconv: nn.ConvTranspose2d) -> tuple[torch.Tensor, torch.Tensor]:
    """A stride-2, 2x2 transposed convolution as a Linear: weight ``[4 C_out, C_in]`` with
    rows in (dy, dx, out) order, and the bias repeated to match."""
    c_in, c_out = deconv.weight.shape[:2]
    weight = deconv.weight.detach().permute(2, 3, 1, 0).reshape(4 * c_out, c_in)
    return weight, deconv.bias.detach().repeat(4)


def _packed_upscaling(cache: dict[int, Any], index: int, deconv: nn.ConvTranspose2d) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's packed matrix and bias, made once and remade when the weights change (in
    place or replaced); never kept where the weights' versions cannot be read."""
    key = (deconv.weight.data_ptr(), tensor_version(deconv.weight), deconv.bias.data_ptr(),
           tensor_version(deconv.bias))
    hit = cache.get(index)
    if hit is not None and hit[0] == key:
        return hit[1], hit[2]
    weight, bias = _deconv_as_matrix(deconv)
    packed = pack_weight(weight)
    if None not in key:
        cache[index] = (key, packed, bias)
    return packed, bias


def upscale_and_project(decoder: MaskDecoder, cache: dict[int, Any], src: torch.Tensor, grid: tuple[int, int],
                        hyper_in: torch.Tensor) -> torch.Tensor:
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
    fused = fast and fused_gelu_available()
    for index, layer in enumerate(decoder.final_output_upscaling_layers):
        deconv, norm = layer[0], layer[1]
        c_out = deconv.weight.shape[1]
        with_norm = isinstance(norm, nn.GroupNorm)  # GroupNorm(1, C): statistics over all of a sample
        gelu_inside = fused and not with_norm
        if fast:
            # oneDNN, weight packed once per weight version; the GELU of the last layer is fused in.
            packed, bias = _packed_upscaling(cache, index, deconv)
            x = packed_linear(x, packed, bias, gelu=gelu_inside).view(n, -1, c_out)
        else:
            weight, bias = _deconv_as_matrix(deconv)
            x = torch.addmm(bias, x, weight.t()).view(n, -1, c_out)
        if with_norm:
            x = group_norm_one_group(x, norm)
        if not gelu_inside:
            x = F.gelu(x)
        x = x.reshape(-1, c_out)
    levels = len(decoder.final_output_upscaling_layers)
    k = hyper_in.shape[1]
    masks = torch.bmm(hyper_in, x.view(n, -1, x.shape[-1]).transpose(1, 2))  # [n, K, rows]
    masks = masks.view(n, k, h, w, *([2, 2] * levels))
    # dims: 0 n, 1 K, 2 i, 3 j, then (dy_l, dx_l) pairs -> [n, K, i, dy_1..dy_L, j, dx_1..dx_L]
    dys = [4 + 2 * lv for lv in range(levels)]
    dxs = [5 + 2 * lv for lv in range(levels)]
    order = [0, 1, 2, *dys, 3, *dxs]
    scale = 2 ** levels
    return masks.permute(*order).reshape(n, k, h * scale, w * scale)


def prepare(decoder: MaskDecoder, image_embeddings: torch.Tensor, image_pe: torch.Tensor) -> ImageContext:
    """Image-only decoder work for ``[B, C, h, w]`` embeddings (see :func:`transformer_prepare`)."""
    return transformer_prepare(decoder.transformer, image_embeddings, image_pe)


def forward(decoder: MaskDecoder, cache: dict[int, Any], image_embeddings: torch.Tensor, image_pe: torch.Tensor,
            sparse_prompt_embeddings: torch.Tensor, multimask_output: bool,
            context: ImageContext | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``MaskDecoder.forward``, same arguments and results; ``context`` from :func:`prepare`
    (a context from the plain ``prepare`` lacks the projections and is made again)."""
    b, q, p, c = sparse_prompt_embeddings.shape
    if context is None or "first_q" not in context.extra:
        context = prepare(decoder, image_embeddings, image_pe)
    grid = tuple(image_embeddings.shape[-2:])
    prompts = sparse_prompt_embeddings.reshape(b * q, p, c)
    wanted = decoder.wanted_tokens(multimask_output)
    context = context.repeat(q)
    n = prompts.shape[0]
    output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat([output_tokens[None].expand(n, -1, -1), prompts], dim=1)
    # Only the IoU token and the wanted mask tokens are read after the transformer.
    hs, src = transformer_forward(decoder.transformer, context, tokens, outputs=[0, *(1 + i for i in wanted)])
    hyper_in = torch.stack([decoder.output_hypernetworks_mlps[i](hs[:, 1 + j]) for j, i in enumerate(wanted)], dim=1)
    masks = upscale_and_project(decoder, cache, src, grid, hyper_in)
    iou_pred = decoder.iou_prediction_head(hs[:, 0])[:, wanted]
    return masks, iou_pred


__all__ = ["forward", "prepare", "tokens_to_image", "image_to_tokens", "upscale_and_project", "group_norm_one_group"]
