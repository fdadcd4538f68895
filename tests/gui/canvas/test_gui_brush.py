"""Brush, eraser and clean-up in the window, with real mouse events and keys on real widgets:
exactly the pixels under the brush change, strokes survive a later point edit, undo and redo,
an accepted mask is un-accepted (undoably), the export and a reopened project have the
corrected mask. Screenshots of each tool go to /tmp/s8/ (looked at by hand)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets
from PySide6.QtTest import QTest

from engine.project import Project
from support.gui import (WAIT_MS, _move_event, ask_and_wait, click_image, drag_image, export_current_coco, select_object_row,
                         wait_strokes,
                         wait_shown,
                         harness_fixture, write_photo)
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse
from support.annotation import brush_reference as under_brush

SHOTS = Path("/tmp/s8")
Key, Mod = QtCore.Qt.Key, QtCore.Qt.KeyboardModifier


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def open_one(harness, qtbot, tmp_path, **kw):
    app = harness.build([write_photo(tmp_path / "photo.png")], **kw)
    wait_shown(qtbot, app)
    return app, app.workspace.current


def wait_mask(qtbot, app):
    with qtbot.waitSignal(app.controller.live.segmented, timeout=WAIT_MS,
                          check_params_cb=lambda session, shown: shown):
        pass


def stroke(qtbot, app, start, end, steps=6):
    """A real drag with the current tool; returns the stroke's points and radius as the brush sent them."""
    with qtbot.waitSignal(app.window.canvas.brush.stroke_finished, timeout=WAIT_MS) as blocker:
        drag_image(app.window.canvas, start, end, steps)
    wait_strokes(qtbot, app)
    points, radius, _ = blocker.args
    assert np.hypot(*np.subtract(points[0], start)) < 1.5 and np.hypot(*np.subtract(points[-1], end)) < 1.5
    return points, radius


def shoot(window, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert window.grab().save(str(SHOTS / name))


def test_brush_and_eraser_change_exactly_the_pixels_under_the_brush(harness, qtbot, tmp_path):
    app, session = open_one(harness, qtbot, tmp_path)
    w, c = app.window, app.window.canvas
    click_image(c, 96.5, 54.5)
    wait_mask(qtbot, app)
    model = session.model_mask.copy()
    QTest.keyClick(c, Key.Key_N)  # Brush tool
    assert c.editor.tool.value == "brush" and w.action_map["tool_brush"].isChecked()
    before = c.brush.radius
    for _ in range(3):
        QTest.keyClick(c, Key.Key_BracketRight)
    assert c.brush.radius > before
    QTest.keyClick(c, Key.Key_BracketLeft)
    radius = c.brush.radius
    # the cursor is a ring of the brush's radius in image pixels, where the mouse is
    QTest.mouseMove(c.viewport(), c.image_to_viewport(30, 30))
    qtbot.waitUntil(lambda: c.brush.ring.isVisible(), timeout=WAIT_MS)
    ring = c.brush.ring.rect()
    assert ring.width() == pytest.approx(2 * radius) and abs(ring.center().x() - 30) < 1.5

    points, r = stroke(qtbot, app, (20.0, 20.0), (70.0, 35.0))
    assert r == radius
    painted = under_brush(points, r, model.shape)
    assert np.array_equal(session.mask, model | painted)
    assert np.array_equal(c.mask_layer.mask, session.mask)  # shown
    assert session.listener.undo_stack.undoText() == "Brush stroke"

    QTest.keyClick(c, Key.Key_E)  # Eraser tool
    erased_points, r2 = stroke(qtbot, app, (96.0, 40.0), (96.0, 70.0))
    erased = under_brush(erased_points, r2, model.shape)
    assert np.array_equal(session.mask, (model | painted) & ~erased)
    assert erased.any() and (model & erased).any()  # it did erase some of the model's mask

    # undo and redo, one stroke at a time
    QTest.keyClick(w, Key.Key_Z, Mod.ControlModifier)
    assert np.array_equal(session.mask, model | painted)
    QTest.keyClick(w, Key.Key_Z, Mod.ControlModifier)
    assert np.array_equal(session.mask, model) and np.array_equal(c.mask_layer.mask, model)
    QTest.keyClick(w, Key.Key_Z, Mod.ControlModifier | Mod.ShiftModifier)
    QTest.keyClick(w, Key.Key_Z, Mod.ControlModifier | Mod.ShiftModifier)
    assert np.array_equal(session.mask, (model | painted) & ~erased)

    # a later point edit re-runs the decoder; the strokes apply to its new mask
    QTest.keyClick(c, Key.Key_V)
    click_image(c, 40.5, 90.5)
    wait_mask(qtbot, app)
    new_model = session.model_mask
    assert not np.array_equal(new_model, model)
    assert np.array_equal(session.mask, (new_model | painted) & ~erased)
    # Clear strokes: the model's mask again, one undo step
    w.action_map["clear_strokes"].trigger()
    assert np.array_equal(session.mask, new_model) and session.listener.undo_stack.undoText() == "Clear strokes"
    w.action_map["undo"].trigger()
    assert np.array_equal(session.mask, (new_model | painted) & ~erased)


def test_the_status_bar_shows_the_brush_radius_only_with_the_brush_and_eraser(harness, qtbot, tmp_path):
    app, session = open_one(harness, qtbot, tmp_path)
    w, c = app.window, app.window.canvas
    label = w.status.brush_label

    def said() -> str:  # what the status bar tells about the brush, shown or passing
        return (label.text() if label.isVisible() else "") + w.status.currentMessage()

    assert c.editor.tool.value == "points" and "Brush" not in said()  # the image sized the brush
    QTest.keyClick(c, Key.Key_BracketRight)  # [ and ] size the brush under any tool, silently
    assert "Brush" not in said()
    QTest.keyClick(c, Key.Key_N)  # Brush tool
    assert label.isVisible() and label.text() == f"Brush radius {c.brush.radius:.0f} px"
    QTest.keyClick(c, Key.Key_BracketRight)
    assert label.text() == f"Brush radius {c.brush.radius:.0f} px"
    QTest.keyClick(c, Key.Key_E)  # Eraser tool: the same brush
    assert label.isVisible() and label.text() == f"Brush radius {c.brush.radius:.0f} px"
    QTest.keyClick(c, Key.Key_B)  # Box tool
    assert "Brush" not in said()
    QTest.keyClick(c, Key.Key_BracketLeft)
    assert "Brush" not in said()


def test_screenshots_of_brush_and_eraser_in_use(harness, qtbot, tmp_path):
    app, session = open_one(harness, qtbot, tmp_path)
    w, c = app.window, app.window.canvas
    click_image(c, 96.5, 54.5)
    wait_mask(qtbot, app)
    for key, name, (start, end) in ((Key.Key_N, "brush", ((20, 20), (60, 40))),
                                    (Key.Key_E, "eraser", ((96, 35), (96, 75)))):
        QTest.keyClick(c, key)
        for _ in range(4):
            QTest.keyClick(c, Key.Key_BracketRight)
        vp = c.viewport()
        p0, p1 = c.image_to_viewport(*start), c.image_to_viewport(*end)
        QTest.mousePress(vp, QtCore.Qt.MouseButton.LeftButton, Mod.NoModifier, p0)
        for i in range(1, 7):
            QtWidgets.QApplication.sendEvent(vp, _move_event(p0 + (p1 - p0) * (i / 6), Mod.NoModifier))
            QTest.qWait(15)  # pyqtgraph drops moves closer than 10 ms (its mouse rate limit)
        QtWidgets.QApplication.processEvents()
        assert c.brush.drawing and len(c.brush.stroke_item.points) > 2  # drawn live, not applied yet
        shoot(w, f"{name}_during_stroke.png")
        before = session.mask.copy()
        QTest.mouseRelease(vp, QtCore.Qt.MouseButton.LeftButton, Mod.NoModifier, p1)
        wait_strokes(qtbot, app)
        assert not np.array_equal(session.mask, before) and not c.brush.stroke_item.points
        shoot(w, f"{name}_applied.png")


def test_clean_up_each_one_undo_step(harness, qtbot, tmp_path):
    app, session = open_one(harness, qtbot, tmp_path)
    w, c = app.window, app.window.canvas
    QTest.keyClick(c, Key.Key_N)
    c.brush.set_radius(25)
    click_image(c, 60, 60)  # a disc, painted on no model mask at all
    c.brush.set_radius(3)
    click_image(c, 140, 15)  # an island
    QTest.keyClick(c, Key.Key_E)
    c.brush.set_radius(4)
    wait_strokes(qtbot, app)  # (the disc made the object; the island is painted on it)
    click_image(c, 60, 60)  # a hole
    wait_strokes(qtbot, app)
    mask = session.mask.copy()
    assert not mask[60, 60] and mask[15, 140] and mask[60, 40]
    assert "painted" in w.candidates_panel.summary.text()
    steps = session.listener.undo_stack.index()

    w.action_map["cleanup_fill_holes"].trigger()
    assert session.mask[60, 60] and session.mask[15, 140] and session.listener.undo_stack.index() == steps + 1
    assert session.listener.undo_stack.undoText() == "Fill holes"
    shoot(w, "cleanup_fill_holes.png")
    w.action_map["undo"].trigger()
    assert np.array_equal(session.mask, mask)

    w.action_map["cleanup_largest"].trigger()
    assert not session.mask[15, 140] and not session.mask[60, 60] and session.mask[60, 40]
    w.action_map["undo"].trigger()

    def answer_dialog(value):
        dialog = next(d for d in QtWidgets.QApplication.topLevelWidgets()
                      if isinstance(d, QtWidgets.QInputDialog) and d.isVisible())
        dialog.setIntValue(value)
        dialog.accept()
    area = int(mask[:, 110:].sum())  # the island (the disc ends at x = 85)
    QtCore.QTimer.singleShot(0, lambda: answer_dialog(area))  # "smaller than area": the island stays
    w.action_map["cleanup_islands"].trigger()
    assert np.array_equal(session.mask, mask) and session.listener.undo_stack.index() == steps  # nothing to change
    assert "nothing to change" in w.messages.history[-1][1]
    QtCore.QTimer.singleShot(0, lambda: answer_dialog(area + 1))
    w.action_map["cleanup_islands"].trigger()
    assert not session.mask[15, 140] and session.listener.undo_stack.undoText().startswith("Remove islands")
    w.action_map["undo"].trigger()
    assert np.array_equal(session.mask, mask)


def test_a_stroke_unaccepts_undoably_and_export_and_reopen_have_the_corrected_mask(harness, qtbot, tmp_path):
    project_file = tmp_path / "work.qmask"
    img = write_photo(tmp_path / "photo.png")
    app = harness.build([img], project=project_file)
    wait_shown(qtbot, app)
    session = ask_and_wait(qtbot, app, "what is the yellow disc?")
    w, c = app.window, app.window.canvas
    QTest.keyClick(c, Key.Key_Space)
    assert session.accepted and w.action_map["accept"].isChecked()
    QTest.keyClick(c, Key.Key_N)
    points, r = stroke(qtbot, app, (10.0, 100.0), (50.0, 110.0))
    assert not session.accepted and not w.action_map["accept"].isChecked()
    w.action_map["undo"].trigger()
    assert session.accepted and w.action_map["accept"].isChecked() and np.array_equal(session.mask,
                                                                                      session.model_mask)
    w.action_map["redo"].trigger()
    QTest.keyClick(c, Key.Key_Space)
    assert session.accepted
    final, add = session.mask.copy(), session.corrections.add.copy()
    assert not np.array_equal(final, session.model_mask)

    ann, coco = export_current_coco(qtbot, app, tmp_path / "export")
    assert np.array_equal(coco.annToMask(ann).astype(bool), final)

    app.workspace.drain()
    with Project.open(project_file) as on_disk:
        actions = [e.action for e in on_disk.edits(on_disk.find_image(img).id)]
    assert "stroke" in actions and "undo stroke" in actions
    app.window.close()
    again = harness.build([], project=project_file)
    restored = again.workspace.sessions[again.workspace.find(img)]
    again.workspace.set_index(again.workspace.find(img))
    qtbot.waitUntil(lambda: restored.image is not None, timeout=WAIT_MS)
    select_object_row(qtbot, again)  # a reopened image selects nothing: its one object, from the panel
    assert np.array_equal(restored.mask, final) and np.array_equal(again.window.canvas.mask_layer.mask, final)
    assert np.array_equal(restored.corrections.add, add)
    click_image(again.window.canvas, 30.5, 30.5)  # a point edit after reopening: the stroke still applies
    wait_mask(qtbot, again)
    assert np.array_equal(restored.mask, (restored.model_mask | add) & ~restored.corrections.erase)
    assert restored.mask[under_brush(points, r, final.shape)].all()


def test_past_the_undo_budget_the_oldest_steps_go_with_a_status_message(harness, qtbot, tmp_path):
    app, session = open_one(harness, qtbot, tmp_path)
    w, c = app.window, app.window.canvas
    click_image(c, 96.5, 54.5)
    wait_mask(qtbot, app)
    QTest.keyClick(c, Key.Key_N)  # Brush tool
    c.brush.set_radius(4)
    stroke(qtbot, app, (10.0, 10.0), (40.0, 10.0))
    size = session.listener.undo_stack.command(session.listener.undo_stack.index() - 1).edit.nbytes
    assert 0 < size < 4 * 160 * 120 / 8  # the stroke's window only, a bit a pixel
    app.controller.edits.undo_budget = 2 * size + size // 2  # room for two strokes
    stroke(qtbot, app, (10.0, 40.0), (40.0, 40.0))
    assert session.listener.undo_stack.count() == 3 and "undone" not in w.status.currentMessage()
    before = session.mask.copy()
    stroke(qtbot, app, (10.0, 70.0), (40.0, 70.0))  # over: the point and both strokes before it go
    assert session.listener.undo_stack.count() == 1 and session.listener.undo_stack.undoText() == "Brush stroke"
    assert "the 3 oldest steps of photo.png can no longer be undone" in w.status.currentMessage()
    QTest.keyClick(w, Key.Key_Z, Mod.ControlModifier)
    assert np.array_equal(session.mask, before) and not w.action_map["undo"].isEnabled()


def test_a_stroke_is_worked_out_off_the_gui_thread_and_strokes_apply_in_order(harness, qtbot, tmp_path,
                                                                                  monkeypatch):
    """Issue 25: a 12 MP release held the window up to a second. The stroke's array work runs on
    the stroke thread (held there by the test, no sleeps) while the window goes on: the next
    stroke is drawn and an undo is done meanwhile; then both strokes apply, in order, on the layers
    as the undo left them."""
    import threading

    from engine.annotation.corrections import PaintStroke

    app, session = open_one(harness, qtbot, tmp_path)
    w, c = app.window, app.window.canvas
    click_image(c, 96.5, 54.5)
    wait_mask(qtbot, app)
    model = session.model_mask.copy()
    QTest.keyClick(c, Key.Key_N)  # Brush tool
    drawn = []  # each stroke's points and radius, as the brush sent them
    c.brush.stroke_finished.connect(lambda points, radius, _erase: drawn.append((points, radius)))
    drag_image(c, (20.0, 20.0), (70.0, 35.0))
    wait_strokes(qtbot, app)
    threads, entered, gate = [], threading.Event(), threading.Event()
    stage = PaintStroke.stage

    def held(edit, layers, shape):
        threads.append(threading.current_thread())
        entered.set()
        gate.wait(60)
        stage(edit, layers, shape)

    monkeypatch.setattr(PaintStroke, "stage", held)
    steps = session.listener.undo_stack.count()
    drag_image(c, (10.0, 60.0), (60.0, 60.0))
    qtbot.waitUntil(entered.is_set, timeout=WAIT_MS)
    assert c.brush.stroke_item.points and session.listener.undo_stack.count() == steps  # drawn; its work is elsewhere
    drag_image(c, (10.0, 90.0), (60.0, 90.0))  # the next stroke, while the first is worked out
    QTest.keyClick(w, Key.Key_Z, Mod.ControlModifier)  # and an undo: the first stroke's layers change under it
    assert session.listener.undo_stack.count() == steps and len(drawn) == 3
    gate.set()
    wait_strokes(qtbot, app)
    assert len(threads) == 2 and threading.main_thread() not in threads
    (first, r), (a, _), (b, _) = drawn
    painted_a, painted_b = under_brush(a, r, model.shape), under_brush(b, r, model.shape)
    undone = under_brush(first, r, model.shape) & ~model & ~painted_a & ~painted_b
    assert undone.any() and not (undone & session.mask).any()  # the undone stroke stays undone
    assert np.array_equal(session.mask, model | painted_a | painted_b)
    assert np.array_equal(c.mask_layer.mask, session.mask) and not c.brush.stroke_item.points
    QTest.keyClick(w, Key.Key_Z, Mod.ControlModifier)  # the strokes are undone last first
    assert np.array_equal(session.mask, model | painted_a)
