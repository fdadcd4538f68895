"""The review need's parts (engine/project/review.py) and the image list that shows them."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore

from engine.project import Project, QuestionRecord
from engine.project.review import most_in_need, question_review_priority, review_parts
from gui.panels.image_list import REVIEW_ROLE
from gui_support import WAIT_MS, harness_fixture, write_photo, wait_shown
from gui_support import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


def _record(question: str, itm: float | None, iou: float | None, where: str | None) -> QuestionRecord:
    """A record whose mask sits on the heat map's evidence ("on"), away from it ("off"), or is absent."""
    heat = np.zeros((8, 8), np.float32)
    heat[1:4, 1:4] = 1.0  # the evidence: top left
    rec = QuestionRecord(question=question, answer="a thing", heatmap=heat, itm_probability=itm)
    if where is not None:
        mask = np.zeros((80, 80), bool)
        if where == "on":
            mask[10:40, 10:40] = True
        else:
            mask[50:80, 50:80] = True
        rec.set_mask(mask, source="auto", score=iou)
    return rec


def test_the_parts_average_to_the_review_need_and_say_why():
    doubtful = _record("is there a cat?", itm=0.1, iou=0.3, where="off")
    parts = review_parts(doubtful)
    assert [p.name for p in parts] == ["image-question match", "mask confidence", "heat map vs mask"]
    assert np.mean([p.value for p in parts]) == pytest.approx(question_review_priority(doubtful))
    assert parts[0].value == pytest.approx(0.9) and "10% match" in parts[0].meaning and "doubts" in parts[0].meaning
    assert parts[1].value == pytest.approx(0.7) and "0.30" in parts[1].meaning and "unsure" in parts[1].meaning
    assert parts[2].value > 0.9 and "away from" in parts[2].meaning
    sure = review_parts(_record("is there a cat?", itm=0.9, iou=0.95, where="on"))
    assert "fits" in sure[0].meaning and "fairly sure" in sure[1].meaning and "covers" in sure[2].meaning
    assert sure[2].value < 0.5


def test_missing_values_are_said_as_unknown():
    parts = review_parts(_record("q", itm=None, iou=None, where=None))
    assert [p.value for p in parts] == [0.5, 1.0, 1.0]
    assert "unknown" in parts[0].meaning and "no mask" in parts[1].meaning and "no mask" in parts[2].meaning
    drawn = review_parts(_record("q", itm=0.5, iou=None, where="on"))
    assert drawn[1].value == 0.5 and "no predicted quality" in drawn[1].meaning


def test_the_image_need_comes_from_its_neediest_question():
    calm, worrying = _record("a", 0.9, 0.9, "on"), _record("b", 0.1, 0.2, "off")
    assert most_in_need([calm, worrying]) is worrying and most_in_need([]) is None


def test_a_remembered_coverage_stands_for_the_runs_only_while_the_mask_is_the_same():
    # The worker's candidate coverage spares each project write rle_to_grid; it must give the
    # same need, and must not outlive the mask it belongs to.
    from engine.imaging.fusion import mask_to_grid

    rec = _record("q", itm=0.4, iou=0.6, where="off")
    from_runs = question_review_priority(rec)
    fresh = _record("q", itm=0.4, iou=0.6, where="off")
    fresh.remember_coverage(mask_to_grid(fresh.mask(), (8, 8)))
    assert fresh.known_coverage((8, 8)) is not None and fresh.known_coverage((4, 4)) is None
    assert question_review_priority(fresh) == pytest.approx(from_runs, abs=1e-6)
    wrong = _record("q", itm=0.4, iou=0.6, where="off")
    wrong.remember_coverage(np.zeros((8, 8), np.float32))  # a stale grid would change the need
    assert question_review_priority(wrong) != pytest.approx(from_runs, abs=1e-3)
    moved = np.zeros((80, 80), bool)
    moved[10:40, 10:40] = True
    wrong.set_mask(moved, source="user", score=0.6)  # a new mask: the remembered grid no longer holds
    assert wrong.known_coverage((8, 8)) is None
    assert question_review_priority(wrong) == pytest.approx(question_review_priority(_record("q", 0.4, 0.6, "on")))


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def test_the_image_list_shows_each_need_and_its_parts(harness, qtbot, tmp_path):
    imgs = [write_photo(tmp_path / f"{name}.png", w=80, h=80, seed=i) for i, name in enumerate(("calm", "worry", "new"))]
    project_file = tmp_path / "work.qmask"
    with Project.create(project_file) as project:
        for img, rec in zip(imgs, (_record("what is it?", 0.9, 0.95, "on"), _record("is it a cat?", 0.1, 0.3, "off"))):
            project.put_question(project.add_image(img, width=80, height=80), rec)
        project.add_image(imgs[2], width=80, height=80)
    app = harness.build(imgs, project=project_file)
    w = app.window
    wait_shown(qtbot, app)
    view = w.image_list.list
    rows = {view.item(r).text(): r for r in range(view.count())}
    need = {name: view.model().index(row).data(REVIEW_ROLE) for name, row in rows.items()}
    assert need["new.png"] is None and need["worry.png"] > 0.7 > need["calm.png"]
    tip = view.item(rows["worry.png"]).toolTip()
    assert f"review need: {need['worry.png']:.2f}" in tip and "“is it a cat?”" in tip
    assert "image-question match 0.90: BLIP gives the image a 10% match" in tip
    assert "mask confidence 0.70" in tip and "heat map vs mask" in tip and "away from" in tip
    assert "made of" not in view.item(rows["new.png"]).toolTip()
    w.image_list.sort_box.setCurrentIndex(0)  # "Review need first": the worrying image leads
    w.image_list.sort_requested.emit("review")
    qtbot.waitUntil(lambda: view.item(0).text() == "worry.png", timeout=WAIT_MS)
    shot = view.grab()  # the delegate paints the need at the row's right edge
    assert not shot.isNull()
    shot.save(str(tmp_path / "image_list.png"))
    assert view.itemDelegate().__class__.__name__ == "ReviewDelegate"
    assert QtCore.Qt.ItemDataRole.UserRole + 1 == REVIEW_ROLE
