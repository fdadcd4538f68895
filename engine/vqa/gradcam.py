"""BLIP image-question Grad-CAM, as LAVIS ``compute_gradcam`` computes it for PNP-VQA.

The model is Hugging Face's own ``BlipForImageTextRetrieval``; we only tokenise the question
the LAVIS way (``[ENC]`` first, which Hugging Face's forward does not do), call its text encoder
and ITM head, capture one cross-attention layer's probabilities with hooks and take the
gradient of the positive ITM logits with respect to them.

Shapes: ``B`` questions (one image each), ``T`` text tokens (padded to the longest), ``P = G*G``
image patches (576 = 24x24 for BLIP-large at 384 px), plus one CLS token on the image side.
Grid cells are (row, col) of the BLIP input, which is the image squashed to a square.

Cost: the vision encoder runs once per image without autograd (``encode_image_itm``; cache its
output per image and pass it as ``image_embeds``); a question costs one text-encoder forward and
a backward pass only from the ITM logit down to layer ``block_num``. No parameter gradient is
computed or stored (``torch.autograd.grad`` with the attention map as the only input). With
the parameters' ``requires_grad`` off (``model.requires_grad_(False)`` after loading) autograd
does not even record the layers before ``block_num``; the result is the same either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from .blip_text import ITM_MAX_TEXT_TOKENS, enc_token_id, text_tokenizer
from .question import blip_question
from ..errors import InputError
from ..imaging.images import check_rgb

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
PIL_BICUBIC = 3  # PIL.Image.Resampling.BICUBIC; the value transformers' image processors use


@dataclass(frozen=True)
class GradcamResult:
    """Grad-CAM of B questions. All arrays are numpy on the CPU.

    question_maps: [B, G, G] float32 >= 0, not normalised (PNP-VQA uses it as sampling weights).
    token_maps: [B, T, G, G] float32, one map per token position; padding positions are zero.
    itm_logits: [B, 2] float32 (class 1 = image and question match), before softmax.
    input_ids / attention_mask: [B, T] int64, exactly as fed to the text encoder ([ENC] first).
    tokens: per question, the word pieces of its non-padding positions ([ENC] ... [SEP]).
    """

    question_maps: np.ndarray
    token_maps: np.ndarray
    itm_logits: np.ndarray
    input_ids: np.ndarray
    attention_mask: np.ndarray
    tokens: tuple[tuple[str, ...], ...]

    def question_token_maps(self, index: int) -> tuple[tuple[str, ...], np.ndarray]:
        """The question's own word pieces (no [ENC], no [SEP]) and their maps [n, G, G]."""
        n = len(self.tokens[index]) - 2
        return self.tokens[index][1:n + 1], self.token_maps[index, 1:n + 1]

    def itm_probabilities(self) -> np.ndarray:
        """[B] float32: softmax(itm_logits)[:, 1]."""
        return itm_probability(self.itm_logits)


def itm_probability(itm_logits: np.ndarray | torch.Tensor) -> np.ndarray:
    """[B, 2] ITM logits -> [B] float32 probability that image and text match (softmax class 1)."""
    if torch.is_tensor(itm_logits):
        logits = itm_logits.detach().float().cpu()
    else:
        logits = torch.as_tensor(np.asarray(itm_logits, dtype=np.float32))
    if logits.ndim != 2 or logits.shape[1] != 2:
        raise InputError(f"ITM logits must have shape [B, 2], got {tuple(logits.shape)}.")
    return torch.softmax(logits, dim=1)[:, 1].numpy()


def preprocess_image(rgb_uint8: np.ndarray, processor_or_size: Any = 384) -> torch.Tensor:
    """An RGB uint8 image [H, W, 3] -> BLIP pixel values [1, 3, S, S] float32 (normalised).

    BLIP squashes the image to S x S with bicubic resampling (aspect ratio not kept), scales to
    [0, 1] and normalises with the CLIP mean/std. ``processor_or_size`` is either a
    ``BlipProcessor`` / BLIP image processor loaded with ``from_pretrained`` (its size, mean and
    std are used; bicubic is enforced) or an int S, which reproduces LAVIS exactly with PIL's
    antialiased bicubic resize.
    """
    image = check_rgb(rgb_uint8)
    if isinstance(processor_or_size, (int, np.integer)):
        return _preprocess_pil(image, int(processor_or_size))
    image_processor = getattr(processor_or_size, "image_processor", processor_or_size)
    if not callable(image_processor):
        raise InputError("preprocess_image needs a BLIP processor or an image size in pixels.")
    from PIL import Image

    out = image_processor(images=Image.fromarray(image), resample=PIL_BICUBIC, return_tensors="pt")
    return out["pixel_values"].to(torch.float32)


def _preprocess_pil(image: np.ndarray, size: int) -> torch.Tensor:
    from PIL import Image

    if size < 16:
        raise InputError(f"BLIP image size must be at least one 16-pixel patch, got {size}.")
    resized = Image.fromarray(image).resize((size, size), resample=Image.Resampling.BICUBIC)
    pixels = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1)
    std = torch.tensor(CLIP_STD).view(3, 1, 1)
    return ((pixels - mean) / std).unsqueeze(0).contiguous()


def _model_device_dtype(module: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    param = next(module.parameters())
    return param.device, param.dtype


def encode_image_itm(model: Any, pixel_values: torch.Tensor) -> torch.Tensor:
    """ITM vision encoder output [B, 1 + G*G, D] (no autograd). Cache it per image."""
    if not torch.is_tensor(pixel_values) or pixel_values.ndim != 4:
        raise InputError("pixel_values must be a tensor [B, 3, S, S] (see preprocess_image).")
    device, dtype = _model_device_dtype(model.vision_model)
    with torch.no_grad():
        out = model.vision_model(pixel_values=pixel_values.to(device=device, dtype=dtype))
    return out.last_hidden_state


def tokenize_questions(tokenizer: Any, model_config: Any, questions: Sequence[str]
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """LAVIS ITM tokenisation: '?' stripped, pad to longest, at most 35 tokens, [ENC] first.

    Returns input_ids and attention_mask, both [B, T] int64 on the CPU.
    """
    if isinstance(questions, str) or not questions:
        raise InputError("Give the questions as a non-empty list of strings.")
    cleaned = [blip_question(q) for q in questions]
    tok = text_tokenizer(tokenizer)
    encoded = tok(cleaned, padding="longest", truncation=True, max_length=ITM_MAX_TEXT_TOKENS,
                  return_tensors="pt")
    input_ids = encoded["input_ids"].clone()
    input_ids[:, 0] = enc_token_id(tok, model_config)
    return input_ids, encoded["attention_mask"].clone()


class _AttentionCapture:
    """Hooks on the Grad-CAM layer's ``BlipTextSelfAttention`` (cross-attention).

    The pre-hook hands the layer a copy of the image states that requires grad, so the attention
    probabilities join the autograd graph whatever the parameters' ``requires_grad`` flags are,
    and nothing before this layer is recorded when they are off. The forward hook keeps the
    probabilities: in transformers 5.x the module returns ``(context, attention_probs)``.
    """

    def __init__(self) -> None:
        self.probs: torch.Tensor | None = None

    def before(self, module: torch.nn.Module, args: Any, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        kwargs = dict(kwargs)
        kwargs["encoder_hidden_states"] = kwargs["encoder_hidden_states"].detach().requires_grad_(True)
        return args, kwargs

    def after(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        self.probs = output[1]


def cross_attention_module(model: Any, block_num: int) -> torch.nn.Module:
    layers = model.text_encoder.encoder.layer
    if not 0 <= block_num < len(layers):
        raise InputError(f"Grad-CAM layer {block_num} does not exist: the text encoder has "
                         f"{len(layers)} layers (0 to {len(layers) - 1}).")
    layer = layers[block_num]
    if not hasattr(layer, "crossattention"):
        raise InputError(f"Text-encoder layer {block_num} has no cross-attention to the image.")
    return layer.crossattention.self


def compute_gradcam(
    model: Any,
    tokenizer: Any,
    pixel_values: torch.Tensor | None,
    questions: Sequence[str],
    block_num: int = 7,
    image_embeds: torch.Tensor | None = None,
) -> GradcamResult:
    """Grad-CAM of each question against its image (LAVIS ``compute_gradcam`` semantics).

    model: ``BlipForImageTextRetrieval`` (eval mode). tokenizer: its BERT tokenizer or processor.
    pixel_values: [B or 1, 3, S, S] normalised; may be None when ``image_embeds`` is given.
    image_embeds: [B or 1, 1 + G*G, D] from ``encode_image_itm`` (then the vision model is not run).
    A batch of 1 image is shared by all questions.
    """
    attn_impl = getattr(model.text_encoder.config, "_attn_implementation", None)
    if attn_impl not in (None, "eager"):
        # BLIP's text attention is hand-written (always eager) but its masks follow this setting.
        raise InputError(f"BLIP Grad-CAM needs eager attention, the model was loaded with {attn_impl!r}.")
    module = cross_attention_module(model, block_num)
    input_ids, attention_mask = tokenize_questions(tokenizer, model.config, questions)
    batch = input_ids.shape[0]

    if image_embeds is None:
        if pixel_values is None:
            raise InputError("compute_gradcam needs pixel_values or image_embeds.")
        image_embeds = encode_image_itm(model, pixel_values)
    image_embeds = _broadcast_batch(image_embeds, batch)
    patches = image_embeds.shape[1] - 1
    grid = math.isqrt(patches)
    if grid * grid != patches:
        raise InputError(f"The image embedding has {patches} patches, not a square grid.")

    device, dtype = _model_device_dtype(model.text_encoder)
    capture = _AttentionCapture()
    handles = [module.register_forward_pre_hook(capture.before, with_kwargs=True),
               module.register_forward_hook(capture.after)]
    try:
        # Gradients are needed even when the caller runs under no_grad or inference_mode
        # (clone: tensors made under inference_mode cannot join autograd otherwise).
        with torch.inference_mode(False), torch.enable_grad():
            embeds = image_embeds.detach().to(device=device, dtype=dtype).clone()
            ids = input_ids.to(device).clone()
            mask = attention_mask.to(device).clone()
            image_mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=device)
            text_out = model.text_encoder(input_ids=ids, attention_mask=mask,
                                          encoder_hidden_states=embeds,
                                          encoder_attention_mask=image_mask)
            itm_logits = model.itm_head(text_out.last_hidden_state[:, 0, :])
            if capture.probs is None:
                raise RuntimeError(f"cross-attention of layer {block_num} did not run")
            probs = capture.probs
            (grads,) = torch.autograd.grad(itm_logits[:, 1].sum(), [probs])
    finally:
        for handle in handles:
            handle.remove()

    with torch.no_grad():
        cams = probs.detach()[..., 1:].float()
        grads = grads[..., 1:].float().clamp(min=0)
        token_mask = mask.view(batch, 1, -1, 1).to(cams.dtype)
        token_maps = (cams * grads * token_mask).mean(dim=1)  # [B, T, P]
        n = (attention_mask.sum(dim=1) - 2).tolist()
        question_maps = torch.stack([token_maps[b, 1:n[b] + 1].sum(dim=0) / n[b] for b in range(batch)])

    tok = text_tokenizer(tokenizer)
    tokens = tuple(
        tuple(tok.convert_ids_to_tokens(input_ids[b, : int(attention_mask[b].sum())].tolist()))
        for b in range(batch)
    )
    return GradcamResult(
        question_maps=question_maps.reshape(batch, grid, grid).cpu().numpy().astype(np.float32),
        token_maps=token_maps.reshape(batch, -1, grid, grid).cpu().numpy().astype(np.float32),
        itm_logits=itm_logits.detach().float().cpu().numpy(),
        input_ids=input_ids.numpy(),
        attention_mask=attention_mask.numpy(),
        tokens=tokens,
    )


def _broadcast_batch(image_embeds: torch.Tensor, batch: int) -> torch.Tensor:
    if not torch.is_tensor(image_embeds) or image_embeds.ndim != 3:
        raise InputError("image_embeds must be a tensor [B, 1 + G*G, D] (see encode_image_itm).")
    if image_embeds.shape[0] == batch:
        return image_embeds
    if image_embeds.shape[0] == 1:
        return image_embeds.expand(batch, -1, -1)
    raise InputError(f"{image_embeds.shape[0]} images for {batch} questions: give one image "
                     "per question, or a single image for all of them.")
