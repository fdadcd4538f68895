"""UnifiedQA-v2 Fusion-in-Decoder answer, as LAVIS PNP-VQA ``forward_qa`` computes it.

One context per caption (``num_captions_fid = 1``): the lower-cased question, UnifiedQA's
separator `` \\n `` (space, backslash, n, space: a literal backslash, not a newline), the
lower-cased caption and a full stop. Hugging Face's own ``T5ForConditionalGeneration`` encodes
each context separately; the encoder states of all contexts are then laid end to end as one
sequence [1, n*L, d] (attention masks likewise) and the decoder answers greedily from them.
LAVIS does the same by wrapping the encoder; we call the encoder ourselves and hand
``generate`` the concatenated ``encoder_outputs``.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from transformers.modeling_outputs import BaseModelOutput

from .errors import InputError

SEPARATOR = " \\n "  # 4 characters: space, backslash, 'n', space


def build_contexts(question: str, captions: Sequence[str]) -> list[str]:
    """One FiD context per caption: ``question.lower().strip() + " \\n " + caption.lower() + "."``."""
    if not isinstance(question, str) or not question.strip():
        raise InputError("The question is empty: type a question about the image.")
    if isinstance(captions, str) or not captions:
        raise InputError("No captions to answer from: generate captions first.")
    head = question.lower().strip() + SEPARATOR
    # LAVIS builds (caption.strip() + '. ').lower().strip(), i.e. the caption stripped plus '.'.
    return [head + str(caption).strip().lower() + "." for caption in captions]


def encode_contexts(model: Any, tokenizer: Any, contexts: Sequence[str]
                    ) -> tuple[BaseModelOutput, torch.Tensor, dict[str, torch.Tensor]]:
    """Encode each context separately and fuse: encoder states [1, n*L, d], mask [1, n*L].

    Also returns the tokenised contexts (``input_ids``/``attention_mask`` [n, L], on the CPU).
    """
    encoded = tokenizer(list(contexts), padding="longest", truncation=True, return_tensors="pt")
    device = next(model.parameters()).device
    input_ids = encoded["input_ids"].to(device)
    attention_mask = encoded["attention_mask"].to(device)
    with torch.no_grad():
        states = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    n, length, width = states.shape
    fused = BaseModelOutput(last_hidden_state=states.reshape(1, n * length, width))
    tokens = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
    return fused, attention_mask.reshape(1, n * length), tokens


def generate_answer_ids(model: Any, tokenizer: Any, question: str, captions: Sequence[str],
                        max_length: int = 20, num_beams: int = 1) -> torch.Tensor:
    """Answer token ids [1, <= max_length] (decoder start token first), greedy by default."""
    if max_length < 1 or num_beams < 1:
        raise InputError(f"max_length and num_beams must be at least 1 (got {max_length}, {num_beams}).")
    encoder_outputs, attention_mask, _ = encode_contexts(model, tokenizer, build_contexts(question, captions))
    with torch.no_grad():
        return model.generate(
            encoder_outputs=encoder_outputs,
            attention_mask=attention_mask,
            do_sample=False,
            num_beams=num_beams,
            min_length=0,
            max_length=max_length,
        )


def answer_from_captions(model: Any, tokenizer: Any, question: str, captions: Sequence[str],
                         max_length: int = 20, num_beams: int = 1) -> str:
    """The answer text. model: ``T5ForConditionalGeneration`` (UnifiedQA-v2); tokenizer: its own."""
    ids = generate_answer_ids(model, tokenizer, question, captions, max_length=max_length, num_beams=num_beams)
    return tokenizer.decode(ids[0], skip_special_tokens=True)
