"""Digit keys 1-9 for the first nine classes of the project's class list.

Pure logic (no Qt), so the menu, the class picker and their tests agree on one numbering: the
classes in id order (the order they were made, COCO ``category_id`` and YOLO index order), the
first nine numbered 1 to 9. Renaming a class keeps its number; a new class gets the next one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.project.records import Category

__all__ = ["MAX_KEYS", "ClassKey", "class_keys", "class_for_digit", "digit_of", "digit_of_text"]

MAX_KEYS = 9


@dataclass(frozen=True)
class ClassKey:
    """Key ``digit`` (1-9) gives the selected objects the class ``name``."""

    digit: int
    name: str
    colour: tuple[int, int, int]

    @property
    def shortcut(self) -> str:
        """The key sequence, as QKeySequence reads it."""
        return str(self.digit)

    @property
    def text(self) -> str:
        """A menu action's text: the digit as its mnemonic, the name with its ``&`` escaped."""
        return f"&{self.digit} {self.name.replace('&', '&&')}"

    @property
    def tooltip(self) -> str:
        return f"Set the class of the selected objects to “{self.name}” (key {self.digit})"


def _in_id_order(classes: Sequence[Category]) -> list[Category]:
    return sorted(classes, key=lambda c: c.id)


def class_keys(classes: Sequence[Category]) -> list[ClassKey]:
    """The keys of the first nine classes by id, digit 1 first."""
    return [ClassKey(i, c.name, c.rgb) for i, c in enumerate(_in_id_order(classes)[:MAX_KEYS], start=1)]


def class_for_digit(classes: Sequence[Category], digit: int) -> Category | None:
    """The class key ``digit`` gives (None: no such key, or fewer classes)."""
    ordered = _in_id_order(classes)
    return ordered[digit - 1] if 1 <= digit <= min(MAX_KEYS, len(ordered)) else None


def digit_of(classes: Sequence[Category], name: str | None) -> int | None:
    """The digit of the class called ``name`` (None: not among the first nine)."""
    for key in class_keys(classes):
        if key.name == name:
            return key.digit
    return None


def digit_of_text(text: str) -> int | None:
    """1-9 for a key event's text "1" to "9" (None for anything else, "0" included)."""
    return int(text) if len(text) == 1 and "1" <= text <= "9" else None
