"""The whole window on tiny random models: ask, edit points with real mouse events, undo, alpha,
candidates, re-run the answer, shortcuts and overlays actually visible on screen."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest

from engine.imaging import fusion
from engine.prompts import NEGATIVE, POSITIVE
from gui.window.actions import ACTIONS
from gui.window.panels.answer_panel import display_answer
from gui.canvas.qt_images import qimage_to_rgb
from support.gui import WAIT_MS, ask_and_wait, click_image, drag_image, write_photo, harness_fixture, wait_shown
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def wait_mask(qtbot, app):
    """Wait for the live decoder's reply for the current prompts."""
    with qtbot.waitSignal(app.controller.live.segmented, timeout=WAIT_MS,
                          check_params_cb=lambda session, shown: shown):
        pass
    return app.workspace.current.mask.copy()


def open_one(harness, qtbot, tmp_path, **kw):
    img = write_photo(tmp_path / "photo.png")
    app = harness.build([img], **kw)
    wait_shown(qtbot, app)
    return app


def test_ask_fills_every_panel_and_layer(harness, qtbot, tmp_path):
    app = open_one(harness, qtbot, tmp_path)
    w = app.window
    session = ask_and_wait(qtbot, app, "what is the yellow thing?")
    # heat map stretched over the image, automatic points, a mask, the answer
    assert w.canvas.heat_layer.grid is not None and w.canvas.heat_layer.isVisible()
    assert w.canvas.heat_layer.sceneBoundingRect() == w.canvas.image_layer.sceneBoundingRect()
    assert session.auto_points and all(p.source == "auto" and p.label == POSITIVE for p in session.prompts.points)
    assert len(w.canvas.points_layer.markers) == len(session.auto_points)
    assert "of the map's peak" in w.canvas.points_layer.markers[0].toolTip()  # its heat, in words
    assert session.mask is not None and w.canvas.mask_layer.mask is session.mask
    assert session.answer is not None and w.answer_panel.answer_label.text() == display_answer(session.answer.answer)
    assert w.answer_panel.captions_list.count() == len(session.captions) > 0
    assert "match" in w.answer_panel.match_bar.format() and "%" in w.answer_panel.match_bar.format()
    # three candidates with their predicted IoU; the best one chosen
    enabled = [b for b in w.candidates_panel.buttons if b.isEnabled()]
    assert len(enabled) == 3 and "IoU" in enabled[0].text() and enabled[0].isChecked()
    # status bar: device, preset and the random-weights badge
    assert "cpu" in w.status.engine_label.text() and "base" in w.status.engine_label.text()
    assert w.status.random_badge.isVisibleTo(w)
    assert not w.status.cancel_button.isVisibleTo(w)  # idle
    # a word of the question shows its own map
    words = [b.text() for b in w.answer_panel.token_buttons]
    assert words[0] == "whole question" and "yellow" in words
    question_grid = w.canvas.heat_layer.grid.copy()
    w.answer_panel.token_buttons[words.index("yellow")].click()
    word_map = dict(session.word_maps)["yellow"]
    assert np.allclose(w.canvas.heat_layer.grid, word_map / word_map.max())
    w.answer_panel.token_buttons[0].click()
    assert np.allclose(w.canvas.heat_layer.grid, question_grid)
    # the fused map is engine.imaging.fusion.fuse of the heat map and the chosen mask
    assert np.allclose(session.fused_map, fusion.fuse(session.question_map, session.mask, session.alpha))
    assert w.image_list.list.item(0).data(QtCore.Qt.ItemDataRole.UserRole) == "answered"


def test_clicks_edit_points_mask_follows_and_undo_restores(harness, qtbot, tmp_path):
    app = open_one(harness, qtbot, tmp_path)
    w, c = app.window, app.window.canvas
    session = app.workspace.current
    assert session.mask is None
    click_image(c, 96.5, 54.5)  # left click: positive
    mask1 = wait_mask(qtbot, app)
    assert session.prompts.points[0].label == POSITIVE and session.prompts.points[0].source == "user"
    assert np.array_equal(c.mask_layer.mask, mask1)
    assert len(session.segmentation.candidates) == 3
    click_image(c, 30.5, 100.5, QtCore.Qt.MouseButton.RightButton)  # right click: negative
    mask2 = wait_mask(qtbot, app)
    assert [p.label for p in session.prompts.points] == [POSITIVE, NEGATIVE]
    assert not np.array_equal(mask1, mask2), "a new prompt must change the mask"
    # Ctrl+Z: back to one point and the first mask, at once (cached), no decoder call needed
    sent = app.controller.live.sent
    QTest.keyClick(w, QtCore.Qt.Key.Key_Z, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert len(session.prompts.points) == 1 and np.array_equal(session.mask, mask1)
    assert np.array_equal(c.mask_layer.mask, mask1) and app.controller.live.sent == sent
    QTest.keyClick(w, QtCore.Qt.Key.Key_Z, QtCore.Qt.KeyboardModifier.ControlModifier
                   | QtCore.Qt.KeyboardModifier.ShiftModifier)
    assert len(session.prompts.points) == 2 and np.array_equal(session.mask, mask2)
    # click on the negative point removes it; drag the positive one (mask follows while dragging)
    click_image(c, 30.5, 100.5)
    assert len(session.prompts.points) == 1
    qtbot.waitUntil(lambda: session.mask is not None and np.array_equal(session.mask, mask1), timeout=WAIT_MS)
    drag_image(c, (96.5, 54.5), (60.0, 40.0))
    qtbot.waitUntil(lambda: session.segmentation is not None and session.segmentation.points[0].x < 70,
                    timeout=WAIT_MS)
    assert session.listener.undo_stack.undoText() == "Move point 1"
    # Delete clears the prompts and the mask; undo brings them back
    QTest.keyClick(w, QtCore.Qt.Key.Key_Delete)
    assert session.prompts.empty and session.mask is None and c.mask_layer.mask is None
    w.action_map["undo"].trigger()
    assert len(session.prompts.points) == 1 and session.mask is not None
    # the project record follows every edit
    assert session.record is not None and len(session.record.points) == 1
    assert session.record.mask_source == "user"


def test_alpha_candidates_rerun_and_shortcuts(harness, qtbot, tmp_path):
    app = open_one(harness, qtbot, tmp_path)
    w = app.window
    session = ask_and_wait(qtbot, app)
    stack = session.listener.undo_stack
    # fusion alpha: live re-fuse (no model call), one undo step per drag
    before = session.fused_map.copy()
    slider = w.answer_panel.alpha_slider
    slider.setSliderDown(True)
    for v in (40, 30, 20):
        slider.setValue(v)
    slider.setSliderDown(False)
    assert session.alpha == 0.2 and stack.undoText() == "Fusion alpha 0.20"
    assert np.allclose(session.fused_map, fusion.fuse(session.question_map, session.mask, 0.2))
    assert not np.allclose(session.fused_map, before)
    assert np.allclose(w.canvas.fused_layer.grid, session.fused_map / session.fused_map.max())
    assert w.answer_panel.stale_label.isVisibleTo(w)
    stack.undo()
    assert session.alpha == 0.5 and slider.value() == 50 and np.allclose(session.fused_map, before)
    stack.redo()
    # choose candidate 3, undo
    best = session.mask.copy()
    w.candidates_panel.buttons[2].click()
    assert session.chosen == 2 and np.array_equal(session.mask, session.segmentation.candidates[2].mask)
    assert np.array_equal(w.canvas.mask_layer.mask, session.mask)
    stack.undo()
    assert session.chosen == 0 and np.array_equal(session.mask, best)
    # re-run the answer on the current fused map; the previous answer stays visible
    first = session.answer
    with qtbot.waitSignal(app.controller.answer_ready, timeout=WAIT_MS):
        w.answer_panel.rerun_button.click()
    assert session.previous_answer is first and session.answer.alpha == 0.2
    assert w.answer_panel.previous_label.isVisibleTo(w) and "Previous answer" in w.answer_panel.previous_label.text()
    assert not w.answer_panel.stale_label.isVisibleTo(w)
    # view shortcuts
    canvas = w.canvas
    w.activateWindow()
    canvas.setFocus()
    QTest.keyClick(canvas, QtCore.Qt.Key.Key_H)
    assert not canvas.heat_layer.isVisible()
    QTest.keyClick(canvas, QtCore.Qt.Key.Key_M)
    assert not canvas.mask_layer.isVisible()
    QTest.keyClick(canvas, QtCore.Qt.Key.Key_U)
    assert canvas.fused_layer.isVisible()
    canvas.zoom(3.0)
    QTest.keyClick(canvas, QtCore.Qt.Key.Key_F)
    rect = canvas.vb.viewRect()
    assert rect.width() >= 160 * 0.99 or rect.height() >= 120 * 0.99
    # typing in the question box does not trigger single-letter shortcuts
    w.question_panel.edit.setFocus()
    QTest.keyClicks(w.question_panel.edit, "hm")
    assert w.question_panel.edit.text().endswith("hm") and not canvas.heat_layer.isVisible()
    # R resets to the automatic points
    canvas.setFocus()
    click_image(canvas, 20.5, 20.5)
    assert len(session.prompts.points) == len(session.auto_points) + 1
    QTest.keyClick(canvas, QtCore.Qt.Key.Key_R)
    assert session.prompts.points == session.auto_points


def test_overlays_are_visible_on_screen(harness, qtbot, tmp_path):
    app = open_one(harness, qtbot, tmp_path)
    w, c = app.window, app.window.canvas
    session = ask_and_wait(qtbot, app)
    w.action_map["toggle_heat"].setChecked(False)
    qtbot.wait(50)
    with_mask = qimage_to_rgb(c.grab().toImage()).astype(int)
    w.action_map["toggle_mask"].setChecked(False)
    qtbot.wait(50)
    without = qimage_to_rgb(c.grab().toImage()).astype(int)
    changed = np.abs(with_mask - without).sum(axis=2) > 30
    # where the mask is (sampled at mask pixels well inside it) the screen differs; far from it, not
    mask = session.mask
    ys, xs = np.nonzero(mask)
    pick = np.random.default_rng(0).choice(len(xs), size=min(200, len(xs)), replace=False)
    dpr = c.devicePixelRatioF()
    inside = [changed[int(p.y() * dpr), int(p.x() * dpr)]
              for p in (c.image_to_viewport(xs[i] + 0.5, ys[i] + 0.5) for i in pick)]
    assert np.mean(inside) > 0.8
    far = 0
    for y in range(0, 120, 4):
        for x in range(0, 160, 4):
            if not mask[max(0, y - 3):y + 4, max(0, x - 3):x + 4].any():
                p = c.image_to_viewport(x + 0.5, y + 0.5)
                far += changed[int(p.y() * dpr), int(p.x() * dpr)]
    assert far == 0
    # and the heat map changes pixels where it is strong
    w.action_map["toggle_heat"].setChecked(True)
    qtbot.wait(50)
    with_heat = qimage_to_rgb(c.grab().toImage()).astype(int)
    grid = c.heat_layer.grid
    r, col = np.unravel_index(np.argmax(grid), grid.shape)
    gy, gx = grid.shape
    p = c.image_to_viewport((col + 0.5) * 160 / gx, (r + 0.5) * 120 / gy)
    assert np.abs(with_heat - without)[int(p.y() * dpr), int(p.x() * dpr)].sum() > 30


def test_help_lists_every_shortcut(harness, qtbot, tmp_path):
    app = harness.build([], start=False)
    app.window.action_map["help"].trigger()
    text = app.files.help_dialog.browser.toPlainText()
    for spec in ACTIONS:
        assert spec.text in text
        for key in spec.shortcuts:
            assert key in text
    assert app.files.help_dialog.isVisible() and not app.files.help_dialog.isModal()


def test_enter_asks_once_and_escape_cancels(harness, qtbot, tmp_path):
    app = open_one(harness, qtbot, tmp_path)
    w = app.window
    asked = []
    w.question_panel.ask_requested.connect(asked.append)
    edit = w.question_panel.edit
    edit.setFocus()
    edit.setText("what is the yellow disc?")
    with qtbot.waitSignal(app.controller.ask_finished, timeout=WAIT_MS):
        QTest.keyClick(edit, QtCore.Qt.Key.Key_Return)
    assert asked == ["what is the yellow disc?"]
    # Enter in the class box gives the selected object (the question's proposal) its class, it does not ask
    assert app.workspace.current.selected is not None
    label = w.candidates_panel.class_box.lineEdit()
    label.setFocus()
    QTest.keyClicks(label, "disc")
    QTest.keyClick(label, QtCore.Qt.Key.Key_Return)
    assert asked == ["what is the yellow disc?"] and app.workspace.current.category == "disc"
    assert "disc" in app.workspace.classes()  # a new name joins the class list
    # an empty question gives a hint, not a request
    edit.setText("  ?  ")
    w.question_panel.ask_button.click()
    assert len(asked) == 1 and "Type a question" in w.question_panel.hint.text()


def test_box_prompt_from_ctrl_drag_segments_with_the_box(harness, qtbot, tmp_path):
    app = open_one(harness, qtbot, tmp_path)
    c = app.window.canvas
    session = app.workspace.current
    drag_image(c, (60.0, 20.0), (140.0, 100.0), modifiers=QtCore.Qt.KeyboardModifier.ControlModifier)
    assert session.prompts.box is not None and not session.prompts.points
    mask = wait_mask(qtbot, app)
    assert session.segmentation.box is not None and mask.shape == (120, 160)
    assert session.listener.undo_stack.undoText() == "Draw box (new object)"  # nothing was selected: a new object
    app.window.action_map["tool_box"].trigger()
    assert c.editor.tool.value == "box"
    app.window.action_map["tool_points"].trigger()
    assert c.editor.tool.value == "points"


def test_shown_image_is_encoded_before_the_question(harness, qtbot, tmp_path):
    first = write_photo(tmp_path / "first.png", seed=1)
    second = write_photo(tmp_path / "second.png", seed=2)
    app = harness.build([first, second])
    app.controller.prefetch.ahead = False  # the shown image only (the next: tests/gui/control/test_gui_prefetch_next.py)
    pipe = app.client.worker.pipeline
    every_once = {"itm": 1, "caption": 1, "efficient_sam": 1}
    # Shown and idle: the worker encoded it without being asked (EfficientSAM, ITM, caption).
    qtbot.waitUntil(lambda: pipe.encode_count == every_once and not app.client.busy, timeout=WAIT_MS)
    assert app.controller.prefetch.sent == 1
    ask_and_wait(qtbot, app, "what is the yellow thing?")
    assert pipe.encode_count == every_once  # the question ran no encoder
    # The next image is encoded when it is shown; nothing was said about the background work.
    app.workspace.step(+1)
    qtbot.waitUntil(lambda: pipe.encode_count == {k: 2 for k in every_once} and not app.client.busy,
                    timeout=WAIT_MS)
    assert not [m for m in app.window.messages.history if "encod" in str(m).lower()]
    # Back to the first one: cached, so its job finds nothing to do.
    app.workspace.step(-1)
    qtbot.waitUntil(lambda: not app.client.busy, timeout=WAIT_MS)
    assert pipe.encode_count == {k: 2 for k in every_once} and app.controller.prefetch.sent == 3


def test_encoding_when_shown_can_be_turned_off(harness, qtbot, tmp_path):
    first = write_photo(tmp_path / "first.png", seed=3)
    second = write_photo(tmp_path / "second.png", seed=4)
    app = harness.build([first, second])
    app.controller.prefetch.ahead = False  # the shown image only
    pipe = app.client.worker.pipeline
    qtbot.waitUntil(lambda: pipe.encode_count["itm"] == 1 and not app.client.busy, timeout=WAIT_MS)
    toggle = app.window.action_map["encode_on_show"]
    assert toggle.isCheckable() and toggle.isChecked()
    toggle.setChecked(False)
    app.workspace.step(+1)
    qtbot.waitUntil(lambda: app.workspace.current.image is not None and not app.client.busy, timeout=WAIT_MS)
    qtbot.wait(200)
    assert pipe.encode_count["itm"] == 1 and app.controller.prefetch.sent == 1
    toggle.setChecked(True)  # on again: the image on screen is encoded now
    qtbot.waitUntil(lambda: pipe.encode_count["itm"] == 2 and not app.client.busy, timeout=WAIT_MS)
