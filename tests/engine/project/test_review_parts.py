"""An object's review need as the project keeps it (engine/project/review.py): its reasons, BLIP's
doubt among them, the image's need from its neediest object, and the remembered coverage that
spares each write the runs' grid (no Qt: the image list that shows them is test_gui_image_list_review.py)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.imaging.fusion import mask_to_grid
from engine.project import ObjectRecord, Project, QuestionRun
from engine.project import review_reasons as R
from engine.project.review import ITM_DOUBT, evidence_of, object_review


def _heat() -> np.ndarray:
    heat = np.zeros((8, 8), np.float32)
    heat[1:4, 1:4] = 1.0  # the evidence: top left
    return heat


def _run(itm: float | None, answer: str = "a thing", question: str = "is there a cat?") -> QuestionRun:
    return QuestionRun(question=question, answer=answer, heatmap=_heat(), itm_probability=itm)


def _object(score: float | None, where: str | None, question: str = "is there a cat?") -> ObjectRecord:
    """An object whose mask sits on the heat map's evidence ("on"), away from it ("off"), or is absent."""
    obj = ObjectRecord(question=question, source="question")
    if where is not None:
        mask = np.zeros((80, 80), bool)
        if where == "on":
            mask[10:40, 10:40] = True
        else:
            mask[50:80, 50:80] = True
        obj.set_mask(mask, source="auto", score=score)
    return obj


def test_the_need_is_made_of_its_reasons_and_says_why():
    obj, run = _object(0.3, "off"), _run(itm=0.1)
    need, reasons = object_review(obj, run, 1)
    cover = mask_to_grid(obj.mask(), (8, 8))
    base = R.object_review(coverage=cover, heat=_heat(), evidence=evidence_of(_heat(), cover), score=0.3,
                           question=run.question, answer=run.answer, objects_kept=1)
    assert [r.code for r in base.reasons] == ["heat_outside", "low_score"]
    doubt = (ITM_DOUBT - 0.1) / ITM_DOUBT  # BLIP's doubt joins the reasons, by its weight
    assert need == pytest.approx(1 - (1 - base.need) * (1 - doubt))
    assert len(reasons) == 3 and reasons[0] == base.reasons[0].text  # heaviest first: 0.8, 0.8, 0.6
    assert any("10% match" in r and "doubts" in r for r in reasons)
    assert any("0.30" in r and "edges" in r for r in reasons)
    assert any("of the question's heat lies inside" in r for r in reasons)
    assert object_review(_object(0.95, "on"), _run(itm=0.9), 1) == (0.0, [])  # sure of everything: nothing to say
    accepted = _object(0.3, "off")
    accepted.accepted = True
    assert object_review(accepted, run, 1) == (0.0, [])  # a person looked at it


def test_missing_values_give_no_reason_and_a_missing_mask_the_heaviest():
    assert object_review(_object(None, "on"), None) == (0.0, [])  # drawn by hand: nothing to weigh it against
    assert object_review(_object(None, "on"), _run(itm=None), 1) == (0.0, [])  # no score, no match: no reason
    need, reasons = object_review(_object(None, None), _run(itm=0.9), 1)
    assert need == 1.0 and reasons == ["the object has no pixels: draw it or delete it."]
    empty = ObjectRecord()
    empty.set_mask(np.zeros((80, 80), bool), source="user")
    assert object_review(empty, None)[0] == 1.0


def test_the_answer_and_the_objects_kept_are_reasons_too():
    no = object_review(_object(0.95, "on"), _run(itm=0.9, answer="no"), 1)
    assert no[0] == pytest.approx(R.NEGATIVE_WEIGHT) and "yet this object has a mask" in no[1][0]
    count = _run(itm=0.9, answer="3", question="how many cats are there?")
    one_of_three = object_review(_object(0.95, "on", count.question), count, 1)
    assert "the answer says 3 but 1 object is kept" in one_of_three[1][0]
    assert object_review(_object(0.95, "on", count.question), count, 3) == (0.0, [])


def test_the_image_need_comes_from_its_neediest_object_not_yet_accepted(tmp_path):
    with Project.create(tmp_path / "p.qmask") as p:
        img = p.add_image("a.png", width=80, height=80)
        run = _run(itm=0.9)
        calm, worrying = _object(0.9, "on"), _object(0.2, "off")
        p.put_changes(img, runs=[run], objects=[calm, worrying], source="chain")
        stored = {o.uid: o for o in p.find_image("a.png").objects}
        assert stored[worrying.uid].review > 0.5 > stored[calm.uid].review == 0.0
        assert stored[worrying.uid].reasons and not stored[calm.uid].reasons
        row = p.image_rows([img.id])[img.id]
        assert row.review == pytest.approx(stored[worrying.uid].review) and row.state == "answered"
        assert p.review_queue()[0] == (img.id, worrying.uid, pytest.approx(stored[worrying.uid].review))
        worrying.accepted = True
        p.put_object(img, worrying)
        assert p.image_rows([img.id])[img.id].review == 0.0  # accepted: the calm one is all that is left
        assert [uid for _, uid, _ in p.review_queue()] == [calm.uid]


def test_a_remembered_coverage_stands_for_the_runs_only_while_the_mask_is_the_same():
    # The worker's candidate coverage spares each project write rle_to_grid; it must give the
    # same need, and must not outlive the mask it belongs to.
    run = _run(itm=0.4)
    from_runs = object_review(_object(0.6, "off"), run, 1)
    fresh = _object(0.6, "off")
    fresh.remember_coverage(mask_to_grid(fresh.mask(), (8, 8)))
    assert fresh.known_coverage((8, 8)) is not None and fresh.known_coverage((4, 4)) is None
    assert object_review(fresh, run, 1)[0] == pytest.approx(from_runs[0], abs=1e-6)
    wrong = _object(0.6, "off")
    wrong.remember_coverage(np.zeros((8, 8), np.float32))  # a stale grid would change the need
    assert object_review(wrong, run, 1)[0] != pytest.approx(from_runs[0], abs=1e-3)
    moved = np.zeros((80, 80), bool)
    moved[10:40, 10:40] = True
    wrong.set_mask(moved, source="user", score=0.6)  # a new mask: the remembered grid no longer holds
    assert wrong.known_coverage((8, 8)) is None
    assert object_review(wrong, run, 1)[0] == pytest.approx(object_review(_object(0.6, "on"), run, 1)[0])
