"""Which of the project's classes a question (or its answer) is about.

Whole-word, case-insensitive matching of class names against the words of the question, then of
the answer, with simple plural forms (:func:`engine.vqa.words.base_forms`: dogs -> dog, boxes ->
box, people -> person, mice -> mouse, knives -> knife, buses -> bus, ...) on both sides, so a
class named in the plural ("skis") matches "ski" too. Possessives match their noun ("the dog's
tail" names dog). No synonyms: "man" does not name "person".
"""

from __future__ import annotations

from collections.abc import Sequence

from ..vqa.words import base_forms, words

__all__ = ["match_class", "class_mentions"]


def _phrase_at(text_forms: list[frozenset[str]], i: int, name_forms: list[frozenset[str]]) -> bool:
    return all(text_forms[i + k] & f for k, f in enumerate(name_forms))


def class_mentions(text: str, classes: Sequence[str]) -> list[tuple[int, int, int]]:
    """Where ``text`` names each class: ``(word_position, class_words, class_index)`` per mention,
    sorted by more class words first, then earlier position, then class order (a class named
    twice is listed twice). A class whose name has no word (blank, punctuation) never matches."""
    text_forms = [base_forms(w) for w in words(text)]
    out = []
    for ci, name in enumerate(classes):
        name_forms = [base_forms(w) for w in words(name)]
        n = len(name_forms)
        if n == 0:
            continue
        for i in range(len(text_forms) - n + 1):
            if _phrase_at(text_forms, i, name_forms):
                out.append((i, n, ci))
    out.sort(key=lambda m: (-m[1], m[0], m[2]))
    return out


def match_class(question: str, answer: str | None, classes: Sequence[str]) -> str | None:
    """The class ``question`` names, else the one ``answer`` names, else None.

    question, answer: text as typed / as answered (answer may be None). classes: the project's
    class names. Among several classes named in the same text, the one with the most words wins
    ("traffic light" over "light", "hot dog" over "dog"), then the one named first, then the
    first in ``classes``. Returns that class's name exactly as in ``classes``; None when neither
    text names one (the caller then keeps the class used last, never the raw answer).
    """
    for text in (question, answer):
        if not text:
            continue
        found = class_mentions(text, classes)
        if found:
            return classes[found[0][2]]
    return None
