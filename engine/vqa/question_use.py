"""How much of a question the models read: the tokenizers cut long questions, and the user is told.

BLIP ITM reads at most 35 tokens ([ENC], 33 word pieces, [SEP]; LAVIS' ``max_txt_len``), so the
heat map, its points and the mask follow only the question's first 33 word pieces (about 150 to
200 characters of English). UnifiedQA reads each "question \\n caption" context up to its
tokenizer's ``model_max_length`` (512): a question that fills it leaves no room for the captions.
:func:`question_use` says which part was used, as text cut from the question itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .blip_text import ITM_MAX_TEXT_TOKENS, text_tokenizer
from .question import blip_question, normalise_question, qa_context_head

__all__ = ["QuestionUse", "question_use"]

QA_ROOM_FOR_CAPTION = 16  # tokens a caption needs at least for its context to mean something


@dataclass(frozen=True)
class QuestionUse:
    """question: as given (blanks collapsed); used: the part the heat map followed (the whole
    question when it fits, else its first word pieces, without the '?' BLIP strips); word_pieces / heat_limit: the question's BLIP word pieces and
    how many of them the heat-map model reads; answer_cut: the answer model could not read the
    question with a caption (its tokens, and its limit)."""

    question: str
    used: str
    word_pieces: int
    heat_limit: int
    answer_tokens: int = 0
    answer_limit: int = 0

    @property
    def heat_truncated(self) -> bool:
        return self.word_pieces > self.heat_limit

    @property
    def answer_truncated(self) -> bool:
        return bool(self.answer_limit) and self.answer_tokens + QA_ROOM_FOR_CAPTION > self.answer_limit

    @property
    def truncated(self) -> bool:
        return self.heat_truncated or self.answer_truncated

    def note(self) -> str:
        """A message for the user, or "" when the whole question was read."""
        parts = []
        if self.heat_truncated:
            parts.append(f"The question is longer than the heat-map model reads ({self.word_pieces} word pieces; "
                         f"it reads {self.heat_limit}): the heat map, its points and the mask follow only "
                         f"\"{self.used}\".")
        if self.answer_truncated:
            parts.append(f"The question fills the answer model's {self.answer_limit} tokens, so it read the question "
                         f"with little or nothing of each caption.")
        elif parts:
            parts.append("The answer model read the whole question.")
        if parts:
            parts.append("Ask a shorter question to use all of it.")
        return " ".join(parts)


def question_use(itm_tokenizer: Any, question: str, qa_tokenizer: Any = None) -> QuestionUse:
    """Which part of ``question`` the heat map follows (BLIP's tokenizer, ``itm_tokenizer`` or a
    BlipProcessor) and whether UnifiedQA (``qa_tokenizer``, optional) can read it with a caption
    (its tokens counted on the question as each context starts, ``qa_context_head``).
    """
    text = normalise_question(question)
    cleaned = blip_question(text)
    tok = text_tokenizer(itm_tokenizer)
    pieces_limit = ITM_MAX_TEXT_TOKENS - 2  # [ENC] (in place of [CLS]) and [SEP]
    try:
        enc = tok(cleaned, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        n = len(enc["input_ids"])
        used = text if n <= pieces_limit else cleaned[:int(offsets[pieces_limit - 1][1])].rstrip()
    except (NotImplementedError, TypeError, ValueError, KeyError):  # a slow tokenizer: no offsets
        ids = tok(cleaned, add_special_tokens=False)["input_ids"]
        n = len(ids)
        used = text if n <= pieces_limit else tok.decode(ids[:pieces_limit]).strip()
    answer_tokens = answer_limit = 0
    if qa_tokenizer is not None:
        limit = int(getattr(qa_tokenizer, "model_max_length", 0) or 0)
        if 0 < limit < 1_000_000:  # transformers' "no limit" is a huge number
            answer_tokens = len(qa_tokenizer(qa_context_head(text))["input_ids"])
            answer_limit = limit
    return QuestionUse(question=text, used=used, word_pieces=n, heat_limit=pieces_limit,
                       answer_tokens=answer_tokens, answer_limit=answer_limit)
