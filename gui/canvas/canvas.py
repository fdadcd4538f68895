"""The canvas: a pyqtgraph view of the image and its layers, with zoom, pan and point editing.

All layers live in one view box whose y axis points down, so image pixel (x, y) is view
coordinate (x, y) for every layer (see ``gui.canvas.layers``). Coordinate helpers convert between image
pixels, scene coordinates (pyqtgraph's scene is 1:1 with the viewport's pixels) and viewport
widget positions (what a mouse event carries).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from engine.prompts import Box, Point

from gui.canvas.brush import BrushTool
from gui.canvas.layers import BoxLayer, GridMapLayer, ImageLayer, LayerStyle, MaskLayer, PointsLayer
from gui.canvas.objects_layer import ObjectsLayer
from gui.canvas.point_editing import PointEditor
from gui.canvas.polygon_editor import PolygonLayer

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)


class CanvasViewBox(pg.ViewBox):
    """A view box that offers clicks and drags to the point editor before panning."""

    def __init__(self) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.editor: PointEditor | None = None
        self.brush: BrushTool | None = None  # takes the left button first with the Brush and Eraser tools
        self.setBackgroundColor(QtGui.QColor(38, 40, 44))

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 - pyqtgraph override
        if self.brush is not None and self.brush.click(ev.scenePos(), ev.button()):
            ev.accept()
            return
        if self.editor is not None and self.editor.click(ev.scenePos(), ev.button(), ev.modifiers()):
            ev.accept()
            return
        ev.ignore()

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802 - pyqtgraph override
        if self.editor is not None:
            if ev.isStart():
                phase = "start"
            elif ev.isFinish():
                phase = "finish"
            else:
                phase = "move"
            start = ev.buttonDownScenePos(ev.button())
            if self.brush is not None and self.brush.drag(phase, ev.scenePos(), start, ev.button()):
                ev.accept()
                return
            handled = self.editor.drag(phase, ev.scenePos(), start, ev.button(), ev.modifiers())
            if phase == "start" and handled:
                # the start event carries a real movement too: show it at once
                self.editor.drag("move", ev.scenePos(), start, ev.button(), ev.modifiers())
            if handled:
                ev.accept()
                return
        super().mouseDragEvent(ev, axis)


class Canvas(pg.GraphicsView):
    """The central widget: image, heat map, fused map, mask, points, box."""

    cursor_moved = QtCore.Signal(object)  # (x, y) image pixels, or None off the image
    view_changed = QtCore.Signal()
    interacting = QtCore.Signal()  # a press, a drag step, a release or a wheel turn on the canvas

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent, background=QtGui.QColor(38, 40, 44))
        self.setMinimumSize(320, 240)
        self.vb = CanvasViewBox()
        self.setCentralItem(self.vb)
        self.image_layer = ImageLayer()
        self.heat_layer = GridMapLayer(z=10, colormap="inferno")
        self.fused_layer = GridMapLayer(z=20, colormap="viridis")
        self.mask_layer = MaskLayer(z=30)
        self.objects_layer = ObjectsLayer(z=25)  # every object in its class colour; the selected one: mask_layer
        self.box_layer = BoxLayer(z=45)  # the prompt box (drawn by the presenter)
        self.drag_layer = BoxLayer(z=46)  # the box being dragged (drawn by the point editor)
        self.points_layer = PointsLayer(z=50)
        self.polygons = PolygonLayer(z=60)  # the Polygon tool's rings and handles
        self.vb.addItem(self.image_layer)
        for item in (self.heat_layer, self.fused_layer, self.objects_layer, self.mask_layer,
                     self.box_layer, self.drag_layer, self.points_layer, self.polygons):
            self.vb.addItem(item, ignoreBounds=True)  # only the image decides what "fit" means
        self.style = LayerStyle()
        self.editor = PointEditor(self)
        self.vb.editor = self.editor
        self.brush = BrushTool(self)
        self.vb.brush = self.brush
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.vb.sigRangeChanged.connect(lambda *_: self.view_changed.emit())
        self._heat_grid: np.ndarray | None = None
        self.apply_style(self.style)
        self.setToolTip("")

    # ------------------------------------------------------------------ input
    # Each edit, drag or zoom starts here; ``interacting`` lets the engine give way meanwhile
    # (gui.engine_thread.input_priority). Hovering does not count: it only updates the cursor and status.
    def mousePressEvent(self, ev) -> None:  # noqa: N802 - Qt override
        self.interacting.emit()
        super().mousePressEvent(ev)

    def mouseMoveEvent(self, ev) -> None:  # noqa: N802 - Qt override
        if ev.buttons() != QtCore.Qt.MouseButton.NoButton:
            self.interacting.emit()
        super().mouseMoveEvent(ev)

    def mouseReleaseEvent(self, ev) -> None:  # noqa: N802 - Qt override
        self.interacting.emit()
        super().mouseReleaseEvent(ev)

    def wheelEvent(self, ev) -> None:  # noqa: N802 - Qt override
        self.interacting.emit()
        super().wheelEvent(ev)

    # ------------------------------------------------------------------ content
    @property
    def image_size(self) -> tuple[int, int]:
        """(W, H) of the image shown, (0, 0) when none."""
        return self.image_layer.size

    def set_image(self, rgb: np.ndarray | None) -> None:
        if rgb is None:
            self.image_layer.clear()
            self.image_layer.size = (0, 0)
            self.editor.enabled = False
        else:
            self.image_layer.set_rgb(rgb)
            self.editor.enabled = True
        self.set_heatmap(None)
        self.set_fused(None)
        self.set_mask(None)
        self.set_points(())
        self.set_box(None)
        self.brush.cancel()
        self.brush.image_changed(self.image_size)
        self.fit()

    def set_heatmap(self, grid: np.ndarray | None) -> None:
        self.heat_layer.set_map(grid, self.image_size)

    def set_fused(self, grid: np.ndarray | None) -> None:
        self.fused_layer.set_map(grid, self.image_size)

    def set_mask(self, mask: np.ndarray | None) -> None:
        """Show ``mask`` ([H, W] bool; see ``MaskLayer`` for what it costs and how to update it)."""
        if mask is not None and mask.shape[:2] != self.image_size[::-1]:
            mask = None  # a mask for another image (stale reply): never shown misaligned
        self.mask_layer.set_mask(mask)
        self.polygons.set_mask(mask)

    def set_points(self, points: tuple[Point, ...], notes: tuple[str, ...] | None = None) -> None:
        self.points_layer.set_points(points, notes)

    def set_box(self, box: Box | None) -> None:
        self.box_layer.set_box(box)

    def apply_style(self, style: LayerStyle) -> None:
        self.style = style
        self.heat_layer.setVisible(style.heatmap_visible)
        self.heat_layer.setOpacity(style.heatmap_opacity)
        if self.heat_layer.colormap != style.colormap:
            self.heat_layer.set_colormap(style.colormap)
        self.fused_layer.setVisible(style.fused_visible)
        self.fused_layer.setOpacity(style.heatmap_opacity)
        self.mask_layer.set_shown(style.mask_visible)
        self.objects_layer.set_shown(style.mask_visible)
        self.points_layer.setVisible(style.points_visible)

    # ------------------------------------------------------------------ view
    def fit(self) -> None:
        """Fit the whole image in the window."""
        w, h = self.image_size
        if w > 0:
            self.vb.setRange(QtCore.QRectF(0, 0, w, h), padding=0.02)

    def zoom(self, factor: float, centre_xy: tuple[float, float] | None = None) -> None:
        """Zoom by ``factor`` (>1 zooms in) around an image point (default: the view centre)."""
        centre = None if centre_xy is None else pg.Point(*centre_xy)
        self.vb.scaleBy((1.0 / factor, 1.0 / factor), center=centre)

    # ------------------------------------------------------------------ coordinates
    def image_to_scene(self, x: float, y: float) -> QtCore.QPointF:
        self.vb.updateMatrix()  # pyqtgraph defers the view transform to the next paint
        return self.image_layer.mapToScene(QtCore.QPointF(x, y))

    def scene_to_image(self, scene_pos: QtCore.QPointF) -> tuple[float, float]:
        self.vb.updateMatrix()
        p = self.image_layer.mapFromScene(scene_pos)
        return p.x(), p.y()

    def image_to_viewport(self, x: float, y: float) -> QtCore.QPoint:
        """Widget position in ``self.viewport()`` of image pixel coordinate (x, y) (for mouse events)."""
        return self.mapFromScene(self.image_to_scene(x, y))

    def contains_image_point(self, x: float, y: float) -> bool:
        w, h = self.image_size
        return 0.0 <= x < w and 0.0 <= y < h

    def clamp_to_image(self, x: float, y: float) -> tuple[float, float]:
        w, h = self.image_size
        return float(np.clip(x, 0.0, max(w - 1e-3, 0.0))), float(np.clip(y, 0.0, max(h - 1e-3, 0.0)))

    def _on_mouse_moved(self, scene_pos: QtCore.QPointF) -> None:
        x, y = self.scene_to_image(scene_pos)
        inside = self.contains_image_point(x, y)
        self.cursor_moved.emit((x, y) if inside else None)
        self.brush.hover((x, y) if inside else None)
        over_point = self.editor.enabled and self.editor.point_at(scene_pos) is not None
        shape = QtCore.Qt.CursorShape
        self.viewport().setCursor(shape.PointingHandCursor if over_point else
                                  shape.CrossCursor if inside and self.editor.enabled else shape.ArrowCursor)
