"""Digit keys for classes (gui/window/class_keys.py): the first nine classes by id, 1 to 9."""

from __future__ import annotations

from engine.project.records import Category, palette_color
from gui.window.class_keys import class_for_digit, class_keys, digit_of, digit_of_text


def categories(n: int) -> list[Category]:
    return [Category(id=i + 1, name=f"c{i + 1}") for i in range(n)]


def test_the_first_nine_classes_by_id_get_the_digits():
    classes = categories(12)[::-1]  # given in any order: id order counts
    keys = class_keys(classes)
    assert [(k.digit, k.name) for k in keys] == [(i, f"c{i}") for i in range(1, 10)]
    assert keys[0].colour == palette_color(1) and keys[0].shortcut == "1"
    assert class_for_digit(classes, 9).name == "c9"
    assert class_for_digit(classes, 0) is None and class_for_digit(classes, 10) is None
    assert digit_of(classes, "c3") == 3 and digit_of(classes, "c10") is None and digit_of(classes, None) is None


def test_fewer_classes_fewer_keys_and_colours_as_set():
    classes = [Category(id=7, name="dog", color=(1, 2, 3)), Category(id=2, name="cat")]
    keys = class_keys(classes)
    assert [(k.digit, k.name, k.colour) for k in keys] == [(1, "cat", palette_color(2)), (2, "dog", (1, 2, 3))]
    assert class_for_digit(classes, 3) is None and class_keys([]) == []


def test_action_texts_and_tooltips():
    key = class_keys([Category(id=1, name="salt & pepper")])[0]
    assert key.text == "&1 salt && pepper"  # the digit is the mnemonic; a name's & is shown as it is
    assert key.tooltip == "Set the class of the selected objects to “salt & pepper” (key 1)"


def test_digits_typed():
    assert [digit_of_text(t) for t in ("1", "9", "0", "a", "", "12", "٣")] == [1, 9, None, None, None, None, None]
