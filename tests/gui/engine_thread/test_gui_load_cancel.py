"""Esc while the models load (issue 25): the load stops cleanly, the status bar says the models
are not loaded and how to load them, and asking a question (or Engine > Load models, or the
message's button) loads them again, instead of "choose a models folder"."""

from __future__ import annotations

import threading

import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest

from gui.engine_thread.requests import Cancelled, LoadModels
from gui.engine_thread.worker import default_pipeline_factory
from support.gui import WAIT_MS, harness_fixture, wait_shown, write_photo
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


class GatedFirstLoad:
    """The real pipeline factory, whose first call waits (in the engine thread) until the test
    opens the gate: the models are "loading" for as long as the test needs, without sleeps."""

    def __init__(self) -> None:
        self.started, self.gate, self.calls = threading.Event(), threading.Event(), 0

    def __call__(self, settings, models_dir):
        self.calls += 1
        pipe = default_pipeline_factory(settings, models_dir)
        if self.calls == 1:
            self.started.set()
            self.gate.wait(60)
        return pipe


def _escape_while_loading(harness, qtbot, tmp_path):
    factory = GatedFirstLoad()
    app = harness.build([write_photo(tmp_path / "photo.png")], wait_models=False, pipeline_factory=factory)
    wait_shown(qtbot, app)
    qtbot.waitUntil(factory.started.is_set, timeout=WAIT_MS)
    assert app.window.status.engine_label.text() == "models: loading…"
    with qtbot.waitSignal(app.client.cancelled, timeout=WAIT_MS,
                          check_params_cb=lambda m: isinstance(m.request, LoadModels)) as blocker:
        QTest.keyClick(app.window.canvas, QtCore.Qt.Key.Key_Escape)
        factory.gate.set()  # the engine thread goes on and finds the load cancelled
    assert isinstance(blocker.args[0], Cancelled) and not blocker.args[0].superseded
    return app, factory


def test_escape_while_loading_says_so_and_asking_loads_them_again(harness, qtbot, tmp_path):
    app, factory = _escape_while_loading(harness, qtbot, tmp_path)
    w = app.window
    label = w.status.engine_label.text()
    assert "loading" not in label and "not loaded" in label
    assert "Load models" in w.status.engine_label.toolTip()
    assert "Load models" in w.messages.current_text and w.messages.action_button.text() == "Load models"
    assert w.action_map["load_models"].isEnabled()
    # Asking a question, with real keys, loads the models again, then answers.
    edit = w.question_panel.edit
    edit.setFocus()
    QTest.keyClicks(edit, "what is the yellow disc?")
    with qtbot.waitSignal(app.controller.ask_finished, timeout=WAIT_MS) as blocker:
        QTest.keyClick(edit, QtCore.Qt.Key.Key_Return)
    assert blocker.args[1] is True, w.messages.history
    assert factory.calls == 2 and app.controller.models is not None
    assert not [t for _, t in w.messages.history if "models folder" in t]
    assert "not loaded" not in w.status.engine_label.text()


def test_after_escape_the_messages_button_loads_the_models(harness, qtbot, tmp_path):
    app, factory = _escape_while_loading(harness, qtbot, tmp_path)
    button = app.window.messages.action_button
    assert button.isVisible()
    with qtbot.waitSignal(app.controller.models_ready, timeout=WAIT_MS):
        QTest.mouseClick(button, QtCore.Qt.MouseButton.LeftButton)
    assert factory.calls == 2 and "loaded" in app.window.status.engine_label.text()
