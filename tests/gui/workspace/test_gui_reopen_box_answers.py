"""The box prompt and the previous answer come back when the app opens the project again."""

from __future__ import annotations

import pytest
from PySide6 import QtCore

from engine.project import Project
from gui.window.panels.answer_panel import display_answer
from support.gui import WAIT_MS, ask_and_wait, drag_image, select_object_row, write_photo, harness_fixture, wait_shown
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def test_a_reopened_image_shows_its_box_and_its_previous_answer(harness, qtbot, tmp_path):
    img = write_photo(tmp_path / "photo.png")
    project_file = tmp_path / "work.qmask"
    app = harness.build([img], project=project_file)
    wait_shown(qtbot, app)
    w = app.window
    session = ask_and_wait(qtbot, app, "what is the yellow disc?")
    first = session.answer.answer
    with qtbot.waitSignal(app.controller.live.segmented, timeout=WAIT_MS,
                          check_params_cb=lambda s, shown: shown):
        drag_image(w.canvas, (60.0, 20.0), (140.0, 100.0), modifiers=QtCore.Qt.KeyboardModifier.ControlModifier)
    box = session.prompts.box
    assert box is not None and w.canvas.box_layer.box == box
    w.answer_panel.alpha_slider.setValue(30)
    with qtbot.waitSignal(app.controller.answer_ready, timeout=WAIT_MS):
        w.answer_panel.rerun_button.click()
    second = session.answer.answer
    assert session.previous_answer.answer == first
    app.workspace.drain()
    uid = session.selected
    with Project.open(project_file) as other:  # in the file, for provenance
        stored = other.find_image(img)
    obj, run = stored.find_object(uid), stored.find_run("what is the yellow disc?")
    assert obj.box == box and [a.answer for a in run.previous_answers] == [first]
    assert run.previous_answers[0].alpha == 0.5 and not run.previous_answers[0].edited

    app.window.close()
    again = harness.build([], project=project_file)
    restored = again.workspace.sessions[again.workspace.find(img)]
    again.workspace.set_index(again.workspace.find(img))
    qtbot.waitUntil(lambda: restored.image is not None, timeout=WAIT_MS)
    aw = again.window
    assert restored.selected is None  # a reopened image selects nothing: every object is shown
    assert select_object_row(qtbot, again) == uid
    assert restored.prompts.box == box and aw.canvas.box_layer.box == box
    assert aw.canvas.editor.state.box == box  # the next edit starts from the box, it does not drop it
    assert aw.answer_panel.answer_label.text() == display_answer(second)
    previous = aw.answer_panel.previous_label
    assert previous.isVisibleTo(aw) and "Previous answer" in previous.text() and first in previous.text()
    assert "alpha 0.50" in previous.text() and "automatic points" in previous.text()
