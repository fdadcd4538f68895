"""Offline tokenizers for the random models (``engine.models.random_models``): a BERT WordPiece
vocabulary with BLIP's special tokens and a T5 Unigram one, built from a built-in word list so
ordinary questions and captions tokenise into real word pieces. No network, no download."""

from __future__ import annotations

# Vocabulary sizes of the published models; the full random tokenizers are padded to exactly
# these so every id a random model can emit decodes to something.
BLIP_VOCAB_SIZE = 30524  # bert-base-uncased (30522) + [DEC] + [ENC]
T5_VOCAB_SIZE = 32128

# A plain list of common English words (objects, colours, counts, verbs, function words) so
# random models tokenise ordinary questions and captions into real word pieces.
_WORDS = """
a about above across after again against air airplane all almost alone along already also
always am among an and animal animals another any anyone anything apple apples are area arm
arms around art as at away baby back background bag bags ball balloon banana bananas bank bar
base baseball basket bat bathroom be beach bear bears bed bedroom been before behind being
below bench best between bicycle big bike bird birds black blanket blue board boat boats body
book books both bottle bottles bottom bowl box boy boys bread brick bridge brown building
buildings bus buses but by cabinet cake camera can car cars carrot carrots cart cat cats
ceiling cell center chair chairs cheese child children church city clear clock clocks close
cloth clothes cloud clouds coat coffee cold color colors colored computer cord corner couch
counter cow cows cup cups curtain curtains cut dark day desk did dirt do does dog dogs doing
door doors down dress drink driving during each ear ears eating edge eight elephant elephants
empty end eye eyes face fence few field fire five flag floor flower flowers flying food for
forest fork four frame free fridge from front fruit full game giraffe giraffes girl girls
glass glasses glove go going good grass gray great green ground group hair half hand hands
handle hanging has hat have he head her here high hill him his hold holding horse horses hot
house how hydrant ice in inside into is it its jacket keyboard kind kitchen kite kites knife
lady lake lamp laptop large last later leaf leaves left leg legs light lights like line lines
little living long looking lot low made man many market may me meat men middle mirror more
most motorcycle mountain mountains mouse mouth much my near neck new next night nine no not
now number of off old on one only open or orange other our out outside over own pan pants
paper park parked part pattern people person phone photo picture pictures pink pizza place
plane plant plants plate play player playing pole police pot purple rack racket rail red
refrigerator right river road rock rocks roof room round runway sand sandwich sauce say sea
seat second see seen seven shade she sheep shelf shirt shoe shoes short should show side sign
signs sink sitting six skateboard skiing skis sky small snow so soccer some something sport
sports stand standing station still stop stove street suit sun surfboard table tail take tall
team teddy ten tennis that the their them then there these they thing things this those three
through tie tile time to toilet top towel tower track traffic train trains tree trees truck
trucks two umbrella under up us use vase vegetables very view wall walking was watch water
wave waves way we wearing were what wheel when where which while white who why wide will
window windows with woman women wood wooden work yellow yes you young zebra zebras zero
""".split()

_SYLLABLE_CONSONANTS = "bcdfghjklmnprstvwz"
_SYLLABLE_VOWELS = "aeiou"


def _pseudo_words(count: int, taken: set[str]) -> list[str]:
    """Deterministic pronounceable filler words (``bado``, ``bade`` ...) not in ``taken``."""
    syllables = [c + v for c in _SYLLABLE_CONSONANTS for v in _SYLLABLE_VOWELS]
    out: list[str] = []
    for n in (2, 3, 4):
        if len(out) >= count:
            break
        for i in range(len(syllables) ** n):
            word = ""
            k = i
            for _ in range(n):
                word = syllables[k % len(syllables)] + word
                k //= len(syllables)
            if word not in taken:
                out.append(word)
                taken.add(word)
                if len(out) >= count:
                    break
    return out


def blip_vocab(size: str) -> list[str]:
    """A BERT WordPiece vocabulary with BLIP's special tokens, ``[DEC]`` and ``[ENC]`` last.

    Order: ``[PAD] [UNK] [CLS] [SEP] [MASK]``, single characters and their ``##`` forms (so any
    ASCII word tokenises without ``[UNK]``), the word list, then (full size only) filler words
    up to BLIP's 30524 entries so ``[DEC]`` = 30522 and ``[ENC]`` = 30523 as in BLIP.
    """
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789") + list(".,?!'\"-:;()/&")
    vocab = specials + chars + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    seen = set(vocab)
    for w in _WORDS:
        if w not in seen:
            vocab.append(w)
            seen.add(w)
    if size == "full":
        vocab += _pseudo_words(BLIP_VOCAB_SIZE - 2 - len(vocab), seen)
    return vocab + ["[DEC]", "[ENC]"]


def t5_vocab(size: str) -> list[tuple[str, float]]:
    """A Unigram vocabulary for a T5 tokenizer: ``<pad>``=0, ``</s>``=1, ``<unk>``=2.

    Whole words carry the ``▁`` word-start mark; single characters (with and without it) are
    the fallback, so ordinary text never needs ``<unk>``. Full size is padded to T5's 32128.
    """
    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    seen = {p for p, _ in pieces}

    def add(piece: str, score: float) -> None:
        if piece not in seen:
            pieces.append((piece, score))
            seen.add(piece)

    add("▁", -2.0)
    for w in _WORDS:
        add("▁" + w, -5.0)
    for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,?!'\"-:;()/&\\":
        add("▁" + c, -9.0)
        add(c, -10.0)
    if size == "full":
        fillers = _pseudo_words(T5_VOCAB_SIZE - len(pieces), {p.lstrip("▁") for p in seen})
        for w in fillers:
            add("▁" + w, -12.0)
    return pieces


def make_blip_tokenizer(size: str, model_max_length: int = 512):
    """A ``BertTokenizer`` (tokenizers backend) over :func:`blip_vocab`, BLIP's specials set."""
    from transformers import BertTokenizer

    vocab = {tok: i for i, tok in enumerate(blip_vocab(size))}
    return BertTokenizer(vocab=vocab, do_lower_case=True, bos_token="[DEC]",
                         extra_special_tokens=["[ENC]"], model_max_length=model_max_length)


def make_t5_tokenizer(size: str):
    """A ``T5Tokenizer`` (tokenizers backend, Unigram) over :func:`t5_vocab`."""
    from transformers import T5Tokenizer

    return T5Tokenizer(vocab=t5_vocab(size), extra_ids=0, model_max_length=512)
