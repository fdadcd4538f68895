"""The number of automatic points asked for is kept in a question's record (``points_asked``): in
the SQLite rows and the JSON interchange, so a reopened image still says why fewer points came
(engine only, no Qt; the app's side is in test_point_notes.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.annotation import ImageAnnotation, ProjectStore, PromptState
from engine.errors import ProjectError
from engine.imaging.images import image_from_array
from engine.imaging.points import auto_points
from engine.project import Project, QuestionRecord
from engine.project.codec import question_from_json, question_to_json
from engine.project.rows import question_from_row, question_row
from engine.results import AnswerResult, HeatmapResult
from fakes import fake_segmentation


def test_rows_and_json_keep_the_number_of_points_asked_for():
    rec = QuestionRecord(question="what is it?", points_asked=7)
    for back in (question_from_row(question_row(rec)), question_from_json(question_to_json(rec), "q")):
        assert back.points_asked == 7
    zero = QuestionRecord(question="q", points_asked=0)  # asked for none: still known
    assert question_from_row(question_row(zero)).points_asked == 0
    plain = QuestionRecord(question="q")  # older records and imports: not known
    assert "points_asked" not in question_to_json(plain)
    assert question_from_row(question_row(plain)).points_asked is None
    assert question_from_json(question_to_json(plain), "q").points_asked is None


@pytest.mark.parametrize("value, why", [(-1, "negative"), ("5", "int"), (2.5, "int"), (True, "int")])
def test_a_damaged_number_of_points_asked_is_refused_with_its_place(value, why):
    d = question_to_json(QuestionRecord(question="q"))
    d["points_asked"] = value
    with pytest.raises(ProjectError, match=r"images\[0\]\.questions\[1\]\.points_asked") as err:
        question_from_json(d, "images[0].questions[1]")
    assert why in str(err.value)
    row = question_row(QuestionRecord(question="q"))
    row["extra"] = json.dumps({**json.loads(row["extra"]), "points_asked": value})
    with pytest.raises(ProjectError, match="points_asked"):
        question_from_row(row)


def _heat() -> np.ndarray:
    heat = np.zeros((24, 24), np.float32)
    heat[5, 5] = 1.0  # one hot spot: one point of the five asked for
    return heat


@pytest.mark.parametrize("reload", [False, True])
def test_a_reopened_image_says_why_fewer_points_came(tmp_path, reload):
    path = tmp_path / "a.png"
    path.write_bytes(b"")
    with Project.create(tmp_path / "p.qmask") as project:
        ann = ImageAnnotation(ProjectStore(project), path, project.add_image(path).id)
        ann.set_image(image_from_array(np.zeros((240, 240, 3), np.uint8)))
        ann.start_question("where is it?")
        heat = _heat()
        ann.set_heatmap(HeatmapResult(question="where is it?", question_map=heat, token_maps=heat[None],
                                      tokens=("it",), itm_probability=0.5))
        points = auto_points(heat, (240, 240), num_points=5)
        ann.set_auto_points(points, asked=5)
        prompts = PromptState(points)
        ann.set_prompts(prompts)
        ann.accept_segmentation(prompts, ann.generation, fake_segmentation(prompts, 240, 240))
        ann.set_answer(AnswerResult("a spot"))
        note = ann.points_note
        assert note is not None and note.startswith("1 of 5 automatic points")
        if reload:  # another process wrote the image: the note is made again from the record
            ann.points_note = "stale"
            ann.reload_from_project()
            assert ann.points_note == note
        with Project.open(project.path) as other:  # as the next start of the app reads it
            again = ImageAnnotation(ProjectStore(other), path, other.find_image(path).id)
            assert again.record.points_asked == 5
    assert again.points_note == note

