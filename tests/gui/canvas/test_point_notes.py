"""Why fewer automatic points came than were asked for, and what each point means
(engine/imaging/point_notes.py), shown in the app's mask panel and point tooltips."""

from __future__ import annotations

import numpy as np
import pytest

from engine.imaging.point_notes import point_count_note, point_notes
from engine.imaging.points import auto_points, extract_points, why_fewer_points
from engine.prompts import NEGATIVE, Point
from support.gui import WAIT_MS, ask_and_wait, fast_settings, harness_fixture, wait_shown, write_photo
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


def _spots(*cells: tuple[int, int], size: int = 24) -> np.ndarray:
    heat = np.zeros((size, size), np.float32)
    for r, c in cells:
        heat[r, c] = 1.0
    return heat


def test_the_reason_fewer_points_came_back():
    one_spot = _spots((5, 5))
    assert len(extract_points(one_spot, num_points=5)) == 1 and why_fewer_points(one_spot, 5) == "below"
    note = point_count_note(one_spot, found=1, asked=5)
    assert note.startswith("1 of 5 automatic points") and "no other separate hot spot" in note and "20%" in note
    assert why_fewer_points(np.full((24, 24), 0.3), 5) == "flat"
    assert "same everywhere" in point_count_note(np.full((24, 24), 0.3), found=0, asked=5)
    tiny = np.arange(4, dtype=np.float32).reshape(2, 2)  # every cell within 2 cells of the first point
    assert len(extract_points(tiny, num_points=3)) == 1 and why_fewer_points(tiny, 3) == "no_cells"
    assert "more than 2 cells apart on the 2 x 2 map" in point_count_note(tiny, found=1, asked=3)
    many = _spots((2, 2), (2, 20), (20, 2), (20, 20), (11, 11))
    assert len(extract_points(many, num_points=5)) == 5 and why_fewer_points(many, 5) == "count"
    assert point_count_note(many, found=5, asked=5) is None and point_count_note(None, 0, 5) is None


def test_each_point_is_described_by_its_meaning_not_a_raw_score():
    heat = _spots((5, 5), (18, 18))
    heat[18, 18] = 0.5
    auto = auto_points(heat, (240, 240), num_points=2)
    points = auto + (Point(120.0, 120.0, label=NEGATIVE), Point(55.0, 55.0))
    notes = point_notes(points, heat, (240, 240))
    assert notes[0].startswith("#1 automatic positive point: the mask should include this place")
    assert "heat here: 100% of the map's peak" in notes[0] and "the hottest of the 2 automatic points" in notes[0]
    assert "the 2nd hottest of the 2 automatic points" in notes[1] and "heat here: 50%" in notes[1]
    assert notes[2].startswith("#3 your negative point: the mask should leave this place out")
    assert "hottest" not in notes[2] and "heat here: 0%" in notes[2]
    assert notes[3].startswith("#4 your positive point") and "heat here: 100%" in notes[3]
    assert all("e-0" not in n and "score" not in n for n in notes)
    assert "heat here" not in point_notes(points, None, None)[0]  # before a map exists


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


@pytest.mark.parametrize("found", [0, 1])
def test_the_app_says_why_and_describes_each_point(harness, qtbot, tmp_path, found):
    from engine.annotation import PromptState
    from engine.annotation.chain import AutoPoints
    from engine.results import HeatmapResult, ProposalsResult
    from support.fakes import fake_segmentation

    app = harness.build([write_photo(tmp_path / "photo.png", w=240, h=240)])
    qtbot.waitUntil(lambda: app.workspace.current.image is not None, timeout=WAIT_MS)
    session, w = app.workspace.current, app.window
    # The stages of an ask as the controller applies them, with a map that has one hot spot (or none).
    heat = _spots((5, 5)) if found else np.zeros((24, 24), np.float32)
    session.asks.start("where is it?")
    session.asks.take(HeatmapResult(question="where is it?", question_map=heat, token_maps=heat[None],
                                    tokens=("it",), itm_probability=0.5))
    points = auto_points(heat, (240, 240), num_points=5)
    assert len(points) == found
    session.asks.take(AutoPoints(points, asked=5))
    if points:  # (the chain segments only when the map gave points) its proposal is selected
        session.asks.take(ProposalsResult((fake_segmentation(PromptState(points)),)))
        assert session.selected is not None and session.prompts.points == points
    summary = w.candidates_panel.summary.text()
    assert f"{found} of 5 automatic points" in summary
    assert ("no other separate hot spot" if found else "same everywhere") in summary
    if found:
        tip = w.canvas.points_layer.markers[0].toolTip()
        assert "heat here: 100% of the map's peak" in tip and "the map's hottest spot" in tip
        qtbot.waitUntil(lambda: session.segmentation is not None, timeout=WAIT_MS)  # the decoder's reply is in


def test_a_reopened_image_still_says_why_fewer_points_came(harness, qtbot, tmp_path):
    """The number asked for is kept in the project (points_asked): the app started again on the
    same project shows the same note in the mask panel."""
    img = write_photo(tmp_path / "photo.png")
    project_file = tmp_path / "work.qmask"
    settings = fast_settings(num_points=200)  # more than the map can give
    app = harness.build([img], project=project_file, settings=settings)
    wait_shown(qtbot, app)
    session = ask_and_wait(qtbot, app, "what is the yellow disc?")
    note = session.points_note
    assert note is not None and "of 200 automatic points" in note
    assert note in app.window.candidates_panel.summary.text()
    app.workspace.drain()
    app.window.close()
    again = harness.build([], project=project_file, settings=settings)
    index = again.workspace.find(img)
    restored = again.workspace.sessions[index]
    again.workspace.set_index(index)
    qtbot.waitUntil(lambda: restored.image is not None, timeout=WAIT_MS)
    assert restored.points_note == note
    qtbot.waitUntil(lambda: note in again.window.candidates_panel.summary.text(), timeout=WAIT_MS)
