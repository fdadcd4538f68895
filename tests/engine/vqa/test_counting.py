"""Count questions, counted answers, negative answers and plural questions (engine.vqa.counting),
and the word rules under them (engine.vqa.words)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.vqa.counting import answer_count, count_question, negative_answer, plural_question
from engine.vqa.words import NUMBER_WORDS, base_forms, is_plural_noun, words


@pytest.mark.parametrize("question, expected", [
    ("How many dogs are there?", True),
    ("how many people are on the bus", True),
    ("Count the cars.", True),
    ("count", True),
    ("Can you count the dogs?", True),
    ("count all sheep", True),
    ("What is the number of people in the room?", True),
    ("number of zebras?", True),
    ("What is the count of birds", True),
    ("HOW   MANY cats", True),
    ("What is the man holding?", False),
    ("How much does it cost?", False),
    ("What number is on the bus?", False),
    ("Where is the dog?", False),
    ("Is the count sitting on a chair?", False),  # a noble, not a request
    ("", False),
])
def test_count_question(question, expected):
    assert count_question(question) is expected


@pytest.mark.parametrize("answer, expected", [
    ("3", 3), ("3 dogs", 3), ("three", 3), ("Three.", 3), ("there are 12", 12), ("twenty", 20),
    ("zero", 0), ("0", 0), ("none", 0), ("no", 0), ("no dogs", 0), ("nothing", 0), ("there are none", 0),
    ("1,000", 1000), ("2, two", 2), ("one", 1), ("eleven cars", 11),
    ("2 or 3", None), ("twenty one", None), ("2.5", None), ("first", None), ("1st", None),
    ("a couple", None), ("several", None), ("many", None), ("a few", None), ("a dozen", None),
    ("a dog", None), ("", None), ("yes", None), ("frisbee", None), ("٣", None),
])
def test_answer_count(answer, expected):
    assert answer_count(answer) == expected


@pytest.mark.parametrize("answer", [
    "no", "No.", "none", "None of them", "nothing", "nobody", "no one", "nowhere", "neither", "nope",
    "0", "zero", "0 dogs", "there are none", "There is nothing", "there's none", "there aren't any",
    "there is no dog", "no dogs", "no red cars", "no, it is a cat", "no it isn't", "not any", "NO",
])
def test_negative_answers(answer):
    assert negative_answer(answer)


@pytest.mark.parametrize("answer", [
    "yes", "dog", "2", "two dogs", "no parking", "no entry", "nothing but", "", "a cat", "north",
    "the one on the left", "there are two", "snow", "noodles", "0 or 1",
])
def test_not_negative_answers(answer):
    expected = answer == "nothing but"  # starts with "nothing": the answer denies the object
    assert negative_answer(answer) is expected


@pytest.mark.parametrize("question, expected", [
    ("Where are the dogs?", True),
    ("How many cars are there?", True),
    ("Count the birds", True),
    ("Show all the cars", True),
    ("What is each person holding?", True),
    ("What color are the red buses?", True),
    ("Which toys are on the floor?", True),
    ("What are they doing?", True),
    ("Where are my keys?", True),
    ("what color are the man's shoes", True),
    ("Are there any sheep?", True),
    ("Is there any dog?", False),
    ("What is the man holding?", False),
    ("What is the woman holding?", False),
    ("Where is the dog?", False),
    ("Where is the bus?", False),
    ("Is there a dog?", False),
    ("What color is his shirt?", False),
    ("What is on the table?", False),
    ("How old are you?", False),
    ("Is the dog asleep at all?", False),
    ("Who is playing tennis?", False),
    ("What is in the glass?", False),
    ("What is the man in jeans holding?", False),  # "jeans" follows a preposition, not a determiner
    ("Where are the men?", True),
    ("Where are the children playing?", True),
])
def test_plural_question(question, expected):
    assert plural_question(question) is expected


# --- words --------------------------------------------------------------------------------------

def test_words_tokens():
    assert words("Where's the dog's ball, and the dogs' bowls? T-shirt isn't 1,000") == [
        "where", "the", "dog", "ball", "and", "the", "dogs", "bowls", "t", "shirt", "isn't", "1", "000"]
    assert words("The dog\u2019s tail") == ["the", "dog", "tail"]


@pytest.mark.parametrize("plural, singular", [
    ("dogs", "dog"), ("boxes", "box"), ("people", "person"), ("men", "man"), ("children", "child"),
    ("mice", "mouse"), ("buses", "bus"), ("knives", "knife"), ("puppies", "puppy"), ("ties", "tie"),
    ("wolves", "wolf"), ("gloves", "glove"), ("glasses", "glass"), ("benches", "bench"), ("skis", "ski"),
    ("sheep", "sheep"), ("women", "woman"), ("leaves", "leaf"), ("horses", "horse"), ("teeth", "tooth"),
])
def test_base_forms_reach_the_singular(plural, singular):
    assert singular in base_forms(plural)
    assert base_forms(singular) & base_forms(plural)


@pytest.mark.parametrize("word, expected", [
    ("dogs", True), ("men", True), ("mice", True), ("glasses", True), ("sheep", False), ("dog", False),
    ("bus", False), ("glass", False), ("this", False), ("tennis", False), ("is", False), ("its", False),
    ("cars", True), ("12", False),
])
def test_is_plural_noun(word, expected):
    assert is_plural_noun(word) is expected


@given(st.integers(0, 10**6))
def test_any_digit_count_reads_back(n):
    assert answer_count(str(n)) == n
    assert answer_count(f"there are {n} of them") == n
    assert negative_answer(str(n)) is (n == 0)


@pytest.mark.parametrize("word, value", sorted(NUMBER_WORDS.items()))
def test_number_words(word, value):
    assert answer_count(word) == value
    assert answer_count(word.capitalize() + ".") == value
