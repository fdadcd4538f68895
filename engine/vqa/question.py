"""A typed question as QMask reads it: the one place questions are cleaned.

Two forms, different on purpose:

- :func:`normalise_question` (and :func:`clean_question_text`, which also refuses an empty
  question): runs of whitespace become one space; case and '?' are kept. This is the text every
  stage gets and the key a project matches questions by (case kept: answers may differ).
- :func:`blip_question`: what BLIP's ITM reads, '?' stripped from both ends as LAVIS does; only
  the Grad-CAM tokenisation uses it, so the stored question keeps its '?'.

And :func:`qa_context_head`, how each of UnifiedQA's contexts starts (lower-cased, then the
separator): the answer (``engine.vqa.answer``) builds its contexts with it and
``engine.vqa.question_use`` measures it, so the two cannot disagree.
"""

from __future__ import annotations

from ..errors import InputError

__all__ = ["normalise_question", "clean_question_text", "blip_question", "qa_context_head", "SEPARATOR"]

SEPARATOR = " \\n "  # UnifiedQA's, 4 characters: space, backslash, 'n', space (not a newline)


def normalise_question(question: str) -> str:
    """The key a question is matched by: whitespace collapsed, case kept (answers may differ)."""
    return " ".join(str(question).split())


def clean_question_text(question: str) -> str:
    """The question as the chain gets it (:func:`normalise_question`); InputError when it is
    not text or holds nothing but blanks and '?'."""
    if not isinstance(question, str):
        raise InputError("The question must be text.")
    text = normalise_question(question)
    if not text.strip("?").strip():
        raise InputError("The question is empty: type a question about the image.")
    return text


def blip_question(question: str) -> str:
    """The question as BLIP ITM reads it: surrounding whitespace and '?' stripped from both ends.

    LAVIS does ``question.strip('?')``; stripping whitespace first only differs for questions
    with trailing blanks, where LAVIS would keep the '?' (an accident, not a choice).
    """
    if not isinstance(question, str):
        raise InputError(f"A question must be text, not {type(question).__name__}.")
    cleaned = question.strip().strip("?").strip()
    if not cleaned:
        raise InputError("The question is empty: type a question about the image.")
    return cleaned


def qa_context_head(question: str) -> str:
    """The start of every UnifiedQA context (LAVIS PNP-VQA): ``question.lower().strip() + SEPARATOR``;
    the caption and a full stop follow it (``engine.vqa.answer.build_contexts``)."""
    return question.lower().strip() + SEPARATOR
