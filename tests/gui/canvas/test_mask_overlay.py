"""The mask overlay (gui/canvas/mask_overlay.py): what it shows, read back from its pixels, at any zoom,
and that it renders only what is in view (a 12-megapixel mask costs a viewport's pixels)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from engine.prompts import POSITIVE
from gui.canvas.canvas import Canvas
from gui.canvas.mask_overlay import CLEAR, FILL, FILL_ALPHA, OUTLINE, MaskLayer, mask_view
from support.gui import click_image
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


def ragged(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A mask with a hole, an island in the hole and noise: [h, w] bool."""
    m = np.zeros((h, w), bool)
    m[h // 8: 7 * h // 8, w // 8: 7 * w // 8] = True
    m[3 * h // 8: 5 * h // 8, 3 * w // 8: 5 * w // 8] = False  # a hole
    m[h // 2 - 1: h // 2 + 1, w // 2 - 1: w // 2 + 1] = True  # an island in it
    m |= np.random.default_rng(seed).random((h, w)) > 0.97
    return m


def boundary(mask: np.ndarray, width: int) -> np.ndarray:
    """Mask pixels within ``width`` (chessboard distance) of a pixel outside, the image edge
    excepted: the band the overlay outlines, computed the slow way."""
    h, w = mask.shape
    padded = np.pad(mask, width, mode="edge")
    out = np.zeros_like(mask)
    for dy in range(-width, width + 1):
        for dx in range(-width, width + 1):
            out |= ~padded[width + dy: width + dy + h, width + dx: width + dx + w]
    return mask & out


def test_mask_view_at_one_to_one_shows_every_mask_pixel_and_outlines_holes():
    mask = ragged(60, 80)
    view = mask_view(mask, (0, 0, 80, 60), (80, 60), outline_px=2)
    assert view.shape == (60, 80) and view.dtype == np.uint8
    assert np.array_equal(view != CLEAR, mask)
    assert np.array_equal(view == OUTLINE, boundary(mask, 2))
    # the hole's edge is outlined, the inside of the solid part is filled
    assert (view[60 * 3 // 8 - 1, 80 * 3 // 8: 80 * 5 // 8] == OUTLINE).all()  # just above the hole
    assert (view == FILL).sum() > 0.3 * mask.sum()


@pytest.mark.parametrize("factor", [2, 3])
def test_mask_view_zoomed_out_samples_and_zoomed_in_keeps_a_thin_outline(factor):
    mask = ragged(90, 120, seed=factor)
    small = mask_view(mask, (0, 0, 120, 90), (120 // factor, 90 // factor))
    assert np.array_equal(small != CLEAR, mask[::factor, ::factor])  # nearest: one image pixel per display pixel
    big = mask_view(mask, (0, 0, 120, 90), (120 * factor, 90 * factor), outline_px=1)
    assert np.array_equal(big != CLEAR, np.kron(mask, np.ones((factor, factor), bool)))
    # the outline is in display pixels: one screen pixel wide whatever the zoom
    assert np.array_equal(big == OUTLINE, boundary(big != CLEAR, 1))


def test_a_window_edge_inside_the_mask_is_not_an_outline():
    mask = np.ones((40, 50), bool)
    view = mask_view(mask, (10, 5, 30, 25), (20, 20))
    assert (view == FILL).all()


def paint_alone(layer: MaskLayer, scale: float, device: tuple[int, int], offset=(0.0, 0.0)) -> np.ndarray:
    """The layer painted alone on a transparent ``device`` (w, h) through image px -> device
    px = scale * (x, y) + offset: its alpha channel, [h, w] uint8."""
    image = QtGui.QImage(device[0], device[1], QtGui.QImage.Format.Format_ARGB32)
    image.fill(QtCore.Qt.GlobalColor.transparent)
    painter = QtGui.QPainter(image)
    painter.setTransform(QtGui.QTransform(scale, 0, 0, scale, offset[0], offset[1]))
    layer.paint(painter, None)
    painter.end()
    ptr = image.constBits()
    argb = np.frombuffer(ptr, np.uint8, count=image.sizeInBytes()).reshape(device[1], image.bytesPerLine() // 4, 4)
    return argb[:, : device[0], 3].copy()  # little-endian ARGB32: bytes B, G, R, A


def test_the_layer_paints_the_mask_pixels_read_back(qapp):
    mask = ragged(60, 80, seed=5)
    layer = MaskLayer()
    layer.set_mask(mask)
    alpha = paint_alone(layer, 1.0, (80, 60))
    assert np.array_equal(alpha > 0, mask)
    assert np.array_equal(alpha == 255, mask_view(mask, (0, 0, 80, 60), (80, 60)) == OUTLINE)
    assert set(np.unique(alpha)) == {0, FILL_ALPHA, 255}
    # zoomed in 4x on the part from image pixel (20, 10): the device shows 40 x 30 image pixels
    zoomed = paint_alone(layer, 4.0, (160, 120), offset=(-80.0, -40.0))
    assert np.array_equal(zoomed > 0, np.kron(mask[10:40, 20:60], np.ones((4, 4), bool)))
    # zoomed out: half size
    assert np.array_equal(paint_alone(layer, 0.5, (40, 30)) > 0, mask[::2, ::2])
    # nothing of the image in view: nothing drawn; no mask: nothing drawn
    assert not paint_alone(layer, 1.0, (20, 20), offset=(-500.0, 0.0)).any()
    layer.set_mask(None)
    assert not paint_alone(layer, 1.0, (80, 60)).any()


def paint_now(canvas: Canvas) -> None:
    """Let the scene take its pending changes (its index is updated later), then paint."""
    QtWidgets.QApplication.processEvents()
    canvas.viewport().repaint()


def test_a_new_mask_renders_only_the_view_and_a_repaint_reuses_it(qtbot):
    """A 12-megapixel image: a click's mask is rendered at the viewport's size, never at the
    image's; painting again with the same mask and view renders nothing new."""
    w, h = 4000, 3000
    canvas = Canvas()
    qtbot.addWidget(canvas)
    canvas.resize(800, 600)
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.set_image(np.zeros((h, w, 3), np.uint8))
    clicks = []
    canvas.editor.edited.connect(lambda before, after, text: clicks.append(after))
    click_image(canvas, 1000.0, 1500.0)  # a real click: a positive point
    assert clicks and clicks[-1].points[-1].label == POSITIVE
    mask = ragged(h, w)
    layer = canvas.mask_layer
    canvas.set_mask(mask)
    assert layer.mask is mask  # not copied
    paint_now(canvas)
    assert layer.renders == 1
    window, image = layer._cache[0][1], layer._cache[1]
    ratio = canvas.viewport().devicePixelRatioF()
    assert image.width() <= canvas.viewport().width() * ratio + 2 and image.height() <= canvas.viewport().height() * ratio + 2
    assert window == (0, 0, w, h)  # fitted: the whole image is in view, at the viewport's resolution
    paint_now(canvas)
    assert layer.renders == 1  # same mask, same view: the last image again
    canvas.zoom(8.0, (2000.0, 1500.0))
    paint_now(canvas)
    x0, y0, x1, y1 = layer._cache[0][1]
    assert layer.renders == 2 and (x1 - x0) * (y1 - y0) < w * h / 32  # zoomed in: only the part in view
    canvas.set_mask(mask)  # set again (e.g. after writing into it): rendered anew
    paint_now(canvas)
    assert layer.renders == 3
