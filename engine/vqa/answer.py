"""UnifiedQA-v2 Fusion-in-Decoder answer, as LAVIS PNP-VQA ``forward_qa`` computes it.

One context per caption (``num_captions_fid = 1``): the lower-cased question, UnifiedQA's
separator `` \\n `` (space, backslash, n, space: a literal backslash, not a newline), the
lower-cased caption and a full stop. Hugging Face's own ``T5ForConditionalGeneration`` encodes
each context separately; the encoder states of all contexts are then laid end to end as one
sequence and the decoder answers greedily from them. LAVIS does the same by wrapping the
encoder; we call the encoder ourselves and hand ``generate`` the concatenated
``encoder_outputs``.

One difference in layout, none in the answer: LAVIS pads every context to the longest and
keeps the padding in the fused sequence [1, n*L, d], masked. We encode contexts of similar
length together (sorted, in chunks, each padded only to its own longest) and fuse only the
real tokens, [1, sum of lengths, d]. T5's encoder never lets a real token see padding, and
its cross-attention has no position bias, so the masked positions contributed exactly
nothing: the answer tokens are the same (the fixture test checks it), and the encoder and
every decoding step skip the padding (real captions differ in length by up to ~2x).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from transformers.modeling_outputs import BaseModelOutput

from ..errors import InputError
from .question import qa_context_head


def build_contexts(question: str, captions: Sequence[str]) -> list[str]:
    """One FiD context per caption: :func:`~engine.vqa.question.qa_context_head` (the lower-cased
    question and `` \\n ``), then the lower-cased caption and a full stop."""
    if not isinstance(question, str) or not question.strip():
        raise InputError("The question is empty: type a question about the image.")
    if isinstance(captions, str) or not captions:
        raise InputError("No captions to answer from: generate captions first.")
    head = qa_context_head(question)
    # LAVIS builds (caption.strip() + '. ').lower().strip(), i.e. the caption stripped plus '.'.
    return [head + str(caption).strip().lower() + "." for caption in captions]


CONTEXTS_PER_CHUNK = 32  # contexts encoded together (sorted by length, padded to their longest)


def encode_contexts(model: Any, tokenizer: Any, contexts: Sequence[str]
                    ) -> tuple[BaseModelOutput, torch.Tensor, dict[str, torch.Tensor]]:
    """Encode each context separately and fuse their real tokens: states [1, T, d], mask [1, T].

    T is the total number of real (non-padding) tokens, contexts in the given order. Also
    returns the contexts tokenised together as LAVIS does (``input_ids``/``attention_mask``
    [n, L], padded to the longest, on the CPU).
    """
    encoded = tokenizer(list(contexts), padding="longest", truncation=True, return_tensors="pt")
    input_ids, attention_mask = encoded["input_ids"], encoded["attention_mask"]
    lengths = attention_mask.sum(dim=1)
    device = next(model.parameters()).device
    encoder = model.get_encoder()
    pieces: dict[int, torch.Tensor] = {}  # context index -> its real tokens' states
    order = torch.argsort(lengths, stable=True).tolist()
    with torch.no_grad():
        for start in range(0, len(order), CONTEXTS_PER_CHUNK):
            chunk = order[start:start + CONTEXTS_PER_CHUNK]
            width = int(lengths[chunk].max())
            states = encoder(input_ids=input_ids[chunk, :width].to(device),
                             attention_mask=attention_mask[chunk, :width].to(device)).last_hidden_state
            for row, index in enumerate(chunk):
                pieces[index] = states[row, :int(lengths[index])]
    fused_states = torch.cat([pieces[i] for i in range(len(order))], dim=0).unsqueeze(0)
    fused_mask = torch.ones(fused_states.shape[:2], dtype=attention_mask.dtype, device=device)
    tokens = {"input_ids": input_ids, "attention_mask": attention_mask}
    return BaseModelOutput(last_hidden_state=fused_states), fused_mask, tokens


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
