"""The Polygon tool: the shown mask as polygon rings with vertex handles, edited with the mouse.

With the tool on, the mask is traced into shapes (:func:`engine.imaging.polygons.editable_shapes`:
outer rings and holes, simplified with the tolerance the user sets) on a background thread, so a
12-megapixel mask never holds the window; the rings are drawn over the canvas in image pixels
(corner convention, like every layer), the handles at a constant size on screen. On a noisy mask
its specks and pinholes are left out, the tolerance raised and at most ``MAX_EDIT_VERTICES``
handles shown, so the handles stay usable; the message area says what was left out (``noted``).

Gestures (left button unless said): drag a vertex (its ring follows live); double-click on an
edge: add a vertex there; right click on a vertex, or select it (click) and press Delete: delete
it (a ring keeps 3). Anything else falls through to the view box (drag pans, wheel zooms).

Each finished gesture rasterises the edit (:func:`engine.imaging.polygons.apply_shape_edit`:
only the pixels the edit swept change, as a window of the mask) and emits ``edited(patch,
text)``; the controller pushes it as one ``ReplaceMask`` undo step. The mask that push shows
keeps the edited rings as they are (no re-trace that would move the other vertices); any other
new mask (undo, a point edit, another image) is traced again.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from engine.errors import InputError
from engine.imaging.polygons import (Outline, apply_shape_edit, deleted_vertex, editable_shapes, inserted_vertex,
                                     moved_vertex, nearest_edge)

from gui.canvas.point_editing import HIT_RADIUS_PX
from gui.engine_thread.background import BackgroundTask

RING_COLOUR = QtGui.QColor(255, 153, 0)  # orange: apart from the mask's blue and the box's yellow
HOLE_COLOUR = QtGui.QColor(255, 64, 160)
HANDLE_PX = 7  # handle side on screen
SELECTED_PX = 11
DEFAULT_TOLERANCE_PX = 1.0


class PolygonLayer(pg.GraphicsObject):
    """Rings and handles of the shown mask (image pixels); the Polygon tool's mouse gestures."""

    edited = QtCore.Signal(object, str)  # (row0, col0, patch): the mask's new pixels in a window; the undo text
    shapes_shown = QtCore.Signal()  # traced shapes are drawn (tests, screenshots)
    refused = QtCore.Signal(str)  # an edit that cannot be made, and why
    noted = QtCore.Signal(str)  # what the shapes shown leave out of a noisy mask, and why

    def __init__(self, z: float = 60) -> None:
        super().__init__()
        self.setZValue(z)
        self.setVisible(False)
        self.active = False
        self.tolerance = DEFAULT_TOLERANCE_PX
        self.traced_tolerance = DEFAULT_TOLERANCE_PX  # the shapes shown were simplified with this (>= tolerance)
        self.mask: np.ndarray | None = None
        self.shapes: list[Outline] = []
        self.selected: tuple[int, int, int] | None = None  # (shape, ring (0 outer, 1.. holes), vertex)
        self._size = (0, 0)  # (W, H) of the mask
        self._writing = False  # our edit is being pushed: the mask it makes is already drawn as rings
        self._drag: tuple[int, int, int] | None = None
        self._drag_before: Outline | None = None
        self._task: BackgroundTask | None = None
        self._trace_again = False
        self._path = QtGui.QPainterPath()
        self._hole_path = QtGui.QPainterPath()
        self._drag_paths: list = []  # during a drag: (the dragged ring less two edges, those two edges), with colours

    # ------------------------------------------------------------------ from outside
    def set_active(self, active: bool) -> None:
        """The Polygon tool was chosen (True) or left."""
        if active == self.active:
            return
        self.active = active
        self.setVisible(active)
        self._end_drag()
        if active:
            self._trace()
        else:
            self._set_shapes([])

    def set_tolerance(self, tolerance_px: float) -> None:
        self.tolerance = float(tolerance_px)
        if self.active:
            self._trace()

    def set_mask(self, mask: np.ndarray | None) -> None:
        """The mask shown on the canvas changed ([H, W] bool or None)."""
        self.mask = mask
        self.prepareGeometryChange()
        self._size = (0, 0) if mask is None else (int(mask.shape[1]), int(mask.shape[0]))
        if self._writing and mask is not None:
            return  # our own edit came back: the rings on screen are already the edited ones
        self._end_drag()
        self._set_shapes([])  # never edit the old mask's rings on the new mask
        if self.active:
            self._trace()

    def delete_selected(self) -> bool:
        """Delete the selected vertex (the Delete key); False when none is selected."""
        if not self.active or self.selected is None or self._drag is not None:
            return False
        self._delete(self.selected)
        return True

    @property
    def tracing(self) -> bool:
        return self._task is not None

    # ------------------------------------------------------------------ tracing off the GUI thread
    def _trace(self) -> None:
        if self._task is not None:  # one at a time; the newest mask is traced when it ends
            self._trace_again = True
            return
        mask, tolerance = self.mask, self.tolerance
        if mask is None:
            self._set_shapes([])
            return
        task = BackgroundTask(lambda _task: (mask, editable_shapes(mask, tolerance)))
        task.done.connect(self._on_traced)
        task.failed.connect(self.refused)
        task.ended.connect(self._on_trace_ended)
        self._task = task
        task.start()

    def _on_traced(self, result) -> None:
        mask, editable = result
        if mask is self.mask and self._drag is None and self.active:
            self.traced_tolerance = editable.tolerance_px
            self._set_shapes(editable.shapes)
            self.shapes_shown.emit()
            note = editable.note()
            if note:
                self.noted.emit(note)
        else:
            self._trace_again = True  # traced a mask no longer shown

    def _on_trace_ended(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.dispose()
        if self._trace_again:
            self._trace_again = False
            if self.active:
                self._trace()

    def wait(self) -> None:
        """Wait for a running trace (closing the window; tests)."""
        if self._task is not None:
            self._task.wait()

    # ------------------------------------------------------------------ drawing
    def _set_shapes(self, shapes: list[Outline]) -> None:
        self.shapes = list(shapes)
        self.selected = None
        self._rebuild_paths()

    def _rebuild_paths(self, changed: np.ndarray | None = None) -> None:
        """New ring paths; repaint all of the layer, or during a drag only the box of ``changed``
        ([N, 2] image pixels): repainting the whole view redraws a 12-megapixel photo and mask
        under it at every mouse move. A drag's first move puts everything but the dragged
        vertex's two edges in the fixed paths, so each move builds a path of 3 points, however
        many vertices the rings have."""
        if self._drag is None:
            self._path = _rings_path([s.outer for s in self.shapes])
            self._hole_path = _rings_path([h for s in self.shapes for h in s.holes])
            self._drag_paths = []
        else:
            i, j, k = self._drag
            ring = _ring_of(self.shapes[i], j)
            colour = RING_COLOUR if j == 0 else HOLE_COLOUR
            if not self._drag_paths:
                self._path = _rings_path([s.outer for n, s in enumerate(self.shapes) if (n, 0) != (i, j)])
                self._hole_path = _rings_path([h for n, s in enumerate(self.shapes)
                                               for m, h in enumerate(s.holes, 1) if (n, m) != (i, j)])
                rest = ring[np.arange(k + 1, k + len(ring)) % len(ring)]  # the next vertex round to the previous
                self._drag_paths = [(_polyline_path(rest), colour), None]
            self._drag_paths[1] = (_polyline_path(ring[np.arange(k - 1, k + 2) % len(ring)]), colour)
        if changed is None:
            self.update()
            return
        margin = (SELECTED_PX + 4) / self._screen_scale()  # handles are drawn in screen pixels
        (x0, y0), (x1, y1) = changed.min(0) - margin, changed.max(0) + margin
        self.update(QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 - Qt API: the whole image (gestures anywhere on it)
        w, h = self._size
        return QtCore.QRectF(-HIT_RADIUS_PX, -HIT_RADIUS_PX, w + 2 * HIT_RADIUS_PX, h + 2 * HIT_RADIUS_PX)

    def paint(self, painter: QtGui.QPainter, option, widget=None) -> None:  # noqa: D401 - Qt override
        if not self.shapes:
            return
        for path, colour in [(self._path, RING_COLOUR), (self._hole_path, HOLE_COLOUR), *self._drag_paths]:
            pen = QtGui.QPen(colour, 2.0)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.drawPath(path)
        # Handles in device pixels: constant size at any zoom, one drawPoints call per colour.
        t = painter.transform()
        vertices = np.concatenate([r for s in self.shapes for r in (s.outer, *s.holes)])
        xy = np.column_stack((t.m11() * vertices[:, 0] + t.m21() * vertices[:, 1] + t.dx(),
                              t.m12() * vertices[:, 0] + t.m22() * vertices[:, 1] + t.dy()))
        # Only the handles in the region being repainted (a drag repaints a small box).
        device = t.mapRect(painter.clipBoundingRect()) if painter.hasClipping() else QtCore.QRectF(painter.viewport())
        device = device.adjusted(-SELECTED_PX, -SELECTED_PX, SELECTED_PX, SELECTED_PX)
        inside = ((xy[:, 0] >= device.left()) & (xy[:, 0] <= device.right())
                  & (xy[:, 1] >= device.top()) & (xy[:, 1] <= device.bottom()))
        points = _polygonf(xy[inside])
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, False)
        for width, colour in ((HANDLE_PX + 2, QtGui.QColor(0, 0, 0, 200)), (HANDLE_PX, QtGui.QColor("white"))):
            pen = QtGui.QPen(colour, width, QtCore.Qt.PenStyle.SolidLine, QtCore.Qt.PenCapStyle.SquareCap)
            painter.setPen(pen)
            painter.drawPoints(points)
        if self.selected is not None:
            s, r, k = self.selected
            x, y = self._ring(s, r)[k]
            centre = t.map(QtCore.QPointF(x, y))
            pen = QtGui.QPen(RING_COLOUR, SELECTED_PX, QtCore.Qt.PenStyle.SolidLine, QtCore.Qt.PenCapStyle.SquareCap)
            painter.setPen(pen)
            painter.drawPoint(centre)
        painter.restore()

    # ------------------------------------------------------------------ hit testing (screen pixels)
    def _ring(self, shape: int, ring: int) -> np.ndarray:
        s = self.shapes[shape]
        return s.outer if ring == 0 else s.holes[ring - 1]

    def _rings(self):
        for i, s in enumerate(self.shapes):
            for j, r in enumerate((s.outer, *s.holes)):
                yield i, j, r

    def _screen_scale(self) -> float:
        """Screen pixels per image pixel (the view keeps the aspect ratio)."""
        t = self.sceneTransform()
        return math.hypot(t.m11(), t.m12()) or 1.0

    def vertex_at(self, scene_pos: QtCore.QPointF) -> tuple[int, int, int] | None:
        """(shape, ring, vertex) of the handle nearest ``scene_pos`` within HIT_RADIUS_PX screen pixels."""
        if not self.shapes:
            return None
        p = self.mapFromScene(scene_pos)
        rings = list(self._rings())
        xy = np.concatenate([ring for _, _, ring in rings])  # every handle at once: one distance each
        d = np.hypot(xy[:, 0] - p.x(), xy[:, 1] - p.y())
        n = int(np.argmin(d))
        if d[n] > HIT_RADIUS_PX / self._screen_scale():
            return None
        ends = np.cumsum([len(ring) for _, _, ring in rings])
        r = int(np.searchsorted(ends, n, side="right"))
        return rings[r][0], rings[r][1], n - (int(ends[r - 1]) if r else 0)

    def edge_at(self, scene_pos: QtCore.QPointF) -> tuple[int, int, int, tuple[float, float]] | None:
        """(shape, ring, edge, foot) of the edge nearest ``scene_pos`` within HIT_RADIUS_PX screen pixels."""
        p = self.mapFromScene(scene_pos)
        best, best_d = None, HIT_RADIUS_PX / self._screen_scale()
        for i, j, ring in self._rings():
            k, d, foot = nearest_edge(ring, (p.x(), p.y()))
            if d <= best_d:
                best, best_d = (i, j, k, foot), d
        return best

    # ------------------------------------------------------------------ gestures
    def mouseClickEvent(self, ev) -> None:  # noqa: N802 - pyqtgraph API
        if not self.active or not self.shapes:
            ev.ignore()
            return
        Btn = QtCore.Qt.MouseButton
        hit = self.vertex_at(ev.scenePos())
        if ev.button() == Btn.RightButton and hit is not None:
            ev.accept()
            self._delete(hit)
        elif ev.button() == Btn.LeftButton and ev.double():
            edge = self.edge_at(ev.scenePos()) if hit is None else None
            if edge is None:
                ev.ignore()
                return
            ev.accept()
            i, j, k, foot = edge
            self._commit(i, j, inserted_vertex(self._ring(i, j), k, foot), "Add polygon vertex", select=k + 1)
        elif ev.button() == Btn.LeftButton and hit is not None:
            ev.accept()
            self.selected = hit
            self.update()
        else:
            ev.ignore()

    def mouseDragEvent(self, ev) -> None:  # noqa: N802 - pyqtgraph API
        if ev.isStart():
            hit = self.vertex_at(ev.buttonDownScenePos()) if self.active else None
            if hit is None or ev.button() != QtCore.Qt.MouseButton.LeftButton:
                ev.ignore()  # the view box pans
                return
            self._drag, self.selected = hit, hit
            self._drag_before = self.shapes[hit[0]]
        if self._drag is None:
            ev.ignore()
            return
        ev.accept()
        i, j, k = self._drag
        p = self.mapFromScene(ev.scenePos())
        w, h = self._size
        xy = (min(max(p.x(), 0.0), float(w)), min(max(p.y(), 0.0), float(h)))  # corners may lie on the border
        ring = _ring_of(self.shapes[i], j)
        near = [ring[k - 1], ring[k], ring[(k + 1) % len(ring)], xy]  # the two edges before and after the move
        self.shapes[i] = _with_ring(self._drag_before, j, moved_vertex(_ring_of(self._drag_before, j), k, xy))
        self._rebuild_paths(np.array(near))
        if ev.isFinish():
            before = self._drag_before
            self._end_drag()
            self._rebuild_paths()
            self._write(i, before, "Move polygon vertex")

    def _delete(self, hit: tuple[int, int, int]) -> None:
        i, j, k = hit
        try:
            ring = deleted_vertex(self._ring(i, j), k)
        except InputError as err:
            self.refused.emit(str(err))
            return
        self._commit(i, j, ring, "Delete polygon vertex", select=None)

    def _commit(self, i: int, j: int, ring: np.ndarray, text: str, select: int | None) -> None:
        before = self.shapes[i]
        self.shapes[i] = _with_ring(before, j, ring)
        self.selected = None if select is None else (i, j, select)
        self._rebuild_paths()
        self._write(i, before, text)

    def _write(self, i: int, before: Outline, text: str) -> None:
        """Rasterise the edit of shape ``i`` into the mask and hand it on (one undo step)."""
        if self.mask is None:
            return
        patch = apply_shape_edit(self.mask, before, self.shapes[i], self.shapes, self.traced_tolerance)
        if patch is None:
            return  # the rings crossed no pixel centre: the mask is the same
        self._writing = True  # the push is synchronous: the new mask is shown before emit returns
        try:
            self.edited.emit(patch, text)
        finally:
            self._writing = False

    def _end_drag(self) -> None:
        self._drag = None
        self._drag_before = None


def _ring_of(shape: Outline, ring: int) -> np.ndarray:
    return shape.outer if ring == 0 else shape.holes[ring - 1]


def _with_ring(shape: Outline, ring: int, new: np.ndarray) -> Outline:
    if ring == 0:
        return Outline(new, shape.holes)
    holes = list(shape.holes)
    holes[ring - 1] = new
    return Outline(shape.outer, tuple(holes))


def _polygonf(xy: np.ndarray) -> QtGui.QPolygonF:
    """[N, 2] float -> QPolygonF, written through a numpy view of its memory (a list of
    QPointF costs about 7 µs a vertex: 50 ms for 7,000 handles at every repaint)."""
    poly = pg.functions.create_qpolygonf(len(xy))
    pg.functions.ndarray_from_qpolygonf(poly)[:] = xy
    return poly


def _polyline_path(xy: np.ndarray) -> QtGui.QPainterPath:
    """An open polyline through ``xy`` ([N, 2]) as a path."""
    return pg.arrayToQPath(xy[:, 0], xy[:, 1]) if len(xy) > 1 else QtGui.QPainterPath()


def _rings_path(rings: list[np.ndarray]) -> QtGui.QPainterPath:
    """Closed rings as one path, built in one call (pyqtgraph's array path)."""
    if not rings:
        return QtGui.QPainterPath()
    closed = [np.vstack((r, r[:1])) for r in rings]
    xy = np.concatenate(closed)
    connect = np.ones(len(xy), dtype=bool)
    connect[np.cumsum([len(r) for r in closed]) - 1] = False
    return pg.arrayToQPath(xy[:, 0], xy[:, 1], connect=connect)
