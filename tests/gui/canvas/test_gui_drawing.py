"""One owner draws the prompt points and box (the presenter, from the session's state), also
during a drag; the point editor draws only its own rubber band."""

from __future__ import annotations

import pytest
from PySide6 import QtCore, QtWidgets
from PySide6.QtTest import QTest

from support.gui import _move_event, ask_and_wait, harness_fixture, write_photo, wait_shown
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def test_a_dragged_point_is_drawn_from_the_session_as_it_moves(harness, qtbot, tmp_path):
    app = harness.build([write_photo(tmp_path / "a.png")])
    wait_shown(qtbot, app)
    session = ask_and_wait(qtbot, app)
    canvas = app.window.canvas
    p = session.prompts.points[0]
    vp = canvas.viewport()
    start = canvas.image_to_viewport(p.x, p.y)
    target_x = p.x - 40 if p.x > 80 else p.x + 40  # well inside the 160 x 120 photo
    end = canvas.image_to_viewport(target_x, p.y)
    QTest.mousePress(vp, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, start)
    for i in range(1, 5):
        QtWidgets.QApplication.sendEvent(vp, _move_event(start + (end - start) * (i / 4),
                                                         QtCore.Qt.KeyboardModifier.NoModifier))
        QTest.qWait(5)
    assert canvas.editor.dragging
    drawn = canvas.points_layer.points[0]
    assert drawn == session.prompts.points[0]  # what is drawn is the session's (previewed) state
    assert abs(drawn.x - p.x) > 25  # and it moved with the mouse
    assert canvas.drag_layer.rect().isEmpty() or not canvas.drag_layer.isVisible()  # no rubber band for a move
    QTest.mouseRelease(vp, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, end)
    assert not canvas.editor.dragging and canvas.points_layer.points == session.prompts.points
