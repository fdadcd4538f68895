"""JSON from outside (a COCO file, an older ``.qmask.json``), parsed with limits.

Python's ``json`` takes anything: nesting until the interpreter's recursion limit
(RecursionError), ``NaN`` and ``Infinity``, floats that overflow to infinity (``1e999``) and
integers of any size (SQLite stores at most 64 bits: OverflowError). :func:`load_untrusted`
refuses all of these before the caller looks at the document, so a hostile or damaged file
ends in one message and nothing is written; :func:`expect` / :func:`number` check the fields
a caller reads (type, finite, range), naming the field.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

__all__ = ["MAX_DEPTH", "INT_LIMIT", "UntrustedJSONError", "load_untrusted", "nesting_depth", "expect", "number",
           "type_name"]

MAX_DEPTH = 64  # QMask's own files nest 8 levels; COCO files 5
INT_LIMIT = 2 ** 63  # SQLite's integers are signed 64-bit
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


class UntrustedJSONError(ValueError):
    """A document outside the limits, or not JSON; ``str(err)`` says what (callers add the file).
    ``lineno`` / ``colno`` (1-based) where the text stops being JSON, when that is what is wrong."""

    def __init__(self, message: str, lineno: int | None = None, colno: int | None = None) -> None:
        super().__init__(message)
        self.lineno, self.colno = lineno, colno


def nesting_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in ``raw`` (brackets inside strings do not count).
    Linear and vectorised: about 1 s for 100 MB, a third of what parsing it takes."""
    brackets = _STRING.sub(b'""', raw).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    steps = np.frombuffer(brackets, np.uint8)
    return int(np.where((steps == ord("[")) | (steps == ord("{")), 1, -1).cumsum().max())


def _constant(name: str) -> Any:
    raise UntrustedJSONError(f"it holds {name}, which is not a number JSON allows")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UntrustedJSONError(f"the number {text[:40]} is too large")
    return value


def _int(text: str) -> int:
    if len(text) > 20:  # longer than any 64-bit integer: no need to convert it
        raise UntrustedJSONError(f"the integer {text[:24]}... ({len(text)} digits) is too large")
    value = int(text)
    if not -INT_LIMIT <= value < INT_LIMIT:
        raise UntrustedJSONError(f"the integer {text} is too large (at most 64 bits)")
    return value


def load_untrusted(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``raw`` (UTF-8) with the limits above; raises :class:`UntrustedJSONError`."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    depth = nesting_depth(data)
    if depth > max_depth:
        raise UntrustedJSONError(f"it nests {depth} levels deep, more than the {max_depth} QMask reads "
                                 "(a damaged or hostile file?)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UntrustedJSONError(f"it is not UTF-8 text ({err.reason} at byte {err.start})") from None
    try:
        doc = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except UntrustedJSONError:
        raise
    except json.JSONDecodeError as err:
        raise UntrustedJSONError(f"broken JSON: {err}", err.lineno, err.colno) from None
    except (ValueError, RecursionError) as err:  # depth checked above; a number Python will not convert
        raise UntrustedJSONError(f"broken JSON: {err}") from None
    if _SURROGATE_ESCAPE.search(data):  # rare: only then look at every string (emoji pairs are fine)
        _check_unicode(doc)
    return doc


def _check_unicode(doc: Any) -> None:
    """A ``\\udXXX`` escape without its pair is valid JSON but no text: SQLite and file names refuse it."""
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise UntrustedJSONError(f"the text {item[:40]!r} is not valid Unicode (an unpaired "
                                         "surrogate escape)") from None


def type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    """``value`` if it is a ``kind`` (a bool is not a number here); else UntrustedJSONError."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    numeric = any(k in (int, float) for k in kinds)
    if not isinstance(value, kinds) or (numeric and isinstance(value, bool) and bool not in kinds):
        wanted = " or ".join(type_name(k()) if k in (dict, list, str, int, float) else k.__name__ for k in kinds)
        raise UntrustedJSONError(f"{where}: expected {wanted}, found {type_name(value)}")
    return value


def number(value: Any, where: str, *, integer: bool = False, lo: float | None = None,
           hi: float | None = None) -> Any:
    """A finite number (an ``int`` when ``integer``) within ``[lo, hi]``; else UntrustedJSONError."""
    expect(value, int if integer else (int, float), where)
    if isinstance(value, float) and not math.isfinite(value):
        raise UntrustedJSONError(f"{where}: must be a finite number")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        span = f"from {lo:g} to {hi:g}" if lo is not None and hi is not None else (
            f"at least {lo:g}" if lo is not None else f"at most {hi:g}")
        raise UntrustedJSONError(f"{where}: must be {span}, found {value:g}")
    return value
