"""Every object of an image at once: each filled in its class colour and outlined, at screen size.

Why: an image may hold a thousand objects (issue 23); one MaskLayer each would render a thousand
images a paint. :class:`ObjectsLayer` draws a :class:`~engine.imaging.label_map.LabelMap` (the
top-most object per pixel) the way :class:`gui.canvas.mask_overlay.MaskLayer` draws one mask: when Qt
paints, only the window in view is rendered, at the view's resolution: a nearest-neighbour
resample of that window of ``ids``, outlines where neighbouring display pixels show different
objects, and one colour table (slot -> premultiplied ARGB32, fill and outline) applied to it.

What each change costs the GUI thread, whatever the image's size:

- show/hide, a new colour or class, another selected object (:meth:`set_style`): a new colour
  table (one entry an object) and, at the next paint, the table applied again to the display
  pixels under the changed objects' boxes. ``ids`` is not touched.
- a LabelMap mutation (an object's new mask, added, removed, reordered): the map repaints its
  window; :meth:`invalidate` then asks Qt for a repaint, and the paint re-renders only the
  display pixels of the windows the map logged (``LabelMap.changes_since``).
- a pan or zoom: one render of the viewport (cost in proportion to its pixels), reused by every
  repaint of the same view.

Hidden objects are drawn transparent here (their pixels stay theirs in ``ids``, so nothing under
them shows; ``LabelMap.set_hidden`` leaves them out of ``ids`` instead, for a repaint of their
box). The selected object is either left transparent (``selected_mode="clear"``: the app draws it
on top with a MaskLayer, at full detail) or emphasised here (``"emphasis"``).

Frames: the item draws in image pixels, (0, 0)-(W, H), like every layer of ``gui.canvas.layers``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping

import cv2
import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from engine.imaging.label_map import LabelMap, Window

from gui.canvas.mask_overlay import FILL_ALPHA, OUTLINE_PX, _premultiplied, screen_window

UNSTYLED_COLOUR = (160, 164, 170)  # an object set_style gave no colour (grey: plainly "no class")
SELECTED_FILL_ALPHA = 170  # "emphasis": the selected object's fill, denser than the others'
SELECTED_OUTLINE = (255, 255, 255)  # and its outline
SELECTED_MODES = ("clear", "emphasis")
_PATCH_SHARE = 0.5  # patches covering more of the view than this: render it all again
_SEPARATE_BOXES = 8  # a style change of up to this many objects re-colours each one's box apart


def nearest_map(source: int, shown: int) -> np.ndarray:
    """Per display pixel along one axis, the source pixel that cv2's nearest-neighbour resize of
    ``source`` pixels to ``shown`` samples (so a part of the view renders exactly as the whole)."""
    ramp = np.arange(source, dtype=np.int32).reshape(1, -1)
    return cv2.resize(ramp, (shown, 1), interpolation=cv2.INTER_NEAREST)[0]


def outline_flags(shown: np.ndarray, outline_px: int) -> np.ndarray:
    """``[h, w]`` bool: the pixels of an object (slot > 0) within ``outline_px`` (chessboard) of a
    pixel showing another slot; the array's edge is not an outline."""
    values = shown.astype(np.uint16 if shown.size == 0 or shown.max() < 65536 else np.float32)
    kernel = np.ones((2 * outline_px + 1,) * 2, np.uint8)
    low = cv2.erode(values, kernel, borderType=cv2.BORDER_REPLICATE)
    high = cv2.dilate(values, kernel, borderType=cv2.BORDER_REPLICATE)
    return (low != high) & (shown != 0)


class _View:
    """The rendered viewport: which window, at which size, from which map version."""

    __slots__ = ("window", "size", "version", "outline", "rows", "cols", "index", "pixels", "image", "lut")

    def __init__(self, window: Window, size: tuple[int, int], version: int, outline: int) -> None:
        self.window, self.size, self.version, self.outline = window, size, version, outline
        x0, y0, x1, y1 = window
        self.cols, self.rows = nearest_map(x1 - x0, size[0]), nearest_map(y1 - y0, size[1])
        self.index = np.zeros((size[1], size[0]), np.int32)  # slot * 2 + (1 on an outline)
        self.pixels = np.zeros((size[1], size[0]), np.uint32)  # what is drawn (the QImage's buffer)
        self.lut: np.ndarray | None = None  # the colour table the pixels were made with
        self.wrap()

    def wrap(self) -> None:
        w, h = self.size
        self.image = QtGui.QImage(self.pixels.data, w, h, 4 * w, QtGui.QImage.Format.Format_ARGB32_Premultiplied)

    def display_rect(self, window: Window) -> tuple[int, int, int, int] | None:
        """The display pixels ``(c0, r0, c1, r1)`` that sample image pixels in ``window``."""
        x0, y0 = self.window[:2]
        c0, c1 = np.searchsorted(self.cols, (window[0] - x0, window[2] - x0))
        r0, r1 = np.searchsorted(self.rows, (window[1] - y0, window[3] - y0))
        return (int(c0), int(r0), int(c1), int(r1)) if c1 > c0 and r1 > r0 else None


class ObjectsLayer(QtWidgets.QGraphicsObject):
    """A LabelMap's objects over the image rect (0, 0)-(W, H); see the module doc.

    ``renders`` (whole viewport renders), ``patches`` (partial re-renders) and ``lut_builds``
    (colour tables made) count the work done, for tests and the benchmark.
    """

    def __init__(self, z: float = 25) -> None:
        super().__init__()
        self.setZValue(z)
        self.label_map: LabelMap | None = None
        self._size = (0, 0)  # (W, H)
        self._colours: dict[Hashable, tuple[int, int, int]] = {}
        self._hidden: frozenset = frozenset()
        self._selected: Hashable | None = None
        self._fill_alpha, self._outline, self._selected_mode = FILL_ALPHA, OUTLINE_PX, "clear"
        self._lut: np.ndarray | None = None
        self._lut_key: tuple | None = None  # (map identity, slots version, capacity) the table is for
        self._lut_dirty: list[Window] | None = None  # where the table changed since the last paint (None: all)
        self._view: _View | None = None
        self.renders = self.patches = self.lut_builds = 0

    # -- content -----------------------------------------------------------------------------
    def set_label_map(self, label_map: LabelMap | None) -> None:
        """Draw ``label_map`` (the layer reads it when it paints; it is not copied) or nothing."""
        size = (0, 0) if label_map is None else (label_map.width, label_map.height)
        if size != self._size:
            self.prepareGeometryChange()
            self._size = size
        self.label_map = label_map
        self._view, self._lut, self._lut_key = None, None, None
        self.update()

    def set_style(self, slot_colours: Mapping[Hashable, tuple[int, int, int]], hidden: Iterable[Hashable] = (),
                  selected: Hashable | None = None, fill_alpha: int = FILL_ALPHA, outline: int = OUTLINE_PX,
                  selected_mode: str = "clear") -> None:
        """How objects are drawn, by key: ``slot_colours`` their RGB (an object without one is
        grey), ``hidden`` drawn transparent, ``selected`` left clear or emphasised
        (``selected_mode``, one of :data:`SELECTED_MODES`), ``fill_alpha`` 0-255, ``outline``
        the outline's width in screen pixels (0: none). Only the colour table changes (and, for
        a new outline width, the next paint renders the view again)."""
        if selected_mode not in SELECTED_MODES:
            raise ValueError(f"selected_mode must be one of {SELECTED_MODES}, not {selected_mode!r}")
        self._colours, self._hidden, self._selected = dict(slot_colours), frozenset(hidden), selected
        self._fill_alpha, self._selected_mode = int(fill_alpha), selected_mode
        if int(outline) != self._outline:
            self._outline = int(outline)
            self._view = None
        self._lut_key = None  # made again, and compared with the last one, now
        if self.label_map is None:
            return
        for box in self._table_change():
            self._update_window(box)

    def invalidate(self, window: Window | None = None) -> None:
        """After a LabelMap mutation: repaint ``window`` (image pixels, as the mutation returned
        it; None: all). The paint re-renders only what the map says changed."""
        if window is None:
            self.update()
        else:
            self._update_window(window)

    def set_shown(self, shown: bool) -> None:
        self.setVisible(shown)

    # -- painting ----------------------------------------------------------------------------
    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 - Qt API
        return QtCore.QRectF(0, 0, *self._size)

    def paint(self, painter: QtGui.QPainter, option, widget=None) -> None:  # noqa: D102 - Qt API
        seen = None if self.label_map is None else screen_window(painter, self._size)
        if seen is None:
            return
        window, size = seen
        image = self.view_image(window, size)
        x0, y0, x1, y1 = window
        painter.save()
        painter.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(QtCore.QRectF(x0, y0, x1 - x0, y1 - y0), image)
        painter.restore()

    def view_image(self, window: Window, size: tuple[int, int]) -> QtGui.QImage:
        """The objects in ``window`` (whole image pixels) at ``size`` (w, h) device pixels, as
        drawn: the last one brought up to date (what changed since) when the view is the same."""
        lm = self.label_map
        self._table_change()
        lut = self._lut
        v = self._view
        if v is None or v.window != window or v.size != size or v.outline != self._outline:
            return self._render(window, size, lut)
        touched = False
        if v.lut is not lut:  # first the new colours, where they changed...
            rects = None if self._lut_dirty is None else [r for r in map(v.display_rect, self._lut_dirty) if r]
            if rects is None:
                np.take(lut, v.index, out=v.pixels, mode='clip')
            else:
                for c0, r0, c1, r1 in rects:
                    np.take(lut, v.index[r0:r1, c0:c1], out=v.pixels[r0:r1, c0:c1], mode='clip')
            v.lut, self._lut_dirty, touched = lut, [], True
        if v.version != lm.version:  # ...then the pixels the map changed, in the new colours
            changes = lm.changes_since(v.version)
            rects = None if changes is None else [r for r in map(v.display_rect, changes) if r is not None]
            if rects is None or sum((r[2] - r[0]) * (r[3] - r[1]) for r in rects) > _PATCH_SHARE * size[0] * size[1]:
                return self._render(window, size, lut)
            for rect in rects:
                self._patch(v, rect)
            v.version, touched = lm.version, True
        if touched:
            v.wrap()  # a new QImage over the same pixels: whatever cached the last one sees a new image
        return v.image

    # -- internals ---------------------------------------------------------------------------
    def _table_change(self) -> list[Window]:
        """Bring the colour table up to date with the style and the map's slots (made again only
        when one of them changed): ``[2 * capacity]`` uint32, entry ``2 * slot`` the fill,
        ``2 * slot + 1`` the outline (premultiplied ARGB32). Where entries changed, the boxes of
        their objects are noted for the next paint (each of a few objects apart: a selection
        moving across the image touches two small boxes, not the one spanning both) and returned
        (the whole image when the table is new or resized; [] when nothing changed)."""
        lm = self.label_map
        key = (id(lm), lm.slots_version, lm.capacity)
        if self._lut is not None and self._lut_key == key:
            return []
        old, new = self._lut, self._make_table()
        self._lut, self._lut_key = new, key
        if old is None or old.shape != new.shape:
            self._lut_dirty = None  # all of the view
            return [(0, 0, lm.width, lm.height)]
        slots = np.unique(np.flatnonzero(old != new) // 2)
        groups = [[s] for s in slots] if slots.size <= _SEPARATE_BOXES else [slots]
        boxes = [b for b in map(lm.boxes_of, groups) if b is not None]
        if self._lut_dirty is not None:
            self._lut_dirty.extend(boxes)
            if len(self._lut_dirty) > 64:
                self._lut_dirty = None
        return boxes

    def _make_table(self) -> np.ndarray:
        lm = self.label_map
        lut = np.zeros(2 * lm.capacity, np.uint32)
        cache: dict[tuple, tuple[int, int]] = {}
        for k in lm.keys:
            if k in self._hidden:
                continue
            rgb = self._colours.get(k, UNSTYLED_COLOUR)
            if k == self._selected and self._selected is not None:
                if self._selected_mode == "clear":
                    continue
                pair = (_premultiplied(rgb, max(self._fill_alpha, SELECTED_FILL_ALPHA)),
                        _premultiplied(SELECTED_OUTLINE, 255))
            else:
                pair = cache.get(rgb)
                if pair is None:
                    pair = cache[rgb] = (_premultiplied(rgb, self._fill_alpha), _premultiplied(rgb, 255))
            slot = lm.slot(k)
            lut[2 * slot], lut[2 * slot + 1] = pair
        if self._outline <= 0:
            lut[1::2] = lut[0::2]
        self.lut_builds += 1
        return lut

    def _render(self, window: Window, size: tuple[int, int], lut: np.ndarray) -> QtGui.QImage:
        lm = self.label_map
        v = _View(window, size, lm.version, self._outline)
        x0, y0, x1, y1 = window
        shown = cv2.resize(lm.ids[y0:y1, x0:x1].view(np.int32), size, interpolation=cv2.INTER_NEAREST)
        np.multiply(shown, 2, out=v.index)
        if self._outline > 0:
            v.index += outline_flags(shown, self._outline)
        np.take(lut, v.index, out=v.pixels, mode='clip')
        v.lut = lut
        self._view, self._lut_dirty = v, []
        self.renders += 1
        return v.image

    def _patch(self, v: _View, rect: tuple[int, int, int, int]) -> None:
        """Render the display pixels ``rect`` (c0, r0, c1, r1) again from the map, with the band
        around it whose outline flags may have changed."""
        h, w = v.index.shape
        o = v.outline
        c0, r0, c1, r1 = max(0, rect[0] - o), max(0, rect[1] - o), min(w, rect[2] + o), min(h, rect[3] + o)
        e0, f0, e1, f1 = max(0, c0 - o), max(0, r0 - o), min(w, c1 + o), min(h, r1 + o)  # with context
        x0, y0 = v.window[:2]
        shown = self.label_map.ids[np.ix_(v.rows[f0:f1] + y0, v.cols[e0:e1] + x0)].view(np.int32)
        index = shown * 2
        if o > 0:
            index += outline_flags(shown, o)
        v.index[r0:r1, c0:c1] = index[r0 - f0:r1 - f0, c0 - e0:c1 - e0]
        np.take(v.lut, v.index[r0:r1, c0:c1], out=v.pixels[r0:r1, c0:c1], mode='clip')
        self.patches += 1

    def _update_window(self, window: Window) -> None:
        """Ask Qt to repaint ``window`` (image pixels) and the outline band around it."""
        v = self._view
        margin = 1.0
        if v is not None:
            scale = max((v.window[2] - v.window[0]) / v.size[0], (v.window[3] - v.window[1]) / v.size[1])
            margin += (v.outline + 1) * scale
        x0, y0, x1, y1 = window
        self.update(QtCore.QRectF(x0 - margin, y0 - margin, x1 - x0 + 2 * margin, y1 - y0 + 2 * margin))
