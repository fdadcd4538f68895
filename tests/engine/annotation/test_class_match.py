"""Matching a question or answer to the project's classes (engine.annotation.class_match)."""

from __future__ import annotations

import itertools

import pytest

from engine.annotation.class_match import class_mentions, match_class
from engine.vqa.words import base_forms, words

COCO = ["person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
        "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
        "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
        "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
        "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
        "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
        "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
        "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
        "teddy bear", "hair drier", "toothbrush"]


@pytest.mark.parametrize("question, answer, expected", [
    ("How many dogs are there?", "3", "dog"),
    ("Where are the people?", "on the beach", "person"),
    ("How many persons?", "2", "person"),
    ("Count the buses", None, "bus"),
    ("Where are the knives?", "drawer", "knife"),
    ("How many mice are on the desk?", "2", "mouse"),
    ("Where are the boxes?", "on the shelf", None),  # box is no COCO class
    ("Is the traffic light red?", "yes", "traffic light"),
    ("How many traffic lights are there?", "2", "traffic light"),
    ("Where is the cell phone?", "table", "cell phone"),
    ("Is the hot dog on a plate?", "yes", "hot dog"),  # the longer name over "dog"
    ("What is the dog eating?", "hot dog", "dog"),  # the question first
    ("What is the man holding?", "frisbee", "frisbee"),  # "man" is not "person": the answer decides
    ("What is on the table?", "pizza", "pizza"),  # "table" alone is not "dining table"
    ("What is he holding?", "a pair of scissors", "scissors"),
    ("Where are the skis?", None, "skis"),
    ("Which ski is longer?", None, "skis"),
    ("What color is the dog's collar?", None, "dog"),
    ("How many wine glasses?", "4", "wine glass"),
    ("HOW MANY CARS?", None, "car"),
    ("What is the cat sitting on?", "car", "cat"),  # the first named in the question
    ("Is the car next to the cat?", None, "car"),
    ("Where are the teddy bears?", None, "teddy bear"),
    ("What is in the sky?", "kites", "kite"),
    ("What is he wearing?", "ties", "tie"),
    ("What is this?", "a carpet", None),  # "car" is not a whole word of "carpet"
    ("What animal is this?", "doggy", None),
    ("", "", None),
    ("What is it?", None, None),
])
def test_match_class_coco(question, answer, expected):
    assert match_class(question, answer, COCO) == expected


def test_case_insensitive_and_returns_the_name_as_given():
    assert match_class("where are the DOGS", None, ["Dog", "Cat"]) == "Dog"
    assert match_class("where is the traffic light", None, ["Traffic Light"]) == "Traffic Light"


def test_irregular_and_plural_class_names():
    classes = ["child", "man", "woman", "box", "Leaves"]
    assert match_class("Where are the children?", None, classes) == "child"
    assert match_class("How many men?", None, classes) == "man"
    assert match_class("Where are the women?", None, classes) == "woman"
    assert match_class("Count the boxes", None, classes) == "box"
    assert match_class("Where is the leaf?", None, classes) == "Leaves"


def test_multi_word_preferred_and_ties_go_to_list_order():
    assert match_class("Where is the traffic light?", None, ["light", "traffic light"]) == "traffic light"
    assert match_class("Where is the dog?", None, ["dog", "Dog"]) == "dog"


def test_no_classes_or_blank_class_names():
    assert match_class("where is the dog", "dog", []) is None
    assert match_class("where is the dog", None, ["", "  ", "?"]) is None


def test_class_mentions_order():
    found = class_mentions("the dog is next to the hot dog and the traffic light", COCO)
    names = [COCO[ci] for _, _, ci in found]
    assert names == ["hot dog", "traffic light", "dog", "dog"]


def test_coco_names_never_meet_each_other():
    """No COCO class name's word forms meet another's: the plural rules add no false match."""
    single = [c for c in COCO if len(words(c)) == 1]
    for a, b in itertools.combinations(single, 2):
        assert not (base_forms(a) & base_forms(b)), (a, b)
    for name in (c for c in COCO if c not in ("skis", "scissors", "sheep")):  # those are plural already
        # A class named in the plural, as people type it, finds itself.
        plural = {"person": "people", "mouse": "mice", "knife": "knives"}.get(
            name, name + ("es" if name.endswith(("s", "sh", "ch", "x")) else "s"))
        assert match_class(f"where are the {plural}", None, COCO) == name, plural
