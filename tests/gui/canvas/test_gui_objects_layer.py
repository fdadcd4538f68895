"""The objects layer (gui/canvas/objects_layer.py): every object of a LabelMap drawn in its colour with
outlines, read back from a real QGraphicsView; show/hide changes the colour table only; and a
view brought up to date after map changes (patched in place) is the view rendered afresh."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from engine.imaging.label_map import LabelMap, crop_of
from gui.canvas.mask_overlay import _premultiplied
from gui.canvas.objects_layer import ObjectsLayer, nearest_map, outline_flags
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse

RED, BLUE, GREEN = (220, 40, 40), (40, 60, 230), (40, 200, 90)
ALPHA = 110


def box_mask(h, w, rows, cols):
    m = np.zeros((h, w), bool)
    m[rows[0]:rows[1], cols[0]:cols[1]] = True
    return m


def two_objects():
    """80 x 60: "a" (red) and, on top, "b" (blue) overlapping its lower right."""
    lm = LabelMap(60, 80)
    lm.set_objects([("a", crop_of(box_mask(60, 80, (10, 40), (10, 50)))),
                    ("b", crop_of(box_mask(60, 80, (25, 50), (30, 70))))])
    return lm


def view_of(qtbot, layer: ObjectsLayer, w: int, h: int, scale: float = 1.0) -> QtWidgets.QGraphicsView:
    """A real view showing ``layer`` at ``scale`` screen pixels an image pixel, over black."""
    scene = QtWidgets.QGraphicsScene(0, 0, w, h)  # (kept alive by the view, its parent)
    scene.setBackgroundBrush(QtGui.QColor(0, 0, 0))
    scene.addItem(layer)
    view = QtWidgets.QGraphicsView(scene)
    scene.setParent(view)
    view.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
    view.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    view.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    view.setAlignment(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop)
    view.setTransform(QtGui.QTransform.fromScale(scale, scale))
    view.resize(round(w * scale), round(h * scale))
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    return view


def shot(view: QtWidgets.QGraphicsView) -> np.ndarray:
    """What the view's viewport shows: [h, w, 3] uint8 RGB."""
    QtWidgets.QApplication.processEvents()
    image = view.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGB888)
    data = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes())
    return data.reshape(image.height(), image.bytesPerLine())[:, : 3 * image.width()].reshape(
        image.height(), image.width(), 3).copy()


def fill(rgb, alpha=ALPHA):
    """The colour a fill shows over black."""
    value = _premultiplied(rgb, alpha)
    return np.array([(value >> 16) & 255, (value >> 8) & 255, value & 255])


def near(pixel, rgb) -> bool:
    return bool(np.abs(pixel.astype(int) - np.asarray(rgb)).max() <= 2)


def test_overlapping_objects_their_outlines_and_a_hidden_one_read_back(qtbot):
    lm = two_objects()
    layer = ObjectsLayer()
    layer.set_label_map(lm)
    layer.set_style({"a": RED, "b": BLUE}, fill_alpha=ALPHA, outline=1)
    view = view_of(qtbot, layer, 80, 60)
    px = shot(view)
    assert near(px[15, 20], fill(RED)) and near(px[45, 60], fill(BLUE))
    assert near(px[35, 40], fill(BLUE))  # both: b is on top
    assert near(px[5, 5], (0, 0, 0))  # neither
    assert near(px[20, 10], RED) and near(px[49, 60], BLUE)  # outlines: opaque, against the background
    assert near(px[24, 40], RED) and near(px[25, 40], BLUE)  # and between the two objects, on both sides
    assert near(px[30, 30], BLUE) and near(px[30, 29], RED) and near(px[30, 33], fill(BLUE))

    ids, version, renders = lm.ids.copy(), lm.version, layer.renders
    layer.set_style({"a": RED, "b": BLUE}, hidden={"b"}, fill_alpha=ALPHA, outline=1)
    px = shot(view)
    assert near(px[45, 60], (0, 0, 0)) and near(px[35, 40], (0, 0, 0))  # b is not drawn (nor what it covers)
    assert near(px[15, 20], fill(RED)) and near(px[24, 40], RED)
    # only the colour table changed: the map and the rendered view were left as they were
    assert lm.version == version and np.array_equal(lm.ids, ids) and layer.renders == renders

    # relabel: a new colour, still no render
    layer.set_style({"a": GREEN, "b": BLUE}, fill_alpha=ALPHA, outline=1)
    px = shot(view)
    assert near(px[15, 20], fill(GREEN)) and near(px[35, 40], fill(BLUE)) and layer.renders == renders

    # hidden in the map instead: what b covered shows
    layer.invalidate(lm.set_hidden("b", True))
    px = shot(view)
    assert near(px[35, 40], fill(GREEN)) and near(px[45, 60], (0, 0, 0)) and layer.renders == renders


def test_the_selected_object_is_left_clear_or_emphasised(qtbot):
    lm = two_objects()
    layer = ObjectsLayer()
    layer.set_label_map(lm)
    layer.set_style({"a": RED, "b": BLUE}, selected="a", fill_alpha=ALPHA, outline=1)
    view = view_of(qtbot, layer, 80, 60, scale=2.0)
    px = shot(view)
    assert near(px[30, 40], (0, 0, 0)) and near(px[90, 120], fill(BLUE))  # a clear: the app draws it
    layer.set_style({"a": RED, "b": BLUE}, selected="a", fill_alpha=ALPHA, outline=1, selected_mode="emphasis")
    px = shot(view)
    assert near(px[30, 40], fill(RED, 170)) and near(px[40, 20], (255, 255, 255))  # denser fill, white outline
    with pytest.raises(ValueError):
        layer.set_style({}, selected_mode="bold")


def test_a_mask_change_repaints_only_its_window(qtbot):
    lm = two_objects()
    layer = ObjectsLayer()
    layer.set_label_map(lm)
    layer.set_style({"a": RED, "b": BLUE}, fill_alpha=ALPHA, outline=1)
    view = view_of(qtbot, layer, 80, 60)
    shot(view)
    renders = layer.renders
    layer.invalidate(lm.update("b", crop_of(box_mask(60, 80, (50, 58), (60, 78)))))
    px = shot(view)
    assert near(px[35, 40], fill(RED)) and near(px[54, 70], fill(BLUE)) and near(px[45, 40], (0, 0, 0))
    assert layer.renders == renders and layer.patches >= 1


def test_outline_flags_and_nearest_map():
    shown = np.zeros((6, 8), np.int32)
    shown[1:5, 1:4], shown[1:5, 4:7] = 1, 2
    edge = outline_flags(shown, 1)
    assert edge[1:5, 3].all() and edge[1:5, 4].all()  # both sides of the boundary between 1 and 2
    assert not edge[2:4, 2].any() and not edge[0].any()  # inside; the background has none
    np.testing.assert_array_equal(nearest_map(4, 8), [0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(nearest_map(9, 3), [0, 3, 6])


def fresh(lm, style, window, size) -> np.ndarray:
    layer = ObjectsLayer()
    layer.set_label_map(lm)
    layer.set_style(**style)
    return pixels_of(layer.view_image(window, size))


def pixels_of(image: QtGui.QImage) -> np.ndarray:
    data = np.frombuffer(image.constBits(), np.uint32, count=image.sizeInBytes() // 4)
    return data.reshape(image.height(), image.bytesPerLine() // 4)[:, : image.width()].copy()


@pytest.mark.parametrize("seed", range(6))
def test_a_view_brought_up_to_date_equals_one_rendered_afresh(qapp, seed):
    """Random objects, a random view window and zoom; after each random mutation, style change or
    both, the layer's patched view is pixel for pixel what a new layer renders."""
    rng = random.Random(seed)
    h, w = 150, 200
    lm = LabelMap(h, w)

    def blob():
        m = np.zeros((h, w), bool)
        y, x = rng.randrange(h), rng.randrange(w)
        m[y:y + rng.randint(1, 25), x:x + rng.randint(1, 30)] = True
        if rng.random() < 0.3:
            m[rng.randrange(h), rng.randrange(w)] = True  # a second part
        return m

    names = iter(range(10_000))
    lm.set_objects([(next(names), crop_of(blob())) for _ in range(12)])
    colours = {k: (rng.randrange(256), rng.randrange(256), rng.randrange(256)) for k in range(200)}
    x0, y0 = rng.randrange(0, 60), rng.randrange(0, 40)
    window = (x0, y0, rng.randrange(x0 + 60, w + 1), rng.randrange(y0 + 60, h + 1))
    size = (rng.randint(40, 400), rng.randint(40, 400))
    style = dict(slot_colours=colours, hidden=set(), selected=None, fill_alpha=ALPHA, outline=rng.randint(0, 3))
    layer = ObjectsLayer()
    layer.set_label_map(lm)
    layer.set_style(**style)
    layer.view_image(window, size)
    for _ in range(40):
        op = rng.choice(["add", "update", "remove", "reorder", "hide", "select", "colour", "map-hide"])
        keys = lm.keys
        if op == "add" or not keys:
            layer.invalidate(lm.add(next(names), crop_of(blob())))
        elif op == "update":
            layer.invalidate(lm.update(rng.choice(keys), crop_of(blob()) if rng.random() > 0.1 else None))
        elif op == "remove":
            layer.invalidate(lm.remove(rng.choice(keys)))
        elif op == "reorder":
            rng.shuffle(keys)
            layer.invalidate(lm.reorder(keys))
        elif op == "map-hide":
            key = rng.choice(keys)
            layer.invalidate(lm.set_hidden(key, not lm.is_hidden(key)))
        else:
            if op == "hide":
                style["hidden"] = style["hidden"] ^ {rng.choice(keys)}
            elif op == "select":
                style["selected"] = rng.choice(keys + [None])
                style["selected_mode"] = rng.choice(["clear", "emphasis"])
            else:
                colours = dict(colours)
                colours[rng.choice(keys)] = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
                style["slot_colours"] = colours
            layer.set_style(**style)
        renders = layer.renders
        got = pixels_of(layer.view_image(window, size))
        assert np.array_equal(got, fresh(lm, style, window, size)), op
        if op in ("hide", "select", "colour"):
            assert layer.renders == renders  # a style change never renders the view again
    assert layer.patches > 0  # map changes were patched in, not only rendered afresh


def test_in_the_canvas_a_12_megapixel_image_of_1000_objects_renders_only_the_view(qtbot):
    """In the app's canvas (a pyqtgraph view box): the view is rendered at the viewport's size,
    zoomed in only the part in view, and hiding, recolouring or changing one object renders
    nothing anew."""
    from gui.canvas.canvas import Canvas

    w, h = 4000, 3000
    canvas = Canvas()
    qtbot.addWidget(canvas)
    canvas.resize(800, 600)
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.set_image(np.zeros((h, w, 3), np.uint8))
    lm = LabelMap(h, w)
    rng = np.random.default_rng(0)
    lm.set_objects([(i, (int(rng.integers(0, h - 60)), int(rng.integers(0, w - 60)), np.ones((60, 60), bool)))
                    for i in range(1000)])
    layer = ObjectsLayer()
    layer.set_label_map(lm)
    layer.set_style({i: RED for i in range(1000)})
    canvas.vb.addItem(layer, ignoreBounds=True)

    def paint_now():
        QtWidgets.QApplication.processEvents()
        canvas.viewport().repaint()

    paint_now()
    ratio = canvas.viewport().devicePixelRatioF()
    assert layer.renders == 1 and layer._view.window == (0, 0, w, h)
    vw, vh = layer._view.size
    assert vw <= canvas.viewport().width() * ratio + 2 and vh <= canvas.viewport().height() * ratio + 2
    layer.set_style({i: RED for i in range(1000)}, hidden={5})
    layer.set_style({**{i: RED for i in range(1000)}, 7: BLUE}, hidden={5})
    y0, x0, _ = lm.crop(9)
    layer.invalidate(lm.update(9, (y0, x0, np.ones((30, 30), bool))))
    paint_now()
    assert layer.renders == 1 and layer.patches == 1
    canvas.zoom(8.0, (2000.0, 1500.0))
    paint_now()
    x0, y0, x1, y1 = layer._view.window
    assert layer.renders == 2 and (x1 - x0) * (y1 - y0) < w * h / 32
