"""The box prompt and the previous answers are kept in a question's record: in the SQLite rows, in
the JSON interchange, and taken back up when the image is opened again (engine only, no Qt)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.annotation import ImageAnnotation, ProjectStore, PromptState
from engine.errors import ProjectError
from engine.imaging.images import image_from_array
from engine.project import PreviousAnswer, Project, QuestionRecord
from engine.project.codec import question_from_json, question_to_json
from engine.project.rows import question_from_row, question_row
from engine.prompts import Box, Point
from engine.results import AnswerResult
from fakes import fake_segmentation


def _record() -> QuestionRecord:
    return QuestionRecord(question="what is it?", answer="a mug", points=[Point(12.0, 9.0)],
                          box=Box(4.5, 3.0, 30.0, 22.25),
                          previous_answers=[PreviousAnswer("a cup", 0.5, False, 1700000000.5),
                                            PreviousAnswer("a bowl", 0.3, True, 1700000100.25)])


def test_rows_and_json_keep_the_box_and_the_previous_answers():
    rec = _record()
    for back in (question_from_row(question_row(rec)), question_from_json(question_to_json(rec), "q")):
        assert back.box == rec.box and back.previous_answers == rec.previous_answers
    plain = question_from_row(question_row(QuestionRecord(question="q")))  # older records: neither field
    assert plain.box is None and plain.previous_answers == []


@pytest.mark.parametrize("box, why", [([1, 2, 3], "4"), ([5, 5, 1, 1], "width"), ("0 0 1 1", "list")])
def test_a_bad_box_in_a_json_project_names_its_place(box, why):
    d = question_to_json(QuestionRecord(question="q"))
    d["box"] = box
    with pytest.raises(ProjectError, match=r"images\[0\]\.questions\[1\]\.box") as err:
        question_from_json(d, "images[0].questions[1]")
    assert why in str(err.value)


def _annotation(project: Project, path) -> ImageAnnotation:
    ann = ImageAnnotation(ProjectStore(project), path, project.find_image(path).id)
    ann.set_image(image_from_array(np.zeros((30, 40, 3), np.uint8)))
    return ann


def _reopened(project: Project, path) -> ImageAnnotation:
    with Project.open(project.path) as other:  # as the next start of the app reads it
        return ImageAnnotation(ProjectStore(other), path, other.find_image(path).id)


def test_a_reopened_image_has_its_box_and_its_previous_answer(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"")
    with Project.create(tmp_path / "p.qmask") as project:
        project.add_image(path)
        ann = _annotation(project, path)
        ann.start_question("what is it?")
        ann.set_answer(AnswerResult("a cup"))
        prompts = PromptState((Point(12.0, 9.0),), Box(4.0, 3.0, 30.0, 22.0))
        ann.set_prompts(prompts)
        ann.accept_segmentation(prompts, ann.generation, fake_segmentation(prompts))
        ann.set_alpha(0.25)
        ann.set_answer(AnswerResult("a mug"))  # re-run on the edited map
        assert ann.previous_answer.answer == "a cup"
        again = _reopened(project, path)
    assert again.prompts == prompts and again.prompts.box == Box(4.0, 3.0, 30.0, 22.0)
    assert again.answer.answer == "a mug"
    previous = again.previous_answer
    assert previous.answer == "a cup" and previous.alpha == 0.5 and not previous.edited_points and previous.time > 0
    assert [a.answer for a in again.record.previous_answers] == ["a cup"]


def test_asking_the_same_question_again_keeps_the_earlier_answers(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"")
    with Project.create(tmp_path / "p.qmask") as project:
        project.add_image(path)
        ann = _annotation(project, path)
        for answer in ("a cup", "a mug", "a jug"):
            ann.start_question("what is it?")
            assert ann.previous_answer is None  # nothing to compare until the new answer comes
            ann.set_answer(AnswerResult(answer))
        assert ann.previous_answer.answer == "a mug"
        again = _reopened(project, path)
    assert [a.answer for a in again.record.previous_answers] == ["a cup", "a mug"]
    assert again.previous_answer.answer == "a mug" and again.answer.answer == "a jug"


def test_the_provenance_sidecar_and_the_edit_log_say_how_the_mask_was_made(tmp_path):
    from engine.export.common import ExportItem
    from engine.export.sidecar import item_provenance
    from engine.project import Category

    rec = _record()
    side = item_provenance(ExportItem(image=None, record=rec, category=Category(1, "mug")))  # type: ignore[arg-type]
    assert side["box"] == [4.5, 3.0, 30.0, 22.25]
    assert [a["answer"] for a in side["previous_answers"]] == ["a cup", "a bowl"]
    path = tmp_path / "a.png"
    path.write_bytes(b"")
    with Project.create(tmp_path / "p.qmask") as project:
        project.put_question(project.add_image(path), rec)
        assert project.edits()[-1].detail["box"] == [4.5, 3.0, 30.0, 22.25]
