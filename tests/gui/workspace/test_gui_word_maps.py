"""A question's per-word heat maps are kept with its run in the project (issue 25): going to
another image and back, or opening the project in a fresh window, shows the question's words
again, and a click on a word shows its own map."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest

from engine.project import Project
from support.gui import WAIT_MS, ask_and_wait, harness_fixture, wait_shown, write_photo
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse

QUESTION = "what is the yellow disc?"


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def _words_shown(app) -> list[str]:
    return [b.text() for b in app.window.answer_panel.token_buttons]


def _click_word(app, qtbot, word: str) -> np.ndarray:
    """A real click on the word's button; returns the heat layer's grid then."""
    buttons = app.window.answer_panel.token_buttons
    button = buttons[_words_shown(app).index(word)]
    QTest.mouseClick(button, QtCore.Qt.MouseButton.LeftButton)
    assert button.isChecked()
    return app.window.canvas.heat_layer.grid.copy()


def _same_map(shown: np.ndarray, word_map: np.ndarray) -> bool:
    # the heat layer shows a map divided by its peak; kept in the project to 1/255 of its range
    return np.allclose(shown, word_map / word_map.max(), atol=0.02)


def test_per_word_maps_come_back_after_switching_images_and_in_a_fresh_window(harness, qtbot, tmp_path):
    paths = [write_photo(tmp_path / f"{i}.png", seed=i) for i in range(2)]
    project = tmp_path / "work.qmask"
    app = harness.build(paths, project=project)
    wait_shown(qtbot, app)
    session = ask_and_wait(qtbot, app, QUESTION)
    live = dict(session.word_maps)
    assert {"yellow", "disc"} <= set(live)
    words = _words_shown(app)
    assert words[0] == "whole question" and "yellow" in words
    assert _same_map(_click_word(app, qtbot, "yellow"), live["yellow"])
    app.workspace.flush()
    with Project.open(project, read_only=True) as stored:  # kept with the run, in the project file
        (run,) = stored.get_image(stored.find_image(paths[0]).id).runs
        assert [w for w, _ in run.word_maps] == [w for w, _ in session.word_maps]

    # D, then A: another image, then this one again
    QTest.keyClick(app.window.canvas, QtCore.Qt.Key.Key_D)
    qtbot.waitUntil(lambda: app.workspace.current.path == paths[1] and app.workspace.current.image is not None,
                    timeout=WAIT_MS)
    assert _words_shown(app) == []
    QTest.keyClick(app.window.canvas, QtCore.Qt.Key.Key_A)
    qtbot.waitUntil(lambda: app.workspace.current.path == paths[0] and _words_shown(app) == words, timeout=WAIT_MS)
    assert _same_map(_click_word(app, qtbot, "disc"), live["disc"])
    app.window.close()

    # a fresh window on the project
    again = harness.build(paths, project=project)
    wait_shown(qtbot, again)
    qtbot.waitUntil(lambda: _words_shown(again) == words, timeout=WAIT_MS)
    assert _same_map(_click_word(again, qtbot, "yellow"), live["yellow"])
    assert _same_map(_click_word(again, qtbot, "disc"), live["disc"])
