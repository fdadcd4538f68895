"""The mask overlay: a translucent fill and an outline, drawn at the size they have on screen.

Why: on a 12-megapixel image a full-size RGBA fill and a vector outline of a ragged mask cost
the GUI thread seconds for every new mask (issue 16). :class:`MaskLayer` keeps the mask it is
given ([H, W] bool, not copied) and, when Qt paints it, renders only the part in view, at the
view's resolution: one nearest-neighbour resample of that window, its boundary (a band inside
the mask, holes included) and one image, drawn 1:1 in one call. A paint costs in proportion
to the viewport's pixels, whatever the image's size or the mask's shape; setting a mask costs
nothing until the next paint, and a repaint with the same mask and view reuses the last image.

Frames: the item draws in image pixels (pixel (col, row) covers [col, col + 1) x [row, row + 1),
as every layer in ``gui.canvas.layers``); the rendered window is whole image pixels.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

MASK_COLOUR = (0, 190, 255)  # cyan-blue: readable over skin, wood, grass and sky alike
FILL_ALPHA = 110  # translucent: the photo stays readable under the mask
OUTLINE_PX = 2  # outline width in screen pixels

CLEAR, FILL, OUTLINE = 0, 1, 2  # the values of a mask view


def _premultiplied(rgb: tuple[int, int, int], alpha: int) -> int:
    """One QImage Format_ARGB32_Premultiplied pixel."""
    r, g, b = (round(c * alpha / 255) for c in rgb)
    return (alpha << 24) | (r << 16) | (g << 8) | b


# mask view value -> pixel: drawn as it is (a colour table would be converted at every paint)
_PIXELS = np.array([0, _premultiplied(MASK_COLOUR, FILL_ALPHA), _premultiplied(MASK_COLOUR, 255)], np.uint32)


def mask_view(mask: np.ndarray, window: tuple[int, int, int, int], size: tuple[int, int],
              outline_px: int = OUTLINE_PX) -> np.ndarray:
    """What the overlay shows of ``mask`` in ``window``, at ``size``.

    mask: ``[H, W]`` bool. window: ``(x0, y0, x1, y1)`` whole image pixels, ``0 <= x0 < x1 <= W``
    (rows likewise). size: ``(w, h)`` display pixels the window covers, each >= 1.
    Returns ``[h, w]`` uint8: CLEAR outside the mask, FILL inside, OUTLINE on the display pixels
    of the mask within ``outline_px`` of one outside it (the outer boundary and every hole's).
    Each display pixel shows the image pixel under its centre's nearest sample; a window edge
    inside the image is not an outline (the mask is taken to go on past it).
    """
    x0, y0, x1, y1 = window
    w, h = size
    crop = np.asarray(mask, dtype=bool)[y0:y1, x0:x1].view(np.uint8)  # a view: nothing copied
    shown = cv2.resize(crop, (w, h), interpolation=cv2.INTER_NEAREST)
    if outline_px <= 0:
        return shown
    inner = cv2.erode(shown, np.ones((2 * outline_px + 1,) * 2, np.uint8), borderType=cv2.BORDER_REPLICATE)
    return shown * 2 - inner  # outside 0, inside 2 - 1 = FILL, boundary band 2 - 0 = OUTLINE


def view_window(visible: QtCore.QRectF, image_size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The whole image pixels ``(x0, y0, x1, y1)`` that cover ``visible`` (image pixels) within
    an image of ``image_size`` (W, H); None when nothing of the image is visible."""
    w, h = image_size
    x0, y0 = max(0, math.floor(visible.left())), max(0, math.floor(visible.top()))
    x1, y1 = min(w, math.ceil(visible.right())), min(h, math.ceil(visible.bottom()))
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def screen_window(painter: QtGui.QPainter, image_size: tuple[int, int]):
    """``(window, size)`` of an item in image pixels painted by ``painter`` (its world transform
    maps image pixels to the device): the whole image pixels ``(x0, y0, x1, y1)`` in view and the
    ``(w, h)`` device pixels (physical: times the device pixel ratio) they cover; None when
    nothing of the image is in view."""
    ratio = painter.device().devicePixelRatioF()
    transform = painter.worldTransform() * QtGui.QTransform.fromScale(ratio, ratio)
    device = painter.viewport()
    inverse, ok = transform.inverted()
    if not ok:
        return None
    window = view_window(inverse.mapRect(QtCore.QRectF(device.x() * ratio, device.y() * ratio,
                                                       device.width() * ratio, device.height() * ratio)), image_size)
    if window is None:
        return None
    x0, y0, x1, y1 = window
    shown = transform.mapRect(QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))
    return window, (max(1, round(shown.width())), max(1, round(shown.height())))


class MaskLayer(QtWidgets.QGraphicsObject):
    """The chosen mask, filled and outlined, over the image rect (0, 0)-(W, H).

    To show a mask, new or corrected (brush, eraser, polygon edit): ``set_mask(mask)`` with the
    ``[H, W]`` bool array (``Canvas.set_mask`` checks its size first). It costs nothing until
    the next paint and the array is not copied, so give a new array for each change, or call
    ``set_mask`` again after writing into the one shown (the last paint is reused until then).
    ``mask`` is the array shown (None: nothing).
    """

    def __init__(self, z: float = 30) -> None:
        super().__init__()
        self.setZValue(z)
        self.mask: np.ndarray | None = None
        self._size = (0, 0)  # (W, H)
        self._version = 0  # bumped by set_mask: the cached paint is for one version only
        self._cache: tuple | None = None  # (key, QImage, its pixel buffer)
        self.renders = 0  # images rendered by paint (tests: a repaint reuses the last one)

    def set_mask(self, mask: np.ndarray | None) -> None:
        """Show ``mask`` ([H, W] bool) or nothing (None); see the class doc."""
        mask = None if mask is None else np.asarray(mask, dtype=bool)
        size = (0, 0) if mask is None else (int(mask.shape[1]), int(mask.shape[0]))
        if size != self._size:
            self.prepareGeometryChange()
            self._size = size
        self.mask = mask
        self._version += 1
        self._cache = None
        self.update()

    def set_shown(self, shown: bool) -> None:
        self.setVisible(shown)

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 - Qt API
        return QtCore.QRectF(0, 0, *self._size)

    def view_image(self, window: tuple[int, int, int, int], size: tuple[int, int]) -> QtGui.QImage:
        """The mask's ``window`` (whole image pixels) rendered at ``size`` (w, h) device pixels
        (see :func:`mask_view`), as drawn; the last one is reused while the mask is the same."""
        key = (self._version, window, size)
        if self._cache is None or self._cache[0] != key:
            pixels = _PIXELS[mask_view(self.mask, window, size)]  # [h, w] uint32, kept while the image is
            image = QtGui.QImage(pixels.data, size[0], size[1], 4 * size[0],
                                 QtGui.QImage.Format.Format_ARGB32_Premultiplied)
            self._cache = (key, image, pixels)
            self.renders += 1
        return self._cache[1]

    def paint(self, painter: QtGui.QPainter, option, widget=None) -> None:  # noqa: D102 - Qt API
        seen = None if self.mask is None else screen_window(painter, self._size)
        if seen is None:
            return
        (x0, y0, x1, y1), size = seen
        image = self.view_image((x0, y0, x1, y1), size)
        painter.save()
        painter.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(QtCore.QRectF(x0, y0, x1 - x0, y1 - y0), image)
        painter.restore()
