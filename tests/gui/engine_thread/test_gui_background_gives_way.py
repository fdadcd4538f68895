"""Work the user did not ask for gives way (issue 25): while the engine encodes an image in the
background (the shown one, or the next one ahead), Re-run answer stays enabled, and the user's
request runs before that encoding ends (gui/engine_thread/worker.py's queue, gui/control/prefetch.py)."""

from __future__ import annotations

import threading

import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest

from engine.results import AnswerResult
from gui.engine_thread.requests import Answer, EncodeImage, EncodeNext, Finished, Reply
from support.gui import WAIT_MS, ask_and_wait, harness_fixture, wait_shown, write_photo
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


class EncoderGate:
    """A forward hook on EfficientSAM's first image-encoder block that holds the engine thread
    there, once, while it runs a background request of ``kind``: that encoding is "in progress"
    until the test opens the gate (no sleeps)."""

    def __init__(self, app, kind) -> None:
        self.worker, self.kind = app.client.worker, kind
        self.entered, self.gate = threading.Event(), threading.Event()
        blocks = self.worker.pipeline.manager.sam().model.image_encoder.blocks
        self.hook = blocks[0].register_forward_hook(self._hold)

    def _hold(self, *_args) -> None:
        if isinstance(self.worker._current, self.kind) and not self.entered.is_set():
            self.entered.set()
            self.gate.wait(60)

    def open(self) -> None:
        self.gate.set()
        self.hook.remove()


class Order:
    """The order in which the answer and the background job's end reach the window."""

    def __init__(self, app, kind) -> None:
        self.events: list[str] = []
        app.client.reply.connect(lambda r: self.events.append("answer") if isinstance(r.request, Answer)
                                 and isinstance(r.payload, AnswerResult) else None)
        app.client.finished.connect(lambda m: self.events.append("encoded") if isinstance(m.request, kind) else None)


def _build_without_encoding(harness, qtbot, paths, project=None):
    """The app with Engine > "Encode images when shown" off, so the test starts the encoding."""
    app = harness.build(paths, project=project, start=False)
    app.window.action_map["encode_on_show"].setChecked(False)
    with qtbot.waitSignal(app.controller.models_ready, timeout=WAIT_MS):
        app.start(check_models=False)
    wait_shown(qtbot, app)
    return app


def test_rerun_answer_is_enabled_and_runs_while_the_next_image_is_encoded(harness, qtbot, tmp_path):
    paths = [write_photo(tmp_path / f"{i}.png", seed=i) for i in range(2)]
    app = _build_without_encoding(harness, qtbot, paths)
    ask_and_wait(qtbot, app)
    gate, order = EncoderGate(app, EncodeNext), Order(app, EncodeNext)
    app.window.action_map["encode_on_show"].setChecked(True)  # the shown image (cached), then the next one
    try:
        qtbot.waitUntil(gate.entered.is_set, timeout=WAIT_MS)  # the next image is being encoded
        button = app.window.answer_panel.rerun_button
        assert app.client.busy and button.isEnabled()
        with qtbot.waitSignal(app.controller.answer_ready, timeout=WAIT_MS):
            QTest.mouseClick(button, QtCore.Qt.MouseButton.LeftButton)
            gate.open()
    finally:
        gate.open()
    assert order.events[:1] == ["answer"]  # before the background encoding ended, if it did


def test_rerun_answer_goes_before_encoding_the_shown_image(harness, qtbot, tmp_path):
    photo = write_photo(tmp_path / "photo.png")
    project = tmp_path / "work.qmask"
    first = _build_without_encoding(harness, qtbot, [photo], project)
    ask_and_wait(qtbot, first)
    first.window.close()
    # A fresh window on the project: the run is back, none of the image's encoders are cached.
    app = _build_without_encoding(harness, qtbot, [photo], project)
    assert app.workspace.current.current_run is not None
    gate, order = EncoderGate(app, EncodeImage), Order(app, EncodeImage)
    app.window.action_map["encode_on_show"].setChecked(True)
    try:
        qtbot.waitUntil(gate.entered.is_set, timeout=WAIT_MS)
        assert app.window.answer_panel.rerun_button.isEnabled()
        with qtbot.waitSignal(app.controller.answer_ready, timeout=WAIT_MS):
            QTest.keyClick(app.window.canvas, QtCore.Qt.Key.Key_R, QtCore.Qt.KeyboardModifier.ControlModifier)
            gate.open()
    finally:
        gate.open()
    assert order.events[:1] == ["answer"]
    # The encoding that gave way is sent again once the engine is idle, and ends.
    qtbot.waitUntil(lambda: "encoded" in order.events, timeout=WAIT_MS)
