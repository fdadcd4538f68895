"""What a question asks for and what an answer says about how many: counts, "none", plurals.

Pure text rules on the question as typed and UnifiedQA's short answer (lower-cased word tokens,
:func:`engine.vqa.words.words`); no model. They decide how many objects a question proposes and
which review reasons an object gets (:mod:`engine.annotation.review_reasons`), so each errs
towards "don't know": :func:`answer_count` returns None for anything vague.
"""

from __future__ import annotations

import re

from .words import NUMBER_WORDS, is_plural_noun, words

__all__ = ["count_question", "answer_count", "negative_answer", "plural_question", "NEGATIVE_WORDS"]

# An answer starting with one of these says nothing is there (zero and 0 count: "0 or 1" is not "none").
NEGATIVE_WORDS = frozenset({"none", "nothing", "nobody", "noone", "nowhere", "neither", "nope"})
# After a leading "no", these words keep it a plain "no" ("no one", "no, it is not", "no it isn't").
_NO_FOLLOWERS = frozenset({"one", "body", "more", "it", "its", "there", "they", "he", "she", "i", "not", "nothing",
                           "none", "way", "isn't", "aren't", "wasn't", "weren't", "doesn't", "don't"})
# Words after "there is / are / was / were" that deny ("there are none", "there isn't any").
_THERE_DENIALS = frozenset({"no", "none", "nothing", "nobody", "not", "isn't", "aren't", "wasn't", "weren't"})
_BE = frozenset({"is", "are", "was", "were"})
# Words after which "count" is the verb of a counting request ("count the cars", "count all dogs").
_COUNT_OBJECTS = frozenset({"the", "all", "these", "those", "every", "each", "of", "how", "them"})
# Determiners a noun phrase starts with; a plural noun in it makes the question plural.
_DETERMINERS = frozenset({"the", "these", "those", "some", "any", "my", "your", "his", "her", "our", "their",
                          "its", "many", "several", "few", "other"} | (set(NUMBER_WORDS) - {"zero", "one"}))
# Words that say "several" by themselves.
_QUANTIFIERS = frozenset({"all", "every", "each", "both", "several", "multiple", "various"})
# Words that end a noun phrase (prepositions, verbs, conjunctions): the plural noun must come before.
_PHRASE_ENDS = frozenset({"in", "on", "at", "of", "with", "by", "for", "to", "from", "near", "under", "over",
                          "behind", "beside", "next", "and", "or", "is", "are", "was", "were", "do", "does",
                          "doing", "holding", "wearing", "that", "which", "who", "what", "where", "have", "has"})
# Pronouns after "are" that make it singular or not about objects ("what are you doing?").
_ARE_SUBJECTS_SINGULAR = frozenset({"you", "we", "i"})
_DIGITS = re.compile(r"(?<=\d),(?=\d{3}\b)")  # thousands separators: "1,000" -> "1000"


def count_question(question: str) -> bool:
    """Whether ``question`` asks to count: contains ``how many``, ``number of``, or the verb
    ``count`` (first word, or followed by the/all/these/those/every/each/of/how/them or a plural
    noun: "count the cars", "can you count dogs", "what is the count of people").
    "how much" (an amount) and "what number is on the bus" (a label) are not counts."""
    toks = words(question)
    for i, tok in enumerate(toks):
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if (tok, nxt) in (("how", "many"), ("number", "of"), ("numbers", "of")):
            return True
        if tok == "count" and (i == 0 or nxt in _COUNT_OBJECTS or is_plural_noun(nxt)):
            return True
    return False


def _negative_phrase(toks: list[str], raw: str) -> bool:
    if not toks:
        return False
    first = toks[0]
    if first in NEGATIVE_WORDS:
        return True
    if first == "no":
        if len(toks) == 1 or re.match(r"\s*no\s*[,.;:!]", raw.lower()):
            return True
        return toks[1] in _NO_FOLLOWERS or any(is_plural_noun(t) for t in toks[1:3])
    if first == "there" and len(toks) >= 3 and toks[1] in _BE:
        return toks[2] in _THERE_DENIALS
    if first == "there" and len(toks) >= 2:  # "there's none": the tokens drop the 's
        return toks[1] in _THERE_DENIALS
    return first == "not" and len(toks) >= 2 and toks[1] in {"any", "one", "a"}


def _numbers(toks: list[str]) -> set[int]:
    vals = set()
    for t in toks:
        if t.isdigit() and t.isascii():
            vals.add(int(t))
        elif t in NUMBER_WORDS:
            vals.add(NUMBER_WORDS[t])
    return vals


def answer_count(answer: str) -> int | None:
    """The number ``answer`` gives, or None when it gives none or is unclear.

    - a negative answer (:func:`negative_answer`'s phrases: "no", "none", "nothing", ...) -> 0;
    - else the one cardinal it holds: ASCII digits ("3", "3 dogs", "1,000") or a number word
      zero..twenty ("three"); the same value twice ("2, two") is still that value;
    - None for two different numbers ("2 or 3", "twenty one", "2.5"), ordinals ("first", "1st"),
      vague amounts ("a couple", "several", "many", "a few", "a dozen") and articles ("a dog").
    """
    raw = str(answer)
    toks = words(_DIGITS.sub("", raw))
    if _negative_phrase(toks, raw):
        return 0
    vals = _numbers(toks)
    return vals.pop() if len(vals) == 1 else None


def negative_answer(answer: str) -> bool:
    """Whether ``answer`` says nothing is there.

    True for an answer that starts with none / nothing / nobody / no one / nowhere / neither /
    nope; a "no" alone, before punctuation ("no, it is a cat"), before a pronoun or
    "not" ("no it isn't"), or before a plural noun ("no dogs", "no red cars"); "there is/are
    no / none / nothing / not ...", "there isn't any"; "not any"; and any answer whose
    only number is 0 ("0", "zero", "0 dogs"). "no parking" and "no entry" (sign texts), "0 or 1"
    are not.
    """
    raw = str(answer)
    toks = words(_DIGITS.sub("", raw))
    return _negative_phrase(toks, raw) or _numbers(toks) == {0}


def plural_question(question: str) -> bool:
    """Whether ``question`` asks about several objects (True) or one (False); a heuristic.

    True when it is a :func:`count_question`; or holds a quantifier (all, every, each, both,
    several, multiple, various); or a determiner (the, these, those, some, any, possessives,
    many, several, few, two..twenty) or a possessive ("the man's") opens a noun phrase holding a
    plural noun before its first preposition or verb ("where are the dogs", "the red cars",
    "the man's shoes"); or the verb is "are"/"were" ("what are they doing", "where are my
    keys"), unless its subject is you / we / I. Otherwise False ("what is the man holding?",
    "is there a dog?", "where is the bus?").
    """
    if count_question(question):
        return True
    raw_toks = re.findall(r"[^\W_]+(?:['\u2019][^\W_]*)?", str(question).lower())
    possessive = [t.endswith(("'s", "\u2019s")) for t in raw_toks]
    toks = words(question)
    if len(toks) != len(raw_toks):  # a token that was only an apostrophe: fall back to no possessives
        possessive = [False] * len(toks)
    for i, tok in enumerate(toks):
        if tok in _QUANTIFIERS and not (tok == "all" and i > 0 and toks[i - 1] == "at"):
            return True
        if tok in ("are", "were"):
            nxt = toks[i + 1] if i + 1 < len(toks) else ""
            prev = toks[i - 1] if i > 0 else ""
            if nxt not in _ARE_SUBJECTS_SINGULAR and prev not in _ARE_SUBJECTS_SINGULAR:
                return True
        if tok in _DETERMINERS or possessive[i]:
            for nxt in toks[i + 1:i + 4]:
                if nxt in _PHRASE_ENDS:
                    break
                if is_plural_noun(nxt):
                    return True
    return False
