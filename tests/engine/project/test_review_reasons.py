"""An object's review need and reasons (engine.annotation.review_reasons)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.project.review_reasons import (HEAT_SHARE_MIN, SCORE_MIN, ObjectReview, heat_share,
                                              object_review)
from engine.errors import InputError
from engine.imaging.fusion import mask_to_grid

W, H = 240, 120  # W != H; the grid below is 12 x 24 cells of 10 x 10 px


def heat_at(cells):
    heat = np.zeros((12, 24), np.float32)
    for r, c in cells:
        heat[r, c] = 1.0
    return heat


def mask_px(r0, r1, c0, c1):
    m = np.zeros((H, W), bool)
    m[r0:r1, c0:c1] = True
    return m


GOOD_HEAT = heat_at([(2, 3), (2, 4)])
GOOD_MASK = mask_px(10, 40, 20, 60)  # cells rows 1-3, cols 2-5: holds the heat


def codes(review: ObjectReview) -> list[str]:
    return [r.code for r in review.reasons]


def test_a_good_object_needs_no_review():
    r = object_review(GOOD_MASK, heat=GOOD_HEAT, score=0.95, question="how many dogs are there?", answer="2",
                      objects_kept=2)
    assert r.need == 0.0 and r.reasons == ()


def test_nothing_known_means_no_reason():
    assert object_review() == ObjectReview(0.0, ())


@pytest.mark.parametrize("answer, kept, expected", [
    ("3", 2, "the answer says 3 but 2 objects are kept: add the missing ones, or correct the answer."),
    ("two", 3, "the answer says 2 but 3 objects are kept: delete the extra ones, or correct the answer."),
    ("4 dogs", 1, "the answer says 4 but 1 object is kept: add the missing ones, or correct the answer."),
])
def test_count_mismatch(answer, kept, expected):
    r = object_review(GOOD_MASK, question="How many dogs are there?", answer=answer, objects_kept=kept)
    assert codes(r) == ["count_mismatch"]
    assert r.reasons[0].text == expected
    n = {"3": 3, "two": 2, "4 dogs": 4}[answer]
    assert r.reasons[0].weight == pytest.approx(0.5 + 0.5 * abs(n - kept) / max(n, kept))
    assert r.need == pytest.approx(r.reasons[0].weight)


@pytest.mark.parametrize("question, answer, kept", [
    ("how many dogs?", "2", 2),  # agrees
    ("how many dogs?", "several", 3),  # no number
    ("what is the man holding?", "3", 1),  # not a count question
    ("how many dogs?", "3", None),  # nobody said how many are kept
])
def test_no_count_mismatch(question, answer, kept):
    assert "count_mismatch" not in codes(object_review(GOOD_MASK, question=question, answer=answer,
                                                       objects_kept=kept))


@pytest.mark.parametrize("answer", ["no", "none", "0", "there are none", "nothing"])
def test_negative_answer_with_a_mask(answer):
    r = object_review(GOOD_MASK, question="how many dogs are there?", answer=answer, objects_kept=1)
    assert codes(r) == ["negative_answer"]  # a zero count is this reason, not a count mismatch too
    assert answer in r.reasons[0].text and "delete it" in r.reasons[0].text


def test_heat_outside_the_mask():
    away = mask_px(80, 120, 180, 240)  # bottom-right: none of the heat
    r = object_review(away, heat=GOOD_HEAT, score=0.95)
    assert codes(r) == ["heat_outside"]
    assert r.reasons[0].weight == pytest.approx(0.8)
    assert r.reasons[0].text.startswith("only 0% of the question's heat lies inside this mask")


def test_heat_share_is_measured_over_the_evidence():
    # Three hot spots (three dogs); this object's mask holds one of them.
    heat = heat_at([(2, 3), (2, 12), (9, 20)])
    one = mask_px(15, 30, 25, 45)  # cell (2, 3) and its neighbours
    assert heat_share(heat, mask_to_grid(one, heat.shape)) == pytest.approx(1 / 3)
    region = np.zeros(heat.shape, bool)
    region[1:4, 2:5] = True
    assert heat_share(heat, mask_to_grid(one, heat.shape), region) == pytest.approx(1.0)
    # With the whole map as evidence, 1/3 is above the threshold anyway; with a fourth spot it is not.
    heat4 = heat_at([(2, 3), (2, 12), (9, 20), (9, 5), (6, 9)])
    assert "heat_outside" in codes(object_review(one, heat=heat4))
    assert "heat_outside" not in codes(object_review(one, heat=heat4, evidence=region))


def test_coverage_can_replace_the_mask():
    cov = mask_to_grid(GOOD_MASK, GOOD_HEAT.shape)
    a = object_review(GOOD_MASK, heat=heat_at([(10, 20)]))
    b = object_review(coverage=cov, heat=heat_at([(10, 20)]))
    assert a == b and codes(a) == ["heat_outside"]


def test_flat_heat_gives_no_heat_reason():
    assert object_review(GOOD_MASK, heat=np.zeros((12, 24))).reasons == ()


@pytest.mark.parametrize("score, flagged", [(0.9, False), (SCORE_MIN, False), (0.6, True), (0.0, True),
                                            (-0.2, True)])
def test_low_score(score, flagged):
    r = object_review(GOOD_MASK, score=score)
    assert (codes(r) == ["low_score"]) is flagged
    if flagged:
        assert r.reasons[0].weight == pytest.approx(min(1.0, 1 - max(score, 0) / SCORE_MIN))
        assert f"{score:.2f}" in r.reasons[0].text


def test_empty_mask():
    r = object_review(np.zeros((H, W), bool), heat=GOOD_HEAT, score=0.2, answer="no")
    assert codes(r) == ["empty_mask"] and r.need == 1.0


def test_reasons_combine_heaviest_first():
    away = mask_px(80, 120, 180, 240)
    r = object_review(away, heat=GOOD_HEAT, score=0.5, question="how many dogs?", answer="3", objects_kept=1)
    assert codes(r) == ["count_mismatch", "heat_outside", "low_score"]
    weights = [x.weight for x in r.reasons]
    assert weights == sorted(weights, reverse=True)
    assert r.need == pytest.approx(1 - np.prod([1 - w for w in weights]))


@pytest.mark.parametrize("kw", [{"mask": np.zeros((H, W), np.uint8)}, {"mask": np.zeros(5, bool)},
                                {"mask": GOOD_MASK, "score": float("nan")},
                                {"coverage": np.zeros((3, 3)), "heat": GOOD_HEAT, "mask": None},
                                {"mask": GOOD_MASK, "heat": GOOD_HEAT, "evidence": np.ones((12, 24), int)}])
def test_bad_inputs_refused(kw):
    with pytest.raises(InputError):
        object_review(**kw)


def test_nan_heat_refused():
    heat = GOOD_HEAT.copy()
    heat[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        object_review(GOOD_MASK, heat=heat)


@settings(max_examples=60, deadline=None)
@given(score=st.one_of(st.none(), st.floats(-1, 2)), answer=st.sampled_from([None, "no", "3", "two", "dog"]),
       kept=st.one_of(st.none(), st.integers(0, 6)), r0=st.integers(0, 11), c0=st.integers(0, 23),
       with_heat=st.booleans())
def test_need_is_in_unit_interval_and_matches_reasons(score, answer, kept, r0, c0, with_heat):
    mask = mask_px(r0 * 10, r0 * 10 + 30, c0 * 10, c0 * 10 + 40)
    r = object_review(mask, heat=GOOD_HEAT if with_heat else None, score=score, question="how many dogs?",
                      answer=answer, objects_kept=kept)
    assert 0.0 <= r.need <= 1.0
    assert (r.need > 0) == bool(r.reasons)
    assert all(0 < x.weight <= 1 and x.text for x in r.reasons)


def test_threshold_constant_is_a_share():
    assert 0 < HEAT_SHARE_MIN < 1
