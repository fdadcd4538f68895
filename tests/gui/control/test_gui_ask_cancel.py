"""Esc on a new question in the app: the window and the project file go back to the image's last
complete state (engine/annotation/asking.py AskFlow.abandon, gui/control/controller.py); the objects a
person made are never touched by an ask, cancelled or not."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest

from engine.project import ObjectRecord, Project, QuestionRun
from engine.prompts import NEGATIVE, Point
from support.gui import WAIT_MS, click_image, fast_settings, select_object_row, write_photo, harness_fixture
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse

QUESTION = "what is the yellow disc?"


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def _complete_project(tmp_path, img):
    """A project where the image has one complete run (answered) and its object: labelled, edited
    and accepted."""
    project_file = tmp_path / "work.qmask"
    heat = np.zeros((16, 16), np.float32)
    heat[4:8, 8:12] = 1.0
    mask = np.zeros((120, 160), bool)
    mask[30:70, 60:120] = True
    with Project.create(project_file) as project:
        image = project.add_image(img, width=160, height=120)
        auto = Point(90.0, 50.0, score=0.9, source="auto")
        run = QuestionRun(question=QUESTION, answer="a lemon", captions=["a lemon on a table"], heatmap=heat,
                          auto_points=[auto])
        obj = ObjectRecord(category="lemon", question=QUESTION, source="question", auto_points=[auto],
                           points=[auto, Point(20.0, 20.0, label=NEGATIVE)], accepted=True)
        obj.set_mask(mask, source="user")
        run.object_uids = [obj.uid]
        project.put_changes(image, runs=[run], objects=[obj], source="user", action="test")
    return project_file, mask


def _shown(app) -> dict:
    w, s = app.window, app.workspace.current
    return {"question": w.question_panel.edit.text(), "heat": None if w.canvas.heat_layer.grid is None
            else w.canvas.heat_layer.grid.tolist(), "points": w.canvas.points_layer.points,
            "answer": w.answer_panel.answer_label.text(), "class": w.candidates_panel.class_box.currentText(),
            "accepted": w.action_map["accept"].isChecked(), "mask": None if s.mask is None else s.mask.tolist(),
            "objects": [(o.uid, o.record.category, o.record.accepted, o.record.mask_rle["counts"])
                        for o in s.ordered()],
            "rows": w.objects_panel.model.rowCount(),
            "row": w.image_list.list.item(0).data(QtCore.Qt.ItemDataRole.UserRole)}


def _open_and_cancel_setup(harness, qtbot, tmp_path):
    """The app on an image with a complete record, slow enough at captions to press Esc."""
    img = write_photo(tmp_path / "photo.png")
    project_file, mask = _complete_project(tmp_path, img)
    slow = fast_settings(num_captions=400, max_caption_rounds=200, caption_batch_size=2)  # time to press Esc
    app = harness.build([img], project=project_file, settings=slow)
    qtbot.waitUntil(lambda: app.workspace.current.image is not None, timeout=WAIT_MS)
    return app, project_file, img, mask


def _ask_and_escape_in_captions(app, qtbot, look) -> list:
    """Ask a new question with real keys and press Esc once its captions are being written; returns
    ``[look()]`` as it was at that moment. The ask ends not completed."""
    w, pressed = app.window, []

    def press_escape_in_captions(progress):
        if progress.stage == "captions" and not pressed:
            pressed.append(look())
            QTest.keyClick(w.canvas, QtCore.Qt.Key.Key_Escape)

    app.client.progress.connect(press_escape_in_captions)
    edit = w.question_panel.edit
    edit.setFocus()
    edit.setText("where is the dog?")
    with qtbot.waitSignal(app.controller.ask_finished, timeout=WAIT_MS) as blocker:
        QTest.keyClick(edit, QtCore.Qt.Key.Key_Return)
    assert blocker.args[1] is False and pressed
    return pressed


def _select_first_object(app, qtbot) -> None:
    select_object_row(qtbot, app)


def test_escape_on_a_new_question_restores_the_window_and_the_project(harness, qtbot, tmp_path):
    app, project_file, img, mask = _open_and_cancel_setup(harness, qtbot, tmp_path)
    w = app.window
    _select_first_object(app, qtbot)
    before = _shown(app)
    assert before["answer"] == "a lemon" and before["accepted"] and before["heat"] is not None
    assert before["question"] == QUESTION and len(before["points"]) == 2 and before["row"] == "accepted"
    assert before["class"] == "lemon" and before["rows"] == 1
    # what Esc ends: the new question, no answer
    pressed = _ask_and_escape_in_captions(app, qtbot, lambda: _shown(app))
    assert pressed[0]["question"] == "where is the dog?" and pressed[0]["answer"] != "a lemon"
    assert pressed[0]["objects"][0] == before["objects"][0]  # the ask never touched the accepted object
    session = app.workspace.current
    session.select(before["objects"][0][0])  # (the ask selected its own proposal, which Esc took back)
    assert _shown(app) == before
    assert "last complete state" in w.messages.current_text
    assert session.answer.captions == ("a lemon on a table",) and np.array_equal(session.mask, mask)
    qtbot.waitUntil(lambda: not app.client.busy, timeout=WAIT_MS)
    app.workspace.drain()
    with Project.open(project_file) as other:  # as another process (or the next start) reads it
        stored = other.find_image(img)
    assert [r.question for r in stored.runs] == [QUESTION] and stored.runs[0].answer == "a lemon"
    assert [(o.category, o.accepted) for o in stored.objects] == [("lemon", True)]
    assert np.array_equal(stored.objects[0].mask(), mask)


def test_after_escape_undo_and_redo_walk_the_steps_that_led_to_the_restored_state(harness, qtbot, tmp_path):
    """An ask puts no step on the undo stack (its proposals are the model's, taken back by Esc):
    after Esc, Ctrl+Z undoes the click made before the question, Ctrl+Shift+Z redoes it and nothing more."""
    app, _file, _img, _mask = _open_and_cancel_setup(harness, qtbot, tmp_path)
    w, session = app.window, app.workspace.current
    _select_first_object(app, qtbot)
    uid = session.selected
    two = w.canvas.points_layer.points
    click_image(w.canvas, 130.5, 90.5)  # a third point of the selected object, before the question
    three = w.canvas.points_layer.points
    assert len(two) == 2 and len(three) == 3 and session.listener.undo_stack.undoText() == "Add positive point"
    at_escape = _ask_and_escape_in_captions(app, qtbot, session.listener.undo_stack.undoText)
    assert at_escape == ["Add positive point"]
    assert "last complete state" in w.messages.current_text
    a = w.action_map
    assert a["undo"].isEnabled() and not a["redo"].isEnabled()
    assert a["undo"].toolTip() == "Undo Add positive point (Ctrl+Z)"
    w.canvas.setFocus()
    QTest.keyClick(w, QtCore.Qt.Key.Key_Z, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert session.selected == uid  # undo shows the object it changed
    assert w.canvas.points_layer.points == two and session.listener.undo_stack.index() == 0
    QTest.keyClick(w, QtCore.Qt.Key.Key_Z, QtCore.Qt.KeyboardModifier.ControlModifier
                   | QtCore.Qt.KeyboardModifier.ShiftModifier)
    assert w.canvas.points_layer.points == three and not a["redo"].isEnabled()
    qtbot.waitUntil(lambda: not app.client.busy, timeout=WAIT_MS)
