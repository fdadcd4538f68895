"""Why a weights file could not be read, in QMask's own words.

torch, safetensors and transformers explain load failures for developers, sometimes with advice
a user must never follow (torch's "Re-running torch.load with weights_only set to False will
likely succeed" for a file holding pickled code), and often in messages that a one-line cut
leaves mid-sentence. :func:`load_failure` turns any such exception into whole sentences that
say what is wrong with the file; callers add which file and what to do.
"""

from __future__ import annotations

import pickle
import re

__all__ = ["load_failure", "UNSAFE_WORDS"]

# Advice QMask never passes on, in any casing.
UNSAFE_WORDS = ("weights_only", "weights only", "trust_remote_code", "arbitrary code")

_TRUNCATED = ("pytorchstreamreader", "central directory", "zip archive", "unexpected eof", "ran out of input",
              "unexpected end", "file is too short", "truncated", "incomplete metadata", "headertoolarge",
              "header too large", "deserializing header", "invalid load key", "metadata incomplete", "unable to read", "eof")


def _chain(err: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _unsafe_global(errors: list[BaseException]) -> str | None:
    """The global a weights-only unpickler refused ("" when unnamed), None when none was."""
    for e in errors:
        text = str(e)
        lowered = text.lower()
        # torch's weights-only unpickler names the global it refused; any other refusal
        # ("Unsupported operand") is a file that is not a pickle of tensors at all: damaged.
        if "unsupported global" in lowered or (isinstance(e, pickle.UnpicklingError)
                                               and re.search(r"\bGLOBAL [\w.]+", text)):
            found = re.search(r"GLOBAL ([\w.]+)", text)
            return found.group(1) if found else ""
    return None


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    return [p for p in parts if p]


def load_failure(err: BaseException, reading: bool = False) -> str:
    """Whole sentences saying why a weights, config or tokenizer file could not be read.

    ``reading``: ``err`` came from reading the file itself (``torch.load``), so any failure
    other than refused objects means the file is damaged. Never repeats a loader's advice to
    turn a safety check off, and never cuts a sentence.
    """
    errors = _chain(err)
    unsafe = _unsafe_global(errors)
    if unsafe is not None:
        what = f" ({unsafe})" if unsafe else ""
        return (f"It holds Python objects other than tensors{what}, which could run code when loaded; "
                "QMask never loads such files.")
    for e in errors:
        lowered = f"{type(e).__name__}: {e}".lower()
        if reading or isinstance(e, EOFError) or any(word in lowered for word in _TRUNCATED):
            return ("It is incomplete or damaged: it ends too early or its contents cannot be read (an "
                    "interrupted download looks like this).")
    for e in errors:
        kept = [s for s in _sentences(str(e)) if not any(w in s.lower() for w in UNSAFE_WORDS)]
        if kept:
            reason = kept[0] if len(kept[0]) <= 300 else kept[0][:297].rsplit(" ", 1)[0] + " ..."
            reason = reason.rstrip(" :;,")
            if not reason.endswith((".", "!", "?", "...")):
                reason += "."
            return f"The loader reported: {type(e).__name__}: {reason}"
    return f"The loader failed with {type(err).__name__} and gave no details."
