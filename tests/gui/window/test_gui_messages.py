"""The message banner floats over the canvas: a message coming or going (an info message fades
after a few seconds, possibly mid-stroke) never resizes the canvas, so the image stays put
under the cursor and a drag paints where the mouse went."""

from __future__ import annotations

import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest

from support.gui import click_image, harness_fixture, wait_shown, write_photo
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def test_a_message_coming_and_going_never_moves_the_image(harness, qtbot, tmp_path):
    app = harness.build([write_photo(tmp_path / "photo.png")])
    wait_shown(qtbot, app)
    w, c = app.window, app.window.canvas
    before = (c.size(), c.image_to_viewport(10.0, 10.0), c.image_to_viewport(40.0, 60.0))
    w.messages.show_message("A long message that wraps over two lines at this width " * 6, "info")
    qtbot.waitUntil(lambda: w.messages.isVisible())
    QTest.qWait(50)
    assert w.messages.geometry().intersects(c.geometry())  # over the canvas, not beside it
    assert (c.size(), c.image_to_viewport(10.0, 10.0), c.image_to_viewport(40.0, 60.0)) == before
    # the banner takes its own clicks: the close button dismisses it, nothing reaches the image
    close = [b for b in w.messages.findChildren(type(w.messages.action_button).__mro__[1]) if b.isVisible()
             and b is not w.messages.action_button][0]
    QTest.mouseClick(close, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.messages.isVisible())
    QTest.qWait(50)
    assert (c.size(), c.image_to_viewport(10.0, 10.0), c.image_to_viewport(40.0, 60.0)) == before
    assert not app.workspace.current.objects  # the click on ✕ made no object
    click_image(c, 10.0, 10.0)  # and the image is still where the mapping says
    qtbot.waitUntil(lambda: len(app.workspace.current.prompts.points) == 1)
    p = app.workspace.current.prompts.points[0]
    x, y = p.x, p.y
    assert abs(x - 10.0) < 1.5 and abs(y - 10.0) < 1.5
