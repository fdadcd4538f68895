"""The box prompt is kept in an object, the previous answers in a question's run: in the SQLite
rows, in the JSON interchange, and taken back up when the image is opened again (engine only, no Qt)."""

from __future__ import annotations

import pytest

from support.annotation import ask, open_annotation, reopened
from engine.annotation import PromptState
from engine.errors import ProjectError
from engine.project import ObjectRecord, PreviousAnswer, Project, QuestionRun
from engine.project.codec import object_from_json, object_to_json, run_from_json, run_to_json
from engine.project.rows import object_from_row, object_row, run_from_row, run_row
from engine.prompts import Box, Point
from engine.results import AnswerResult
from support.fakes import fake_segmentation

BOX = Box(4.5, 3.0, 30.0, 22.25)
EARLIER = [PreviousAnswer("a cup", 0.5, False, 1700000000.5), PreviousAnswer("a bowl", 0.3, True, 1700000100.25)]


def _object() -> ObjectRecord:
    return ObjectRecord(question="what is it?", source="question", points=[Point(12.0, 9.0)], box=BOX)


def _run() -> QuestionRun:
    return QuestionRun(question="what is it?", answer="a mug", previous_answers=list(EARLIER))


def _object_back(obj: ObjectRecord) -> ObjectRecord:
    """An object through its database row (as the store reads it: with its class's name and review)."""
    return object_from_row({**object_row(obj), "category_name": obj.category, "review": 0.0, "reasons": None})


def test_rows_and_json_keep_the_box_and_the_previous_answers():
    obj, run = _object(), _run()
    for back in (_object_back(obj), object_from_json(object_to_json(obj), "o")):
        assert back.box == BOX and back.points == obj.points
    for back in (run_from_row(run_row(run)), run_from_json(run_to_json(run), "r")):
        assert back.previous_answers == EARLIER and back.answer == "a mug"
    plain = _object_back(ObjectRecord())  # older records: neither field
    assert plain.box is None and run_from_row(run_row(QuestionRun(question="q"))).previous_answers == []


@pytest.mark.parametrize("box, why", [([1, 2, 3], "4"), ([5, 5, 1, 1], "width"), ("0 0 1 1", "list")])
def test_a_bad_box_in_a_json_project_names_its_place(box, why):
    d = object_to_json(ObjectRecord())
    d["box"] = box
    with pytest.raises(ProjectError, match=r"images\[0\]\.objects\[1\]\.box") as err:
        object_from_json(d, "images[0].objects[1]")
    assert why in str(err.value)


def test_a_reopened_image_has_its_box_and_its_previous_answer(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"")
    with Project.create(tmp_path / "p.qmask") as project:
        ann = open_annotation(project, path)
        run = ask(ann, "what is it?", answer="a cup")
        uid = ann.selected
        prompts = PromptState((Point(12.0, 9.0),), Box(4.0, 3.0, 30.0, 22.0))
        ann.set_prompts(prompts, uid=uid)
        ann.accept_segmentation(prompts, ann.generation, fake_segmentation(prompts), uid=uid)
        ann.set_alpha(0.25)
        ann.asks.answer(run, "a mug")  # re-run on the edited map
        assert ann.previous_answer.answer == "a cup" and ann.answer.edited_points
        again = reopened(project, path)
    again.select(uid)
    assert again.prompts == prompts and again.prompts.box == Box(4.0, 3.0, 30.0, 22.0)
    assert again.answer.answer == "a mug"
    previous = again.previous_answer
    assert previous.answer == "a cup" and previous.alpha == 0.5 and not previous.edited_points and previous.time > 0
    assert [a.answer for a in again.current_run.record.previous_answers] == ["a cup"]


def test_asking_the_same_question_again_keeps_the_earlier_answers(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"")
    with Project.create(tmp_path / "p.qmask") as project:
        ann = open_annotation(project, path)
        for answer in ("a cup", "a mug", "a jug"):
            ask(ann, "what is it?")  # the ask in flight, up to its captions
            assert ann.answer is None and ann.previous_answer is None  # nothing to compare until the new answer comes
            ann.asks.take(AnswerResult(answer))
            ann.asks.finish()
        assert ann.previous_answer.answer == "a mug"
        again = reopened(project, path)
    assert [a.answer for a in again.current_run.record.previous_answers] == ["a cup", "a mug"]
    assert again.previous_answer.answer == "a mug" and again.answer.answer == "a jug"
    assert len(again.runs) == 1


def test_the_provenance_sidecar_and_the_edit_log_say_how_the_mask_was_made(tmp_path):
    from engine.export.common import ExportItem
    from engine.export.sidecar import item_provenance
    from engine.project import Category

    obj, run = _object(), _run()
    side = item_provenance(ExportItem(image=None, obj=obj, category=Category(1, "mug"), run=run))  # type: ignore[arg-type]
    assert side["box"] == [4.5, 3.0, 30.0, 22.25] and side["label"] == "mug" and side["answer"] == "a mug"
    assert [a["answer"] for a in side["previous_answers"]] == ["a cup", "a bowl"]
    path = tmp_path / "a.png"
    path.write_bytes(b"")
    with Project.create(tmp_path / "p.qmask") as project:
        project.put_object(project.add_image(path), obj)
        assert project.edits()[-1].detail["box"] == [4.5, 3.0, 30.0, 22.25]
        assert project.edits()[-1].object_uid == obj.uid
