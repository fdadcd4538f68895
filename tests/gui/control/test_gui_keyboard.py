"""The keyboard's way through the window (issue 25), with real keys sent where the focus is:
a focused slider or spin box keeps PgUp/PgDn, asking hands the keys back to the canvas, `/` and
Esc go to and from the question box, Tab runs question -> Ask -> canvas -> panels, and a folder
with one question takes the keys the README says."""

from __future__ import annotations

import pytest
from PySide6 import QtCore, QtWidgets
from PySide6.QtTest import QTest

from engine.project import Project
from support.gui import WAIT_MS, fast_settings, harness_fixture, wait_shown, write_photo
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse

Key, Mod = QtCore.Qt.Key, QtCore.Qt.KeyboardModifier
QUESTION = "where are the discs?"


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


class Keyboard:
    """Presses keys where the focus is, as a person's keyboard does, and counts them."""

    def __init__(self) -> None:
        self.pressed: list[tuple] = []

    @staticmethod
    def focus() -> QtWidgets.QWidget:
        widget = QtWidgets.QApplication.focusWidget()
        assert widget is not None, "no widget has the keyboard"
        return widget

    def press(self, key, modifiers=Mod.NoModifier) -> None:
        self.pressed.append((key, modifiers))
        QTest.keyClick(self.focus(), key, modifiers)

    def type(self, text: str) -> None:
        """Typing a text (not counted as keys: the question is the annotator's own words)."""
        QTest.keyClicks(self.focus(), text)


def _folder(harness, qtbot, tmp_path, n: int = 3, **settings):
    folder = tmp_path / "photos"
    folder.mkdir()
    for k in range(n):
        write_photo(folder / f"photo{k}.png", seed=k)
    app = harness.build([folder], settings=fast_settings(**settings) if settings else None)
    wait_shown(qtbot, app)
    return app


def _ask_with(qtbot, app, press) -> None:
    with qtbot.waitSignal(app.controller.ask_finished, timeout=WAIT_MS) as blocker:
        press()
    assert blocker.args[1], app.window.messages.history


def test_a_focused_slider_or_spin_box_keeps_page_up_and_down(harness, qtbot, tmp_path):
    app = _folder(harness, qtbot, tmp_path)
    w, ws, keys = app.window, app.workspace, Keyboard()
    assert keys.focus() is w.canvas  # the window opens on the image
    keys.press(Key.Key_PageDown)  # on the canvas, PgDn is the next image
    assert ws.index == 1
    wait_shown(qtbot, app)
    slider = w.answer_panel.alpha_slider
    QTest.mouseClick(slider, QtCore.Qt.MouseButton.LeftButton, pos=slider.rect().center())  # the handle
    assert keys.focus() is slider
    before = slider.value()
    keys.press(Key.Key_PageUp)
    keys.press(Key.Key_PageUp)
    assert slider.value() == before + 2 * slider.pageStep() and ws.index == 1  # the slider moved, not the image
    keys.press(Key.Key_PageDown)
    assert slider.value() == before + slider.pageStep() and ws.index == 1
    # the Polygon tool's tolerance: PgUp steps it, Enter ends the edit and does not ask
    asked = []
    w.question_panel.ask_requested.connect(asked.append)
    keys.press(Key.Key_G)
    box = w.tolerance_box
    qtbot.waitUntil(box.isVisible, timeout=WAIT_MS)  # laid out into the tool bar
    QTest.mouseClick(box.lineEdit(), QtCore.Qt.MouseButton.LeftButton)
    assert keys.focus() is box
    value = box.value()
    keys.press(Key.Key_PageUp)
    assert box.value() == pytest.approx(value + 10 * box.singleStep()) and ws.index == 1
    keys.press(Key.Key_Return)
    assert asked == [] and keys.focus() is w.canvas
    keys.press(Key.Key_PageUp)  # back on the canvas: the previous image
    assert ws.index == 0


def test_enter_gives_the_keys_back_and_slash_and_escape_move_between_question_and_image(harness, qtbot, tmp_path):
    app = _folder(harness, qtbot, tmp_path, n=1, num_captions=400, max_caption_rounds=200,
                  caption_batch_size=2)  # time to press keys while the question is answered
    w, keys = app.window, Keyboard()
    edit = w.question_panel.edit
    stages, ended = [], []
    app.client.progress.connect(lambda p: stages.append(p.stage))
    app.controller.ask_finished.connect(lambda _s, done: ended.append(done))
    keys.press(Key.Key_Slash)
    assert keys.focus() is edit
    keys.type(QUESTION)
    keys.press(Key.Key_Return)
    assert keys.focus() is w.canvas  # asked: the keys act on the image again
    qtbot.waitUntil(lambda: "captions" in stages, timeout=WAIT_MS)  # the proposals are in
    session = app.workspace.current
    uid = session.selected
    assert uid is not None and not session.objects[uid].record.accepted
    keys.press(Key.Key_Space)  # accepts the selected proposal; it is not typed into the question
    assert session.objects[uid].record.accepted and edit.text() == QUESTION
    # Ctrl+L (or `/`) goes to the question, selected; Esc there goes back and does not cancel
    keys.press(Key.Key_L, Mod.ControlModifier)
    assert keys.focus() is edit and edit.selectedText() == QUESTION
    keys.press(Key.Key_Escape)
    assert keys.focus() is w.canvas and app.client.busy and not ended
    keys.press(Key.Key_Escape)  # on the image, Esc cancels
    qtbot.waitUntil(lambda: bool(ended), timeout=WAIT_MS)
    assert ended == [False]
    keys.press(Key.Key_Slash)
    keys.type("what is yellow?")  # the selected question is replaced
    assert edit.text() == "what is yellow?"


def test_tab_goes_from_the_question_to_ask_to_the_canvas_then_through_the_panels(harness, qtbot, tmp_path):
    app = _folder(harness, qtbot, tmp_path, n=1)
    w, keys = app.window, Keyboard()
    q = w.question_panel
    keys.press(Key.Key_Slash)
    keys.type(QUESTION)
    _ask_with(qtbot, app, lambda: keys.press(Key.Key_Return))  # (the Mask panel's controls are enabled)
    keys.press(Key.Key_Slash)
    seen = [keys.focus()]
    for _ in range(40):
        keys.press(Key.Key_Tab)
        if keys.focus() is q.edit:
            break
        seen.append(keys.focus())
    assert keys.focus() is q.edit, "Tab never came back round to the question box"
    assert seen[:4] == [q.edit, q.ask_button, q.instances_box, w.canvas]
    panels = [w.image_list, w.objects_panel, w.candidates_panel, w.answer_panel]
    reached = [next(i for i, p in enumerate(panels) if p.isAncestorOf(widget)) for widget in seen[4:]
               if any(p.isAncestorOf(widget) for p in panels)]
    assert reached == sorted(reached) and set(reached) == set(range(len(panels)))  # each panel in turn
    assert w.objects_panel.view in seen  # and the Objects table lets Tab go on


def test_one_question_over_a_folder_takes_two_keys_an_image(harness, qtbot, tmp_path):
    """The README's count: `/`, the question and Enter on the first image; then Shift+D (accept
    every proposed object, next image) and Enter on each next one: 2 keys an image."""
    app = _folder(harness, qtbot, tmp_path, n=3)
    ws, keys = app.workspace, Keyboard()
    sessions = []
    keys.press(Key.Key_Slash)
    keys.type(QUESTION)
    for k in range(3):
        if k:
            wait_shown(qtbot, app)
            assert app.window.question_panel.edit.text() == QUESTION  # the last question, ready to ask
        _ask_with(qtbot, app, lambda: keys.press(Key.Key_Return))
        session = ws.current
        assert session.objects and all(o.record.proposal for o in session.objects.values())
        sessions.append(session)
        keys.press(Key.Key_D, Mod.ShiftModifier)  # accept them all, next image
        assert session.done
    assert len(set(sessions)) == 3 and ws.index == 2
    assert len(keys.pressed) == 1 + 2 * 3  # README: "2 keys an image" (and `/` once)
    ws.drain()
    with Project.open(app.project.path) as project:
        for session in sessions:
            stored = project.find_image(session.path)
            assert stored.objects and all(o.accepted for o in stored.objects)
