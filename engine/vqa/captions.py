"""Question-guided caption sampling, as LAVIS PNP-VQA ``forward_cap`` does it.

Each caption is written by Hugging Face's own BLIP caption decoder
(``BlipForConditionalGeneration.text_decoder``), cross-attending to only ``num_patches`` image
patches drawn, without replacement, with probability proportional to a heat map (the question's
Grad-CAM or the mask-fused map). Captions are kept only when they are not a substring of one
already kept; rounds repeat until ``num_captions`` are kept.

Shapes: the caption vision output is [1, 1 + G*G, D] (CLS first); the sampling map is [G, G]
(row-major grid cells, same layout as the Grad-CAM) or flat [G*G].

Two things are done differently from a plain ``generate(do_sample=True)``, with the same
distribution of captions:

- the next token is drawn from the ``top_k`` best scores only (:class:`TopKSampler`), where
  ``generate`` draws from all 30,524 words after masking the rest: on a CPU its ``multinomial``
  over the whole vocabulary cost ~45 ms per step at 50 captions, more than the decoder layers;
- the decoder's cross-attention keys and values are projected once for all of the image's
  patches (:func:`projected_patches`) and gathered per caption, instead of once per sampled
  patch and caption (20 x 100 rows against 577).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from .blip_text import dec_token_id, text_tokenizer
from ..errors import InputError
from ..results import CaptionsResult
from ..runtime.accelerate import projected_patches

CAPTION_PROMPT = "a picture of "

ProgressFn = Callable[[int, int], None]  # (round_index starting at 0, captions kept so far)
CancelFn = Callable[[], bool]


def encode_image_caption(model: Any, pixel_values: torch.Tensor) -> torch.Tensor:
    """Caption vision encoder output [B, 1 + G*G, D] (no autograd). Cache it per image."""
    if not torch.is_tensor(pixel_values) or pixel_values.ndim != 4:
        raise InputError("pixel_values must be a tensor [B, 3, S, S] (see gradcam.preprocess_image).")
    param = next(model.vision_model.parameters())
    with torch.no_grad():
        out = model.vision_model(pixel_values=pixel_values.to(device=param.device, dtype=param.dtype))
    return out.last_hidden_state


def sampling_weights(sampling_map: np.ndarray | torch.Tensor, num_cells: int) -> torch.Tensor:
    """A heat map -> flat float32 weights [G*G] for ``torch.multinomial``; all-zero -> uniform."""
    if torch.is_tensor(sampling_map):
        weights = sampling_map.detach().float().cpu().reshape(-1)
    else:
        weights = torch.from_numpy(np.array(sampling_map, dtype=np.float32)).reshape(-1)
    if weights.numel() != num_cells:
        raise InputError(f"The sampling map has {weights.numel()} cells but the image has "
                         f"{num_cells} patches.")
    if not torch.isfinite(weights).all():
        raise InputError("The sampling map holds NaN or infinite values.")
    if (weights < 0).any():
        raise InputError("The sampling map has negative values; patch weights must be >= 0.")
    if weights.sum() <= 0:
        return torch.ones(num_cells, dtype=torch.float32)
    return weights


def sample_patch_ids(weights: torch.Tensor, count: int, num_patches: int,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """[count, k] sorted indices into the vision output (CLS skipped, so cell + 1).

    Each row draws ``k = min(num_patches, nonzero cells)`` distinct cells with probability
    proportional to ``weights`` (LAVIS would fail outright when fewer cells are nonzero).
    """
    k = min(num_patches, int((weights > 0).sum()))
    rows = weights.unsqueeze(0).expand(count, -1)
    ids = torch.multinomial(rows, k, replacement=False, generator=generator) + 1
    return ids.sort(dim=1).values


class TopKSampler(LogitsProcessor):
    """Draws each next token from the ``top_k`` best scores (then ``top_p``), like Hugging Face's
    top-k and top-p warpers followed by ``multinomial``, and returns scores whose arg-max is
    the drawn token, so that ``generate`` runs greedily (``do_sample=False``) on them.

    It comes after ``generate``'s own processors (min length, repetition penalty), so it
    samples from the scores they leave. Random numbers come from torch's global generator
    (seed it as :func:`generate_captions` does). Where the k-th best score is tied, the
    warper would keep every tied word; this keeps exactly ``top_k`` (ties are measure-zero
    with real scores).
    """

    def __init__(self, top_k: int, top_p: float = 1.0) -> None:
        if top_k < 1 or not 0.0 < top_p <= 1.0:
            raise InputError(f"Sampling needs top_k >= 1 and 0 < top_p <= 1 (got {top_k}, {top_p}).")
        self.top_k = int(top_k)
        self.top_p = float(top_p)

    def candidates(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, V]`` scores -> (probabilities ``[B, k]``, word ids ``[B, k]``), best first."""
        values, ids = scores.topk(min(self.top_k, scores.shape[-1]), dim=-1)
        probs = torch.softmax(values.float(), dim=-1)
        if self.top_p < 1.0:
            # As TopPLogitsWarper: drop the words whose ascending cumulative probability is at
            # most 1 - top_p, always keeping the best one.
            ascending = probs.flip(-1)
            drop = (ascending.cumsum(-1) <= 1.0 - self.top_p).flip(-1)
            drop[:, 0] = False
            probs = probs.masked_fill(drop, 0.0)
        return probs, ids

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probs, ids = self.candidates(scores)
        probs = torch.nan_to_num(probs, nan=0.0)
        probs[:, 0] = torch.where(probs.sum(-1) > 0, probs[:, 0], 1.0)  # every score -inf: the best id
        chosen = ids.gather(-1, torch.multinomial(probs, 1))
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(-1, chosen, 0.0)


class _EveryStep(StoppingCriteria):
    """Runs after each decoding step: reports how far the call is (``on_step(fraction)``) and
    stops ``generate`` once ``cancel()`` says True (remembered in ``fired``)."""

    def __init__(self, cancel: CancelFn | None, on_step: Callable[[float], None] | None,
                 prompt_length: int, max_length: int) -> None:
        self.cancel = cancel
        self.on_step = on_step
        self.prompt_length = prompt_length
        self.steps = max(1, max_length - prompt_length)
        self.fired = False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        if self.on_step is not None:
            self.on_step(min(1.0, (input_ids.shape[1] - self.prompt_length) / self.steps))
        if self.cancel is not None:
            self.fired = self.fired or bool(self.cancel())
        return torch.full((input_ids.shape[0],), self.fired, dtype=torch.bool, device=input_ids.device)


def strip_prompt(text: str, prompt: str) -> str:
    """Decoded text minus the prompt (LAVIS slices ``len(prompt)`` characters off), stripped."""
    lowered = text.lower()
    for head in (prompt, prompt.strip()):
        if head and lowered.startswith(head.lower()):
            return text[len(head):].strip()
    return text.strip()


def add_unique_captions(kept: list[str], new: Iterable[str], limit: int) -> int:
    """Append each new caption unless it is a substring of one already kept (LAVIS rule).

    Empty captions are dropped (LAVIS would keep one if it came first). Stops at ``limit``.
    Returns how many were added. ``kept`` is modified in place.
    """
    added = 0
    for caption in new:
        if len(kept) >= limit:
            break
        if not caption or any(caption in old for old in kept):
            continue
        kept.append(caption)
        added += 1
    return added


MIN_TOP_UP = 8  # captions per call, at least, once a round is topping up


def call_size(batch_size: int, num_captions: int, sampled: int, missing: int) -> int:
    """Captions to sample in the next ``generate`` call of a round.

    A round samples up to ``num_captions`` (as LAVIS), at most ``batch_size`` per call. The
    first call of the first round asks for everything missing; when a later call only tops
    up a few lost to duplicates, it asks for twice the missing number (at least
    ``MIN_TOP_UP``) rather than a whole batch: LAVIS would sample a full round and discard
    the surplus, which draws captions from the same distribution at many times the cost.
    """
    left_in_round = num_captions - sampled
    top_up = max(2 * missing, MIN_TOP_UP)
    return max(1, min(batch_size, left_in_round, top_up if missing < num_captions else left_in_round))


def _prompt_ids(tokenizer: Any, model_config: Any, prompt: str, device: torch.device) -> torch.Tensor:
    # LAVIS: tokenise the prompt, [CLS] -> [DEC], drop the trailing [SEP].
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"][:, :-1].clone()
    ids[:, 0] = dec_token_id(model_config)
    return ids.to(device)


def generate_captions(
    model: Any,
    tokenizer: Any,
    image_embeds: torch.Tensor,
    sampling_map: np.ndarray | torch.Tensor,
    num_captions: int = 100,
    num_patches: int = 20,
    top_k: int = 50,
    top_p: float = 1.0,
    min_length: int = 10,
    max_length: int = 20,
    repetition_penalty: float = 1.0,
    prompt: str = CAPTION_PROMPT,
    batch_size: int = 25,
    seed: int | None = None,
    max_rounds: int = 50,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    step_progress: Callable[[float], None] | None = None,
) -> CaptionsResult:
    """Sample up to ``num_captions`` distinct question-guided captions of one image.

    model: ``BlipForConditionalGeneration``; tokenizer: its tokenizer or ``BlipProcessor``.
    image_embeds: [1, 1 + G*G, D] (or [1 + G*G, D]) from ``encode_image_caption``.
    sampling_map: [G, G] or [G*G], >= 0 (all zero -> uniform).
    min_length / max_length count the prompt's tokens, as in LAVIS and ``generate``.
    A round samples up to ``num_captions`` captions (as LAVIS), at most ``batch_size`` per
    ``generate`` call (see :func:`call_size` for top-ups); it ends early once enough are kept.
    ``max_rounds`` bounds the loop (LAVIS loops forever when the model keeps repeating itself):
    then ``complete`` is False. ``progress(round, kept)`` is called after every ``generate``
    call; ``cancel()`` is checked before each call and after every decoding step, and stops with
    ``cancelled=True``, keeping the captions already finished (a call cut short adds none).
    ``step_progress(expected)``, when given, is called after every decoding step with the
    number of captions expected once the current call ends (duplicates not yet removed), so
    that a single long call still shows progress. ``seed`` makes a run reproducible (same seed,
    batch size and device); the global torch RNG is restored afterwards.
    """
    start = time.perf_counter()
    _check_settings(num_captions, num_patches, top_k, top_p, min_length, max_length, batch_size, max_rounds)
    tok = text_tokenizer(tokenizer)
    embeds = image_embeds if image_embeds.ndim == 3 else image_embeds.unsqueeze(0)
    if embeds.ndim != 3 or embeds.shape[0] != 1:
        raise InputError("image_embeds must be one image's vision output [1, 1 + G*G, D].")
    decoder = model.text_decoder
    param = next(decoder.parameters())
    embeds = embeds.to(device=param.device, dtype=param.dtype)
    weights = sampling_weights(sampling_map, embeds.shape[1] - 1).to(param.device)
    prompt_ids = _prompt_ids(tok, model.config, prompt, param.device)
    if prompt_ids.shape[1] >= max_length:
        raise InputError(f"The caption prompt {prompt!r} already has {prompt_ids.shape[1]} tokens; "
                         f"max_length {max_length} leaves no room for a caption.")
    text_config = model.config.text_config

    kept: list[str] = []
    rounds = 0
    cancelled = False
    sampler = LogitsProcessorList([TopKSampler(top_k, top_p)])
    call = {"kept": 0, "count": 0}

    def on_step(fraction: float) -> None:  # captions expected by the end of this call
        step_progress(call["kept"] + fraction * call["count"])

    stop = _EveryStep(cancel, on_step if step_progress is not None else None, prompt_ids.shape[1], max_length)
    with _seeded_rng(seed, param.device), torch.no_grad(), projected_patches(decoder, embeds[0]) as patches:
        while len(kept) < num_captions and rounds < max_rounds and not cancelled:
            sampled = 0
            while sampled < num_captions and len(kept) < num_captions:
                if cancel is not None and cancel():
                    cancelled = True
                    break
                count = call_size(batch_size, num_captions, sampled, num_captions - len(kept))
                call.update(kept=len(kept), count=count)
                patch_ids = sample_patch_ids(weights, count, num_patches)
                hidden = embeds[0][patch_ids]  # [count, k, D]
                patches["ids"] = patch_ids
                ids = prompt_ids.expand(count, -1)
                out = decoder.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    encoder_hidden_states=hidden,
                    encoder_attention_mask=torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device),
                    do_sample=False,  # TopKSampler draws; generate takes its pick
                    logits_processor=sampler,
                    min_length=min_length,
                    max_length=max_length,
                    repetition_penalty=repetition_penalty,
                    num_return_sequences=1,
                    num_beams=1,
                    eos_token_id=text_config.sep_token_id,
                    pad_token_id=text_config.pad_token_id,
                    stopping_criteria=StoppingCriteriaList([stop]),
                )
                if stop.fired:  # cut short: these captions are unfinished
                    cancelled = True
                    break
                # Position 0 is [DEC], never text; special tokens are dropped as in LAVIS.
                texts = tok.batch_decode(out[:, 1:], skip_special_tokens=True)
                add_unique_captions(kept, (strip_prompt(t, prompt) for t in texts), num_captions)
                sampled += count
                if progress is not None:
                    progress(rounds, len(kept))
            rounds += 1
    return CaptionsResult(
        captions=tuple(kept),
        rounds=rounds,
        complete=len(kept) >= num_captions,
        cancelled=cancelled,
        seconds=time.perf_counter() - start,
    )


@contextmanager
def _seeded_rng(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed torch's global RNG (``generate`` samples from it) and restore it afterwards."""
    if seed is None:
        yield
        return
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _check_settings(num_captions: int, num_patches: int, top_k: int, top_p: float, min_length: int,
                    max_length: int, batch_size: int, max_rounds: int) -> None:
    if num_captions < 1:
        raise InputError(f"The number of captions must be at least 1, got {num_captions}.")
    if num_patches < 1:
        raise InputError(f"The number of patches per caption must be at least 1, got {num_patches}.")
    if top_k < 1 or not 0.0 < top_p <= 1.0:
        raise InputError(f"Sampling needs top_k >= 1 and 0 < top_p <= 1 (got {top_k}, {top_p}).")
    if min_length < 0 or max_length < 1 or min_length > max_length:
        raise InputError(f"Caption lengths must satisfy 0 <= min <= max (got {min_length}, {max_length}).")
    if batch_size < 1 or max_rounds < 1:
        raise InputError(f"batch_size and max_rounds must be at least 1 (got {batch_size}, {max_rounds}).")


__all__: Sequence[str] = (
    "CAPTION_PROMPT", "encode_image_caption", "generate_captions", "sampling_weights",
    "sample_patch_ids", "strip_prompt", "add_unique_captions", "TopKSampler", "projected_patches", "call_size",
)
