"""The brush and eraser on the canvas: a round brush shown as the cursor, and the stroke drawn
live while dragging; the stroke becomes one edit when the mouse is released.

During a drag, a move event only appends a point to a vector stroke item (drawn in image
pixels, a pen as wide as the brush) and marks the new segment dirty: no mask is touched, so a
stroke keeps up with the mouse on a 12-megapixel image. On release (or a click without a drag)
``stroke_finished(points, radius, erase)`` carries the polyline, in (x, y) image pixels, to the
controller, which pushes an :class:`~engine.annotation.corrections.PaintStroke` (the mask at
full resolution, off the move events). The radius is in image pixels, so the ring cursor
shows exactly what the brush covers at any zoom.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from gui.canvas.point_editing import Tool

MIN_RADIUS, MAX_RADIUS = 1.0, 2000.0
RADIUS_STEP = 1.25  # [ and ] scale the radius by this
DEFAULT_RADIUS_FRACTION = 0.015  # of the image's longer side, until the user picks a size
ERASER_COLOUR = (255, 80, 80)
BRUSH_COLOUR = (110, 220, 255)  # the mask's hue, lighter: the stroke reads over the mask it extends
STROKE_ALPHA = 190


class StrokeItem(QtWidgets.QGraphicsItem):
    """The stroke being drawn, in image pixels, never hit-tested. Its bounding rectangle is the
    whole image, set once per stroke: a rectangle that grows with the stroke would make Qt
    repaint all of it on every move (and the 12-megapixel photo under it). A move repaints only
    its new segment, and a paint strokes only the segments near what it repaints."""

    _EMPTY = QtGui.QPainterPath()

    def __init__(self, z: float = 40) -> None:
        super().__init__()
        self.setZValue(z)
        self.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)  # for exposedRect
        self.points: list[tuple[float, float]] = []
        self.radius = 1.0
        self._rect = QtCore.QRectF()
        self._pen = QtGui.QPen()

    def begin(self, x: float, y: float, radius: float, erase: bool, image_size: tuple[int, int]) -> None:
        colour = QtGui.QColor(*(ERASER_COLOUR if erase else BRUSH_COLOUR), STROKE_ALPHA)
        self._pen = QtGui.QPen(colour, 2.0 * radius, QtCore.Qt.PenStyle.SolidLine,
                               QtCore.Qt.PenCapStyle.RoundCap, QtCore.Qt.PenJoinStyle.RoundJoin)
        self.radius = radius
        self.prepareGeometryChange()
        self._rect = QtCore.QRectF(0, 0, *image_size).adjusted(-radius - 1, -radius - 1, radius + 1, radius + 1)
        self.points = [(x, y)]
        self.update(self._segment_rect(x, y, x, y))

    def extend(self, x: float, y: float) -> None:
        lx, ly = self.points[-1]
        self.points.append((x, y))
        self.update(self._segment_rect(lx, ly, x, y))  # only the new segment is repainted

    def end(self) -> None:
        if self.points:
            xs, ys = zip(*self.points)
            self.update(self._segment_rect(min(xs), min(ys), max(xs), max(ys)))
        self.points = []

    def _segment_rect(self, x0: float, y0: float, x1: float, y1: float) -> QtCore.QRectF:
        r = self.radius + 1
        return QtCore.QRectF(QtCore.QPointF(min(x0, x1) - r, min(y0, y1) - r),
                             QtCore.QPointF(max(x0, x1) + r, max(y0, y1) + r))

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 - Qt API
        return self._rect

    def shape(self) -> QtGui.QPainterPath:  # noqa: D102 - Qt API
        return self._EMPTY

    def paint(self, painter: QtGui.QPainter, option, widget=None) -> None:  # noqa: D102 - Qt API
        if not self.points:
            return
        painter.setPen(self._pen)
        if len(self.points) == 1:
            painter.drawPoint(QtCore.QPointF(*self.points[0]))  # a round cap: the disc
            return
        painter.drawPath(self.path_near(option.exposedRect))

    def path_near(self, rect: QtCore.QRectF) -> QtGui.QPainterPath:
        """The runs of segments that come within the brush's radius of ``rect``, as one path
        (stroked once, so where runs overlap the colour is not laid twice)."""
        pts = np.asarray(self.points)
        a, b = pts[:-1], pts[1:]
        r = self.radius + 1
        near = ((np.minimum(a[:, 0], b[:, 0]) - r <= rect.right()) & (np.maximum(a[:, 0], b[:, 0]) + r >= rect.left())
                & (np.minimum(a[:, 1], b[:, 1]) - r <= rect.bottom()) & (np.maximum(a[:, 1], b[:, 1]) + r >= rect.top()))
        path = QtGui.QPainterPath()
        previous = False
        for i in np.flatnonzero(near):
            if not previous or not near[i - 1]:
                path.moveTo(*a[i])
            path.lineTo(*b[i])
            previous = True
        return path


class BrushRing(QtWidgets.QGraphicsEllipseItem):
    """The cursor of the brush: a circle of the brush's radius in image pixels (light over dark,
    to read on any photo), never hit-tested."""

    _EMPTY = QtGui.QPainterPath()

    def __init__(self, z: float = 60) -> None:
        super().__init__()
        self.setZValue(z)
        self.setVisible(False)

    def shape(self) -> QtGui.QPainterPath:  # noqa: D102 - Qt API
        return self._EMPTY

    def paint(self, painter: QtGui.QPainter, option, widget=None) -> None:  # noqa: D102 - Qt API
        for colour, width in ((QtGui.QColor(0, 0, 0, 200), 3.0), (QtGui.QColor(255, 255, 255), 1.2)):
            pen = QtGui.QPen(colour, width)
            pen.setCosmetic(True)  # screen pixels wide at any zoom
            painter.setPen(pen)
            painter.drawEllipse(self.rect())


class BrushTool(QtCore.QObject):
    """The brush and eraser gestures of one canvas (active with the Brush or Eraser tool)."""

    stroke_finished = QtCore.Signal(object, float, bool)  # [(x, y), ...] image pixels, radius, erase
    radius_changed = QtCore.Signal(float)

    def __init__(self, canvas) -> None:
        super().__init__(canvas)
        self.canvas = canvas
        self.radius = 10.0
        self._radius_chosen = False  # until the user sizes the brush, it follows the image size
        self.points: list[tuple[float, float]] = []
        self.erase = False
        self.stroke_item = StrokeItem()
        self.ring = BrushRing()
        for item in (self.stroke_item, self.ring):
            canvas.vb.addItem(item, ignoreBounds=True)

    @property
    def active(self) -> bool:
        editor = self.canvas.editor
        return editor.enabled and editor.tool in (Tool.BRUSH, Tool.ERASER)

    @property
    def drawing(self) -> bool:
        return bool(self.points)

    # ------------------------------------------------------------------ size
    def image_changed(self, size: tuple[int, int]) -> None:
        if not self._radius_chosen and max(size) > 0:
            self._set_radius(max(size) * DEFAULT_RADIUS_FRACTION)

    def set_radius(self, radius: float) -> None:
        self._radius_chosen = True
        self._set_radius(radius)

    def grow(self) -> None:
        self.set_radius(max(self.radius * RADIUS_STEP, self.radius + 1))

    def shrink(self) -> None:
        self.set_radius(min(self.radius / RADIUS_STEP, self.radius - 1))

    def _set_radius(self, radius: float) -> None:
        self.radius = float(min(max(round(radius), MIN_RADIUS), MAX_RADIUS))
        centre = self.ring.rect().center()
        self._place_ring(centre.x(), centre.y())
        self.radius_changed.emit(self.radius)

    # ------------------------------------------------------------------ cursor
    def hover(self, xy: tuple[float, float] | None) -> None:
        """The mouse is at image pixel ``xy`` (None: off the image)."""
        self.ring.setVisible(self.active and xy is not None)
        if xy is not None:
            self._place_ring(*xy)

    def tool_changed(self) -> None:
        if not self.active:
            self.ring.setVisible(False)
            self.cancel()

    def _place_ring(self, x: float, y: float) -> None:
        r = self.radius
        self.ring.setRect(QtCore.QRectF(x - r, y - r, 2 * r, 2 * r))

    # ------------------------------------------------------------------ gestures
    def click(self, scene_pos: QtCore.QPointF, button: QtCore.Qt.MouseButton) -> bool:
        """A click paints one disc. True when the brush took the event."""
        if not self.active or button != QtCore.Qt.MouseButton.LeftButton:
            return False
        x, y = self.canvas.scene_to_image(scene_pos)
        if not self.canvas.contains_image_point(x, y):
            return False
        self.stroke_finished.emit([(x, y)], self.radius, self.canvas.editor.tool is Tool.ERASER)
        return True

    def drag(self, phase: str, scene_pos: QtCore.QPointF, start_scene_pos: QtCore.QPointF,
             button: QtCore.Qt.MouseButton) -> bool:
        """A drag step ("start", "move", "finish"); True when the brush took it."""
        if phase == "start":
            if not self.active or button != QtCore.Qt.MouseButton.LeftButton:
                return False
            self.erase = self.canvas.editor.tool is Tool.ERASER
            x, y = self.canvas.scene_to_image(start_scene_pos)
            self.points = [(x, y)]
            self.stroke_item.begin(x, y, self.radius, self.erase, self.canvas.image_size)
            return True
        if not self.points:
            return False
        x, y = self.canvas.scene_to_image(scene_pos)
        self._place_ring(x, y)
        if (x, y) != self.points[-1]:
            self.points.append((x, y))
            self.stroke_item.extend(x, y)
        if phase == "finish":
            points, self.points = self.points, []
            self.stroke_finished.emit(points, self.radius, self.erase)
            # the stroke stays drawn until the mask shows it (``stroke_applied``)
        return True

    def stroke_applied(self) -> None:
        """The stroke's edit was applied (or refused): the live stroke goes, the mask shows it."""
        if not self.points:
            self.stroke_item.end()

    def cancel(self) -> None:
        self.points = []
        self.stroke_item.end()
