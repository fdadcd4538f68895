"""The shown image's work comes first: switching images while a question runs shows the new
image at once (it is read on its own thread) and the old question stops between blocks, keeping
what it had finished."""

from __future__ import annotations

import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest

from support.gui import WAIT_MS, fast_settings, harness_fixture, write_photo
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def test_switching_images_shows_the_new_one_and_stops_the_old_question(harness, qtbot, tmp_path):
    a = write_photo(tmp_path / "a.png", seed=1)
    b = write_photo(tmp_path / "b.png", seed=2)
    slow = fast_settings(num_captions=400, max_caption_rounds=200, caption_batch_size=2)
    app = harness.build([a, b], settings=slow)
    ws, w = app.workspace, app.window
    qtbot.waitUntil(lambda: ws.current is not None and ws.current.image is not None, timeout=WAIT_MS)
    first = ws.current
    ended = []
    app.controller.ask_finished.connect(lambda session, done: ended.append((session, done)))
    app.controller.ask("what is in the picture?")
    stages = []
    app.client.progress.connect(lambda p: stages.append(p.stage))
    qtbot.waitUntil(lambda: "captions" in stages, timeout=WAIT_MS)  # the question is writing captions
    assert first.question_map is not None and first.answer is None
    QTest.keyClick(w.canvas, QtCore.Qt.Key.Key_D)  # next image
    second = ws.current
    assert second is not first
    # Shown while the old question would still have hundreds of captions to write.
    qtbot.waitUntil(lambda: second.image is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: bool(ended), timeout=WAIT_MS)
    assert ended == [(first, False)]  # stopped, not completed
    assert first.question_map is not None and first.answer is None  # the heat map it had is kept
    assert not any("Cancelled" in text for _level, text in w.messages.history)  # nobody pressed Cancel
    qtbot.waitUntil(lambda: not app.client.busy, timeout=WAIT_MS)  # the engine is free again
