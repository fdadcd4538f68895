"""The image list shows each image's review need and, in its tooltip, the reasons of its neediest
object (moved here from test_review_parts.py, whose engine part is without Qt; its records are
ported to objects and runs, its tooltip assertions follow the object reasons: the GUI is being
ported to objects, issue 23)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore

from engine.project import ObjectRecord, Project, QuestionRun
from gui.window.panels.image_list import REVIEW_ROLE
from support.gui import WAIT_MS, harness_fixture, write_photo, wait_shown
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


def _records(question: str, itm: float, score: float, where: str) -> tuple[QuestionRun, ObjectRecord]:
    """A run and its object, whose mask sits on the heat map's evidence ("on") or away from it ("off")."""
    heat = np.zeros((8, 8), np.float32)
    heat[1:4, 1:4] = 1.0
    run = QuestionRun(question=question, answer="a thing", heatmap=heat, itm_probability=itm)
    obj = ObjectRecord(question=question, source="question", category="cat")
    mask = np.zeros((80, 80), bool)
    if where == "on":
        mask[10:40, 10:40] = True
    else:
        mask[50:80, 50:80] = True
    obj.set_mask(mask, source="auto", score=score)
    return run, obj


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def test_the_image_list_shows_each_need_and_its_reasons(harness, qtbot, tmp_path):
    imgs = [write_photo(tmp_path / f"{name}.png", w=80, h=80, seed=i) for i, name in enumerate(("calm", "worry", "new"))]
    project_file = tmp_path / "work.qmask"
    with Project.create(project_file) as project:
        for img, (run, obj) in zip(imgs, (_records("what is it?", 0.9, 0.95, "on"),
                                          _records("is it a cat?", 0.1, 0.3, "off"))):
            project.put_changes(project.add_image(img, width=80, height=80), runs=[run], objects=[obj])
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
    assert "BLIP gives the image a 10% match" in tip and "0.30" in tip and "of the question's heat" in tip
    assert "review need" not in view.item(rows["new.png"]).toolTip()
    w.image_list.sort_box.setCurrentIndex(0)  # "Review need first": the worrying image leads
    w.image_list.sort_requested.emit("review")
    qtbot.waitUntil(lambda: view.item(0).text() == "worry.png", timeout=WAIT_MS)
    shot = view.grab()  # the delegate paints the need at the row's right edge
    assert not shot.isNull()
    shot.save(str(tmp_path / "image_list.png"))
    assert view.itemDelegate().__class__.__name__ == "ReviewDelegate"
    assert QtCore.Qt.ItemDataRole.UserRole + 1 == REVIEW_ROLE
