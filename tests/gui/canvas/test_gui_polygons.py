"""The Polygon tool in the real window: real key presses and mouse events on the canvas, the
mask written back as one undo step per gesture, holes kept, and the COCO export reading it back."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest

from engine.imaging.polygons import shapes_to_mask
from gui.canvas.point_editing import Tool
from support.gui import (WAIT_MS, ask_and_wait, click_image, drag_image, export_current_coco, harness_fixture, wait_shown,
                         write_photo)
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse

Key, Btn = QtCore.Qt.Key, QtCore.Qt.MouseButton


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def frame_with_hole() -> np.ndarray:
    """[120, 160]: a frame covering pixels x 40..119, y 30..89 with a hole x 60..89, y 50..69."""
    m = np.zeros((120, 160), bool)
    m[30:90, 40:120] = True
    m[50:70, 60:90] = False
    return m


def polygon_app(harness, qtbot, tmp_path):
    """The photo asked about (a record to export), its mask set to the frame, the Polygon tool on (G)."""
    img = write_photo(tmp_path / "photo.png")
    app = harness.build([img])
    wait_shown(qtbot, app)
    session = ask_and_wait(qtbot, app)
    app.controller.edits.replace_mask(frame_with_hole(), "Set mask")
    assert np.array_equal(session.mask, frame_with_hole())
    layer = app.window.canvas.polygons
    with qtbot.waitSignal(layer.shapes_shown, timeout=WAIT_MS):
        QTest.keyClick(app.window.canvas, Key.Key_G)
    assert app.window.canvas.editor.tool is Tool.POLYGON and app.window.action_map["tool_polygon"].isChecked()
    assert app.window.tolerance_action.isVisible()
    (shape,) = layer.shapes
    assert len(shape.outer) == 4 and len(shape.holes) == 1 and len(shape.holes[0]) == 4
    return app, session, layer


def double_click_image(canvas, x: float, y: float) -> None:
    """A real double click at image pixel (x, y), through the window as the platform sends it
    (press, release, double-click, release; QTest's widget overload sends the double-click alone)."""
    window = canvas.window()
    pos = canvas.viewport().mapTo(window, canvas.image_to_viewport(x, y))
    QTest.mouseDClick(window.windowHandle(), Btn.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, pos)


def vertex_near(layer, xy, ring=0):
    r = layer.shapes[0].outer if ring == 0 else layer.shapes[0].holes[ring - 1]
    return int(np.argmin(np.hypot(*(r - xy).T)))


def test_polygon_vertex_drag_changes_the_mask_undo_redo_and_the_export(harness, qtbot, tmp_path):
    app, session, layer = polygon_app(harness, qtbot, tmp_path)
    w, stack = app.window, session.listener.undo_stack
    steps = stack.count()
    frame = frame_with_hole()
    drag_image(w.canvas, (120, 90), (135, 104))  # the outer ring's bottom-right corner
    moved = layer.shapes[0].outer[vertex_near(layer, (135, 104))]
    assert np.hypot(*(moved - (135, 104))) < 1.0  # the vertex followed the mouse
    assert stack.count() == steps + 1 and stack.undoText() == "Move polygon vertex"
    edited = session.mask.copy()
    assert np.array_equal(edited, shapes_to_mask(frame.shape, layer.shapes))
    assert edited[95, 128] and not frame[95, 128]  # grown towards the new corner
    assert np.array_equal(edited[:90, :120], frame[:90, :120])  # only the two edges at the corner moved
    assert not edited[50:70, 60:90].any()  # the hole survives
    assert np.array_equal(w.canvas.mask_layer.mask, edited)  # shown
    assert (edited & ~frame).sum() > 100 and not (frame & ~edited).any()

    QTest.keyClick(w.canvas, Key.Key_Z, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(session.mask, frame)
    qtbot.waitUntil(lambda: bool(layer.shapes) and bool(np.hypot(*(layer.shapes[0].outer - (120, 90)).T).min() < 0.5),
                    timeout=WAIT_MS)  # the rings follow the undo
    Mod = QtCore.Qt.KeyboardModifier
    QTest.keyClick(w.canvas, Key.Key_Z, Mod.ControlModifier | Mod.ShiftModifier)
    assert np.array_equal(session.mask, edited)

    QTest.keyClick(w.canvas, Key.Key_Space)  # accept, then export the way the user does
    assert session.accepted
    ann, coco = export_current_coco(qtbot, app, tmp_path / "export")
    assert np.array_equal(coco.annToMask(ann).astype(bool), edited)
    assert ann["area"] == int(edited.sum())


def test_add_and_delete_vertices_keep_the_hole(harness, qtbot, tmp_path):
    app, session, layer = polygon_app(harness, qtbot, tmp_path)
    w, stack = app.window, session.listener.undo_stack
    frame = frame_with_hole()
    steps = stack.count()
    # double-click on the top edge: a vertex there (no pixel changes, so no undo step)
    double_click_image(w.canvas, 80, 30)
    qtbot.waitUntil(lambda: len(layer.shapes[0].outer) == 5, timeout=WAIT_MS)
    assert np.array_equal(session.mask, frame) and stack.count() == steps
    # pull it up: a triangle on top, the hole as it was
    drag_image(w.canvas, (80, 30), (80, 14))
    grown = session.mask.copy()
    assert stack.count() == steps + 1
    assert grown[20, 80] and not frame[20, 80] and not grown[20, 45]
    assert np.array_equal(grown[50:70, 60:90], frame[50:70, 60:90])
    # right click deletes it: the rectangle again, one more undo step
    click_image(w.canvas, *layer.shapes[0].outer[vertex_near(layer, (80, 14))], button=Btn.RightButton)
    assert len(layer.shapes[0].outer) == 4 and stack.undoText() == "Delete polygon vertex"
    assert np.array_equal(session.mask, frame) and stack.count() == steps + 2
    # select a corner of the hole (click), Delete: the hole becomes a triangle, the outer ring stays
    click_image(w.canvas, 60, 50)
    assert layer.selected == (0, 1, vertex_near(layer, (60, 50), ring=1))
    QTest.keyClick(w.canvas, Key.Key_Delete)
    assert len(layer.shapes[0].holes[0]) == 3 and stack.count() == steps + 3
    cut = session.mask
    assert cut[51, 61] and not cut[68, 88]  # the corner filled, the opposite corner still a hole
    assert np.array_equal(cut[:, :55], frame[:, :55]) and session.prompts.points  # points left alone
    # a triangle keeps its three vertices: refused with a message, nothing changed
    click_image(w.canvas, *layer.shapes[0].holes[0][0], button=Btn.RightButton)
    assert len(layer.shapes[0].holes[0]) == 3 and stack.count() == steps + 3
    assert w.messages.history[-1][0] == "warning" and "at least 3" in w.messages.history[-1][1]
    # undo the three steps: the frame with its hole again
    for _ in range(3):
        stack.undo()
    assert np.array_equal(session.mask, frame)


def test_clicks_elsewhere_with_the_polygon_tool_leave_points_alone(harness, qtbot, tmp_path):
    app, session, layer = polygon_app(harness, qtbot, tmp_path)
    points = session.prompts.points
    steps = session.listener.undo_stack.count()
    click_image(app.window.canvas, 10, 10)  # off the rings: no point added
    click_image(app.window.canvas, points[0].x, points[0].y)  # on a point: not removed
    assert session.prompts.points == points and session.listener.undo_stack.count() == steps
    # back to Points: the rings go, clicks add points again
    QTest.keyClick(app.window.canvas, Key.Key_V)
    assert not layer.isVisible() and not layer.shapes and not app.window.tolerance_action.isVisible()


def test_tolerance_box_retraces_off_the_gui_thread(harness, qtbot, tmp_path):
    app, session, layer = polygon_app(harness, qtbot, tmp_path)
    blob = np.zeros((120, 160), np.uint8)
    cv2.circle(blob, (80, 60), 40, 1, -1)
    app.controller.edits.replace_mask(blob.astype(bool), "Set disc")
    assert layer.tracing  # the rings are traced on a background thread
    qtbot.waitUntil(lambda: not layer.tracing and len(layer.shapes) == 1, timeout=WAIT_MS)
    exact = len(layer.shapes[0].outer)
    with qtbot.waitSignal(layer.shapes_shown, timeout=WAIT_MS):
        app.window.tolerance_box.setValue(0.0)
    corners = len(layer.shapes[0].outer)
    with qtbot.waitSignal(layer.shapes_shown, timeout=WAIT_MS):
        app.window.tolerance_box.setValue(4.0)
    assert len(layer.shapes[0].outer) < exact <= corners


def test_a_noisy_mask_gives_usable_handles_and_a_drag_still_edits_it(harness, qtbot, tmp_path):
    """Issue 25: on a mask full of specks and pinholes the handles were everywhere. The tool
    leaves those out (their pixels stay), says so, and a vertex drag still writes the mask."""
    from engine.imaging.polygons import MAX_EDIT_VERTICES, mask_to_shapes

    w_px, h_px = 800, 600
    img = write_photo(tmp_path / "photo.png", w=w_px, h=h_px)
    app = harness.build([img])
    wait_shown(qtbot, app)
    session = ask_and_wait(qtbot, app)
    noisy = np.zeros((h_px, w_px), bool)
    noisy[150:450, 200:600] = True
    noisy ^= np.random.default_rng(0).random((h_px, w_px)) < 0.02  # specks outside, pinholes inside
    app.controller.edits.replace_mask(noisy, "Set mask")
    assert np.array_equal(session.mask, noisy)
    raw = sum(len(s.outer) + sum(len(h) for h in s.holes) for s in mask_to_shapes(noisy, 1.0))
    assert raw > 4 * MAX_EDIT_VERTICES  # every speck as a polygon: handles all over the image
    layer, w = app.window.canvas.polygons, app.window
    with qtbot.waitSignal(layer.shapes_shown, timeout=WAIT_MS):
        QTest.keyClick(w.canvas, Key.Key_G)
    handles = sum(len(s.outer) + sum(len(h) for h in s.holes) for s in layer.shapes)
    assert 4 <= handles <= MAX_EDIT_VERTICES
    level, text = w.messages.history[-1]
    assert level == "info" and "specks and pinholes" in text and "Clean-up" in text
    # The square's bottom-right corner, dragged out: the mask grows there, one undo step; the
    # specks left out of the polygons stay as they were.
    big = max(range(len(layer.shapes)), key=lambda i: len(layer.shapes[i].outer))
    ring = layer.shapes[big].outer
    corner = ring[int(np.argmin(np.hypot(*(ring - (600, 450)).T)))]
    assert np.hypot(*(corner - (600, 450))) < 4
    steps = session.listener.undo_stack.count()
    drag_image(w.canvas, tuple(corner), (640, 490))
    qtbot.waitUntil(lambda: session.listener.undo_stack.count() == steps + 1, timeout=WAIT_MS)
    edited = session.mask
    assert edited[470, 620] and not noisy[470, 620]  # grown towards the new corner
    changed = np.argwhere(edited != noisy)
    assert changed[:, 0].min() >= 140 and changed[:, 1].min() >= 190  # only near the two moved edges
    assert np.array_equal(edited[:100], noisy[:100])  # specks far away kept
