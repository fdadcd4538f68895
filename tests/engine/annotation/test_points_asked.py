"""The number of automatic points asked for is kept in a question's run (``points_asked``): in the
SQLite rows and the JSON interchange, so a reopened image still says why fewer points came
(engine only, no Qt; the app's side is in test_point_notes.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from support.annotation import ask, open_annotation
from engine.annotation import ImageAnnotation, ProjectStore
from engine.errors import ProjectError
from engine.imaging.points import auto_points
from engine.project import Project, QuestionRun
from engine.project.codec import run_from_json, run_to_json
from engine.project.rows import run_from_row, run_row


def test_rows_and_json_keep_the_number_of_points_asked_for():
    rec = QuestionRun(question="what is it?", points_asked=7)
    for back in (run_from_row(run_row(rec)), run_from_json(run_to_json(rec), "q")):
        assert back.points_asked == 7
    zero = QuestionRun(question="q", points_asked=0)  # asked for none: still known
    assert run_from_row(run_row(zero)).points_asked == 0
    plain = QuestionRun(question="q")  # older records and imports: not known
    assert "points_asked" not in run_to_json(plain)
    assert run_from_row(run_row(plain)).points_asked is None
    assert run_from_json(run_to_json(plain), "q").points_asked is None


@pytest.mark.parametrize("value, why", [(-1, "negative"), ("5", "int"), (2.5, "int"), (True, "int")])
def test_a_damaged_number_of_points_asked_is_refused_with_its_place(value, why):
    d = run_to_json(QuestionRun(question="q"))
    d["points_asked"] = value
    with pytest.raises(ProjectError, match=r"images\[0\]\.runs\[1\]\.points_asked") as err:
        run_from_json(d, "images[0].runs[1]")
    assert why in str(err.value)
    row = run_row(QuestionRun(question="q"))
    row["extra"] = json.dumps({**json.loads(row["extra"]), "points_asked": value})
    with pytest.raises(ProjectError, match="damaged.*points_asked"):
        run_from_row(row)


def _heat() -> np.ndarray:
    heat = np.zeros((24, 24), np.float32)
    heat[5, 5] = 1.0  # one hot spot: one point of the five asked for
    return heat


@pytest.mark.parametrize("reload", [False, True])
def test_a_reopened_image_says_why_fewer_points_came(tmp_path, reload):
    path = tmp_path / "a.png"
    path.write_bytes(b"")
    with Project.create(tmp_path / "p.qmask") as project:
        ann = open_annotation(project, path, rgb_shape=(240, 240))
        heat = _heat()
        ask(ann, "where is it?", heat=heat, points=auto_points(heat, (240, 240), num_points=5), asked=5,
            answer="a spot")
        note = ann.points_note
        assert note is not None and note.startswith("1 of 5 automatic points")
        if reload:  # another process wrote the image: the note is made again from the run
            ann.current_run.points_note = "stale"
            ann.reload_from_project()
            assert ann.points_note == note
        with Project.open(project.path) as other:  # as the next start of the app reads it
            again = ImageAnnotation(ProjectStore(other), path, other.find_image(path).id)
            assert again.current_run.record.points_asked == 5
    assert again.points_note == note
