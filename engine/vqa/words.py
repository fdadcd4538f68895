"""English words as QMask's question rules read them: tokens, number words, plural forms.

Small and rule-based on purpose: questions and UnifiedQA's answers are short, and a wrong guess
costs a person one click (a class picked by hand, a review reason read and dismissed).
"""

from __future__ import annotations

import re

__all__ = ["words", "base_forms", "is_plural_noun", "NUMBER_WORDS", "IRREGULAR_PLURALS"]

# Cardinal words and their values: zero to twenty (UnifiedQA answers counts with these or digits).
NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}

# Plurals no suffix rule gives (plural -> singular); unchanged plurals (sheep) map to themselves.
IRREGULAR_PLURALS = {
    "people": "person", "persons": "person", "men": "man", "women": "woman", "children": "child",
    "mice": "mouse", "geese": "goose", "teeth": "tooth", "feet": "foot", "oxen": "ox", "dice": "die",
    "knives": "knife", "wives": "wife", "lives": "life", "leaves": "leaf", "wolves": "wolf",
    "halves": "half", "shelves": "shelf", "loaves": "loaf", "calves": "calf", "scarves": "scarf",
    "buses": "bus", "busses": "bus", "cacti": "cactus", "sheep": "sheep", "deer": "deer", "fish": "fish",
    "police": "police", "cattle": "cattle",
}
# Words ending in s that are not plurals (after a determiner, where is_plural_noun is asked).
_NOT_PLURAL = frozenset("this his its is was has does yes us as gas bus lens news chess tennis series species "
                        "glass grass dress mass bass class boss cross less".split())
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]*)?")


def words(text: str) -> list[str]:
    """Lower-case word tokens of ``text`` in order: runs of letters and digits; a possessive
    ``'s`` or a trailing ``'`` is cut off (``dog's`` -> ``dog``, ``dogs'`` -> ``dogs``), other
    apostrophes kept (``isn't``); hyphens and punctuation split (``t-shirt`` -> ``t``, ``shirt``)."""
    out = []
    for tok in _TOKEN.findall(str(text).lower().replace("\u2019", "'")):
        if tok.endswith("'s"):
            tok = tok[:-2]
        tok = tok.rstrip("'")
        if tok:
            out.append(tok)
    return out


def base_forms(word: str) -> frozenset[str]:
    """The forms ``word`` (lower case) may be the plural of, itself included.

    Two words are the same noun when their forms meet (``boxes`` {boxes, boxe, box} and ``box``
    {box}). Irregular plurals map by :data:`IRREGULAR_PLURALS`; otherwise a word ending in ``s``
    (not ``ss``) also gives: without ``s``; ``-es`` without ``es``; ``-ies`` as ``-y`` and ``-ie``;
    ``-ves`` as ``-f`` and ``-fe``. Extra forms are harmless: they only ever meet a real word
    that is that word's singular.
    """
    w = word.lower()
    forms = {w}
    if w in IRREGULAR_PLURALS:
        forms.add(IRREGULAR_PLURALS[w])
        return frozenset(forms)
    if len(w) < 3 or not w.endswith("s") or w.endswith("ss"):
        return frozenset(forms)
    forms.add(w[:-1])
    if w.endswith("es"):
        forms.add(w[:-2])
    if w.endswith("ies"):
        forms.update((w[:-3] + "y", w[:-3] + "ie"))
    if w.endswith("ves"):
        forms.update((w[:-3] + "f", w[:-3] + "fe"))
    return frozenset(forms)


def is_plural_noun(word: str) -> bool:
    """Whether ``word`` (a token of :func:`words`) reads as a plural noun: an irregular plural
    that differs from its singular (``men``, ``mice``; not ``sheep``), or a word of 4+ letters
    ending in ``s`` that is not ``-ss``/``-us`` nor a known non-plural (``this``, ``bus``,
    ``tennis``). A guess for the word after a determiner; digits are never plural nouns."""
    w = word.lower()
    if w in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[w] != w
    return (len(w) >= 4 and w.isalpha() and w.endswith("s") and not w.endswith(("ss", "us", "'s"))
            and w not in _NOT_PLURAL)
