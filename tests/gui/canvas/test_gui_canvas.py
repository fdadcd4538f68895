"""Canvas, layers and point editing, without models: alignment at any zoom, real mouse gestures."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest

from engine.prompts import NEGATIVE, POSITIVE, Box, Point
from gui.canvas.canvas import Canvas
from gui.canvas.layers import heatmap_lut, normalise_map
from gui.canvas.point_editing import Tool
from engine.annotation.prompts import PromptState
from support.gui import click_image, drag_image
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse

W, H = 160, 96  # not square: BLIP's square grid must stretch differently in x and y
G = 6


@pytest.fixture
def canvas(qtbot):
    c = Canvas()
    qtbot.addWidget(c)
    c.resize(640, 480)
    c.show()
    qtbot.waitExposed(c)
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = np.arange(W, dtype=np.uint8)[None, :]
    c.set_image(rgb)
    edits = []
    c.editor.edited.connect(lambda before, after, text: (edits.append((before, after, text)), apply(c, after)))
    c.edits = edits
    return c


def apply(canvas, state: PromptState) -> None:
    """What the controller does with a committed edit, minus the engine."""
    canvas.editor.set_state(state)
    canvas.set_points(state.points)
    canvas.set_box(state.box)


def scene_xy(item, x, y):
    p = item.mapToScene(QtCore.QPointF(x, y))
    return np.array([p.x(), p.y()])


VIEWS = [None, (4.0, (20.0, 30.0)), (0.5, (80.0, 48.0)), (9.0, (150.0, 90.0))]


@pytest.mark.parametrize("view", VIEWS, ids=["fit", "zoom4", "zoomout", "zoom9-corner"])
def test_every_layer_stays_aligned_with_the_image(canvas, view):
    heat = np.zeros((G, G), np.float32)
    heat[1, 4] = 1.0  # one hot cell: column 4, row 1
    mask = np.zeros((H, W), bool)
    mask[10:50, 30:90] = True
    pts = (Point(12.5, 40.5, POSITIVE, score=0.7, source="auto"), Point(100.0, 20.0, NEGATIVE))
    canvas.set_heatmap(heat)
    canvas.set_fused(heat)
    canvas.set_mask(mask)
    canvas.set_points(pts)
    canvas.set_box(Box(5, 6, 70, 80))
    canvas.fit()
    if view is not None:
        factor, centre = view
        canvas.zoom(factor, centre)
        canvas.vb.translateBy(x=3.0, y=-2.0)
    QTest.qWait(10)
    img = canvas.image_layer
    for x, y in [(0, 0), (W, H), (W, 0), (0, H), (37.25, 61.5), (W / G * 4, H / G * 1)]:
        ref = scene_xy(img, x, y)
        # heat and fused map: image pixel -> the map item's own pixels (stretched G x G)
        for layer in (canvas.heat_layer, canvas.fused_layer):
            local = layer.grid_to_item(x, y)
            assert np.allclose(scene_xy(layer, local.x(), local.y()), ref, atol=1e-3)
        assert np.allclose(scene_xy(canvas.mask_layer, x, y), ref, atol=1e-3)
        assert np.allclose(scene_xy(canvas.box_layer, x, y), ref, atol=1e-3)
    # whole rects coincide
    for layer in (canvas.heat_layer, canvas.fused_layer, canvas.mask_layer):
        assert layer.sceneBoundingRect().toRect() == img.sceneBoundingRect().toRect()
    # points sit on their pixel; the box on its corners
    for marker, p in zip(canvas.points_layer.markers, pts, strict=True):
        assert np.allclose([marker.scenePos().x(), marker.scenePos().y()], scene_xy(img, p.x, p.y), atol=1e-3)
    box_rect = canvas.box_layer.mapRectToScene(canvas.box_layer.rect())
    assert np.allclose([box_rect.left(), box_rect.top()], scene_xy(img, 5, 6), atol=1e-3)
    assert np.allclose([box_rect.right(), box_rect.bottom()], scene_xy(img, 70, 80), atol=1e-3)
    # the hot heat-map cell covers exactly image x in [4W/G, 5W/G], y in [H/G, 2H/G]
    cell = canvas.heat_layer.grid
    assert cell.shape == (G, G) and cell[1, 4] == 1.0
    shown = canvas.heat_layer.image
    rows, cols = shown.shape
    hot_r, hot_c = np.unravel_index(np.argmax(shown), shown.shape)
    centre_px = ((hot_c + 0.5) * W / cols, (hot_r + 0.5) * H / rows)
    assert 4 * W / G <= centre_px[0] <= 5 * W / G and H / G <= centre_px[1] <= 2 * H / G
    # viewport <-> image round trip through the view's real transform
    for x, y in [(10.0, 10.0), (120.0, 70.0)]:
        vp = canvas.image_to_viewport(x, y)
        back = canvas.scene_to_image(canvas.mapToScene(vp))
        assert abs(back[0] - x) <= canvas.vb.viewPixelSize()[0] + 1e-6
        assert abs(back[1] - y) <= canvas.vb.viewPixelSize()[1] + 1e-6


def test_left_click_adds_positive_right_click_and_shift_click_negative(canvas):
    click_image(canvas, 40.5, 30.5)
    click_image(canvas, 100.5, 70.5, QtCore.Qt.MouseButton.RightButton)
    click_image(canvas, 130.5, 20.5, modifiers=QtCore.Qt.KeyboardModifier.ShiftModifier)
    pts = canvas.editor.state.points
    assert [p.label for p in pts] == [POSITIVE, NEGATIVE, NEGATIVE]
    assert all(p.source == "user" for p in pts)
    px = canvas.vb.viewPixelSize()[0]
    for p, (x, y) in zip(pts, [(40.5, 30.5), (100.5, 70.5), (130.5, 20.5)], strict=True):
        assert abs(p.x - x) <= px and abs(p.y - y) <= px
    assert [t for _, _, t in canvas.edits] == ["Add positive point", "Add negative point", "Add negative point"]
    assert len(canvas.points_layer.markers) == 3


def test_click_on_a_point_removes_it_and_clicks_outside_the_image_do_nothing(canvas):
    apply(canvas, PromptState((Point(40, 30), Point(90, 60, NEGATIVE))))
    click_image(canvas, 90 + 0.4, 60 - 0.3)  # within the hit radius
    assert [(p.x, p.y) for p in canvas.editor.state.points] == [(40, 30)]
    assert canvas.edits[-1][2] == "Remove point 2"
    n = len(canvas.edits)
    click_image(canvas, -5.0, 30.0)  # left of the image
    click_image(canvas, 40.0, H + 3.0)  # below it
    assert len(canvas.edits) == n


def test_dragging_a_point_moves_it_with_live_preview_and_one_undo_step(canvas, qtbot):
    apply(canvas, PromptState((Point(40, 30, score=0.9, source="auto"),)))
    previews = []
    canvas.editor.preview.connect(previews.append)
    drag_image(canvas, (40, 30), (70, 50))
    assert len(previews) >= 3, "the mask must follow during the drag"
    (before, after, text), = canvas.edits
    assert text == "Move point 1" and before.points[0].x == 40
    moved = after.points[0]
    px = canvas.vb.viewPixelSize()[0]
    assert abs(moved.x - 70) <= 2 * px and abs(moved.y - 50) <= 2 * px
    assert moved.source == "user"  # a moved automatic point becomes the user's


def test_ctrl_drag_draws_a_box_and_plain_drag_pans(canvas):
    drag_image(canvas, (20, 15), (90, 70), modifiers=QtCore.Qt.KeyboardModifier.ControlModifier)
    box = canvas.editor.state.box
    px = canvas.vb.viewPixelSize()[0]
    assert box is not None and abs(box.x0 - 20) <= 2 * px and abs(box.y1 - 70) <= 2 * px
    assert canvas.box_layer.isVisible()
    before = canvas.vb.viewRange()
    n = len(canvas.edits)
    drag_image(canvas, (100, 50), (60, 30))  # empty spot, no modifier: pan
    assert len(canvas.edits) == n
    after = canvas.vb.viewRange()
    assert after[0][0] > before[0][0] and after[1][0] > before[1][0]


def test_box_tool_and_pan_tool(canvas):
    canvas.editor.tool = Tool.BOX
    drag_image(canvas, (10, 10), (50, 40))
    assert canvas.editor.state.box is not None
    canvas.editor.tool = Tool.PAN
    n = len(canvas.edits)
    click_image(canvas, 30, 30)
    assert len(canvas.edits) == n


def test_wheel_zoom_keeps_the_pixel_under_the_cursor(canvas, qtbot):
    pos = canvas.image_to_viewport(120.0, 30.0)
    before = canvas.vb.viewPixelSize()
    event_pos = QtCore.QPointF(pos)
    from PySide6 import QtGui

    wheel = QtGui.QWheelEvent(event_pos, QtCore.QPointF(canvas.viewport().mapToGlobal(pos)), QtCore.QPoint(0, 0),
                              QtCore.QPoint(0, 240), QtCore.Qt.MouseButton.NoButton,
                              QtCore.Qt.KeyboardModifier.NoModifier, QtCore.Qt.ScrollPhase.NoScrollPhase, False)
    QtCore.QCoreApplication.sendEvent(canvas.viewport(), wheel)
    after = canvas.vb.viewPixelSize()
    assert after[0] < before[0] * 0.9, "wheel up zooms in"
    x, y = canvas.scene_to_image(canvas.mapToScene(pos))
    assert abs(x - 120.0) < 1.0 and abs(y - 30.0) < 1.0
    canvas.fit()
    assert np.allclose(canvas.vb.viewPixelSize(), before, rtol=1e-3)


def test_point_markers_show_kind_source_number_and_meaning(canvas):
    pts = (Point(10, 10, POSITIVE, score=0.8125, source="auto"), Point(50, 50, NEGATIVE), Point(90, 20, POSITIVE))
    canvas.set_points(pts)
    auto, neg, user = canvas.points_layer.markers
    assert auto.toolTip().startswith("#1 automatic positive point: the mask should include this place")
    assert "0.812" not in auto.toolTip() and "the map's hottest spot" in auto.toolTip()  # meaning, not a raw score
    assert "#2 your negative point: the mask should leave this place out" in neg.toolTip()
    canvas.set_points(pts, ("one", "two", "three"))  # the presenter's notes (with the heat map) replace them all
    assert [m.toolTip() for m in canvas.points_layer.markers] == ["one", "two", "three"]
    assert [m.number.text() for m in canvas.points_layer.markers] == ["1", "2", "3"]
    # auto vs user: dashed vs solid ring; positive vs negative: different symbol and colour
    assert auto.pen().style() == QtCore.Qt.PenStyle.DashLine and user.pen().style() == QtCore.Qt.PenStyle.SolidLine
    assert auto.path().elementCount() != neg.path().elementCount()
    assert user.brush().color() != neg.brush().color()


def test_layer_helpers():
    grid = np.array([[0.0, 2.0], [1.0, np.nan]], np.float32)
    assert np.allclose(normalise_map(grid), [[0, 1], [0.5, 0]])
    assert not normalise_map(np.zeros((3, 3))).any()
    lut = heatmap_lut("inferno")
    assert lut.shape == (256, 4) and lut[0, 3] == 0 and lut[-1, 3] == 255


def test_a_mask_of_another_size_is_never_shown(canvas):
    canvas.set_mask(np.ones((10, 10), bool))
    assert canvas.mask_layer.mask is None
    canvas.set_mask(np.ones((H, W), bool))
    assert canvas.mask_layer.mask is not None


def test_the_photo_is_shown_with_its_own_colours(canvas):
    """The image layer shows uint8 RGB as it is (no levels, so no rescaling pass on the GUI
    thread): the pixels on screen are the photo's, in every channel and at both ends."""
    c = canvas
    rgb = np.zeros((H, W, 3), np.uint8)
    blocks = [(0, 0, 0), (255, 255, 255), (200, 30, 60), (10, 120, 250), (1, 254, 128), (77, 77, 77)]
    for i, colour in enumerate(blocks):
        rgb[:, i * W // len(blocks):(i + 1) * W // len(blocks)] = colour
    c.set_image(rgb)
    c.fit()
    c.viewport().repaint()
    shot = c.viewport().grab().toImage()
    for i, colour in enumerate(blocks):
        p = c.image_to_viewport((i + 0.5) * W / len(blocks), H / 2)
        assert shot.pixelColor(p).getRgb()[:3] == colour
