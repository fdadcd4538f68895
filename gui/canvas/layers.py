"""Canvas layers: the image, the heat and fused maps, the mask, the prompt points and the box.

Every layer is a child of the canvas' view box and draws in **image pixel coordinates**: x to
the right, y down, pixel (col, row) covering [col, col + 1) x [row, row + 1) (the engine's frame,
``engine.prompts``). The image item is W x H in that frame by construction; the G x G maps are
stretched to the same W x H rect with ``setRect`` because BLIP squashes the image to a square,
so a grid cell is W/G wide and H/G tall. Points are drawn at a constant size on screen
(``ItemIgnoresTransformations``) but positioned in image pixels, so they stay on their pixel at
any zoom. Images use row-major order (``pg.setConfigOptions(imageAxisOrder='row-major')``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from engine.imaging.point_notes import point_notes
from engine.prompts import NEGATIVE, POSITIVE, Box, Point

from gui.canvas.mask_overlay import MASK_COLOUR, MaskLayer  # noqa: F401 - the mask layer is one of the canvas' layers

HEATMAP_COLORMAPS = ("inferno", "turbo", "viridis", "magma", "plasma")
POSITIVE_COLOUR = QtGui.QColor(46, 204, 113)
NEGATIVE_COLOUR = QtGui.QColor(231, 76, 60)
BOX_COLOUR = QtGui.QColor(255, 214, 0)
# Display resolution of a G x G map after smoothing: the grid is coarse (24 x 24), so bilinear
# upsampling only removes block edges; the item rect keeps it on the image's W x H rect.
SMOOTH_SIDE = 192


# --------------------------------------------------------------------------------------------
# Pure helpers (no Qt state): tested directly.
# --------------------------------------------------------------------------------------------

def normalise_map(grid: np.ndarray) -> np.ndarray:
    """[G, G] float >= 0 -> [G, G] float32 in [0, 1] (divided by its maximum; zeros stay zeros)."""
    grid = np.asarray(grid, dtype=np.float32)
    if grid.ndim != 2:
        raise ValueError(f"a heat map must be 2-D, got shape {grid.shape}")
    grid = np.nan_to_num(np.clip(grid, 0.0, None), nan=0.0, posinf=0.0)
    peak = float(grid.max()) if grid.size else 0.0
    return grid / peak if peak > 0 else np.zeros_like(grid)


def smooth_map(grid01: np.ndarray, side: int = SMOOTH_SIDE) -> np.ndarray:
    """Bilinear upsampling of a [G, G] map in [0, 1] to [side, side] (same extent, cell-centre aligned)."""
    if grid01.shape[0] >= side:
        return grid01.astype(np.float32)
    return np.clip(cv2.resize(grid01.astype(np.float32), (side, side), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


def heatmap_lut(name: str, opacity_ramp: float = 0.35) -> np.ndarray:
    """[256, 4] uint8 RGBA lookup table: colours of the named colormap, alpha rising with the value.

    Values below ``opacity_ramp`` fade to transparent so the photo stays visible where the
    question does not look; the layer's overall opacity is applied on top by the item.
    """
    cmap = pg.colormap.get(name)
    rgba = cmap.getLookupTable(0.0, 1.0, 256, alpha=True).astype(np.float32)
    ramp = np.clip(np.linspace(0.0, 1.0, 256) / max(opacity_ramp, 1e-6), 0.0, 1.0)
    rgba[:, 3] = 255.0 * ramp
    return rgba.astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------

class ImageLayer(pg.ImageItem):
    """The photo, [H, W, 3] uint8, at (0, 0)-(W, H)."""

    def __init__(self) -> None:
        super().__init__(axisOrder="row-major")
        self.setZValue(0)
        self.size: tuple[int, int] = (0, 0)  # (W, H)

    def set_rgb(self, rgb: np.ndarray) -> None:
        rgb = np.asarray(rgb)
        # No levels: uint8 RGB is shown as it is. Levels (0, 255) changed nothing but made
        # pyqtgraph rescale every pixel on the GUI thread: 35-80 ms for a 12 MP photo.
        self.setImage(rgb, autoLevels=False, levels=None)
        self.setRect(QtCore.QRectF(0, 0, rgb.shape[1], rgb.shape[0]))
        self.size = (int(rgb.shape[1]), int(rgb.shape[0]))


class GridMapLayer(pg.ImageItem):
    """A G x G map (heat map or fused map) coloured by a colormap, stretched over the image rect."""

    def __init__(self, z: float, colormap: str = "inferno", opacity: float = 0.6, smooth: bool = True) -> None:
        super().__init__(axisOrder="row-major")
        self.setZValue(z)
        self._colormap = colormap
        self._smooth = smooth
        self._grid: np.ndarray | None = None
        self._image_size: tuple[int, int] = (0, 0)
        self.setOpacity(opacity)
        self.setLookupTable(heatmap_lut(colormap))

    @property
    def grid(self) -> np.ndarray | None:
        """The last map given, normalised to [0, 1], [G, G] (None when cleared)."""
        return self._grid

    @property
    def colormap(self) -> str:
        return self._colormap

    def set_colormap(self, name: str) -> None:
        self._colormap = name
        self.setLookupTable(heatmap_lut(name))

    def set_map(self, grid: np.ndarray | None, image_size: tuple[int, int]) -> None:
        """Show ``grid`` ([G, G], any non-negative scale) over an image of ``image_size`` (W, H)."""
        self._image_size = image_size
        if grid is None or image_size[0] <= 0:
            self._grid = None
            self.clear()
            return
        self._grid = normalise_map(grid)
        shown = smooth_map(self._grid) if self._smooth else self._grid
        self.setImage(shown, autoLevels=False, levels=(0.0, 1.0))
        # Stretch to the full W x H image rect: x and y scale separately (BLIP squashes to square).
        self.setRect(QtCore.QRectF(0, 0, image_size[0], image_size[1]))

    def grid_to_item(self, x: float, y: float) -> QtCore.QPointF:
        """Image pixel (x, y) -> this item's local coordinates (the displayed array's pixels)."""
        if self.image is None or self._image_size[0] <= 0:
            raise ValueError("no map shown")
        rows, cols = self.image.shape[:2]
        return QtCore.QPointF(x * cols / self._image_size[0], y * rows / self._image_size[1])


class PointMarker(QtWidgets.QGraphicsPathItem):
    """One prompt point: constant screen size, symbol by label, fill and ring by who placed it.

    Positive: green disc. Negative: red diamond with a cross. Automatic points have a dashed
    ring; user points a solid white one. The number next to it matches the tooltip.
    """

    RADIUS = 8.5

    def __init__(self, index: int, point: Point, parent: QtWidgets.QGraphicsItem) -> None:
        super().__init__(parent)
        self.index = index
        self.point = point
        self.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setPos(point.x, point.y)
        r = self.RADIUS
        path = QtGui.QPainterPath()
        if point.label == POSITIVE:
            path.addEllipse(QtCore.QPointF(0, 0), r, r)
            colour = POSITIVE_COLOUR
        else:
            path.moveTo(0, -r - 1)
            path.lineTo(r + 1, 0)
            path.lineTo(0, r + 1)
            path.lineTo(-r - 1, 0)
            path.closeSubpath()
            colour = NEGATIVE_COLOUR
        self.setPath(path)
        fill = QtGui.QColor(colour)
        pen = QtGui.QPen(QtGui.QColor("white"), 2.0)
        if point.source == "auto":
            fill.setAlpha(170)
            pen = QtGui.QPen(QtGui.QColor(255, 230, 120), 2.0, QtCore.Qt.PenStyle.DashLine)
        self.setBrush(QtGui.QBrush(fill))
        self.setPen(pen)
        # a dark halo behind the ring keeps the point visible on busy or bright images
        halo = QtWidgets.QGraphicsPathItem(path, self)
        halo.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemStacksBehindParent)
        halo.setPen(QtGui.QPen(QtGui.QColor(0, 0, 0, 170), 5.0))
        if point.label == NEGATIVE:  # a cross inside the diamond reads as "not this" even in greyscale
            cross = QtWidgets.QGraphicsPathItem(self)
            cpath = QtGui.QPainterPath()
            d = r * 0.45
            cpath.moveTo(-d, -d)
            cpath.lineTo(d, d)
            cpath.moveTo(-d, d)
            cpath.lineTo(d, -d)
            cross.setPath(cpath)
            cross.setPen(QtGui.QPen(QtGui.QColor("white"), 2.0))
        # the number on a small dark tag, readable on any image
        self.tag = QtWidgets.QGraphicsPathItem(self)
        self.number = QtWidgets.QGraphicsSimpleTextItem(str(index + 1), self.tag)
        font = self.number.font()
        font.setBold(True)
        font.setPointSizeF(8.5)
        self.number.setFont(font)
        self.number.setBrush(QtGui.QBrush(QtGui.QColor("white")))
        text_rect = self.number.boundingRect()
        tag_rect = text_rect.adjusted(-3, -1, 3, 1)
        tag_path = QtGui.QPainterPath()
        tag_path.addRoundedRect(tag_rect, 3, 3)
        self.tag.setPath(tag_path)
        self.tag.setBrush(QtGui.QBrush(QtGui.QColor(20, 22, 26, 200)))
        self.tag.setPen(QtGui.QPen(colour, 1.0))
        self.tag.setPos(r + 2, -r - tag_rect.height() + 2)


class PointsLayer(QtWidgets.QGraphicsObject):
    """All prompt points, one marker each."""

    def __init__(self, z: float = 50) -> None:
        super().__init__()
        self.setZValue(z)
        self.markers: list[PointMarker] = []
        self.points: tuple[Point, ...] = ()

    def boundingRect(self) -> QtCore.QRectF:  # children draw; this group draws nothing itself
        return QtCore.QRectF()

    def paint(self, painter, option, widget=None) -> None:  # noqa: D401 - Qt override
        return None

    def set_points(self, points: tuple[Point, ...] | list[Point], notes: tuple[str, ...] | None = None) -> None:
        """Show ``points``; a marker whose point and number did not change is kept (a click
        rebuilds one marker, not all of them). ``notes``: each point's tooltip (what it means,
        :func:`engine.imaging.point_notes.point_notes`); without, made without the heat map."""
        scene = self.scene()
        new = tuple(points)
        same = 0  # the markers of an unchanged first part stay (their numbers are right too)
        while same < min(len(new), len(self.markers)) and self.markers[same].point == new[same]:
            same += 1
        for marker in self.markers[same:]:
            marker.setParentItem(None)
            if scene is not None:
                scene.removeItem(marker)
        self.points = new
        self.markers = self.markers[:same] + [PointMarker(i, p, self) for i, p in enumerate(new) if i >= same]
        for marker, note in zip(self.markers, notes if notes is not None else point_notes(new, None, None)):
            marker.setToolTip(note)  # every one: another point's rank or the map may have changed


class BoxLayer(QtWidgets.QGraphicsRectItem):
    """The box prompt (solid) or the box being dragged (dashed), in image pixels."""

    def __init__(self, z: float = 45) -> None:
        super().__init__()
        self.setZValue(z)
        self.box: Box | None = None
        self.set_box(None)

    def set_box(self, box: Box | None, preview: bool = False) -> None:
        self.box = None if preview else box
        if box is None:
            self.setRect(QtCore.QRectF())
            self.setVisible(False)
            return
        pen = QtGui.QPen(BOX_COLOUR, 2.0, QtCore.Qt.PenStyle.DashLine if preview else QtCore.Qt.PenStyle.SolidLine)
        pen.setCosmetic(True)
        self.setPen(pen)
        self.setRect(QtCore.QRectF(QtCore.QPointF(box.x0, box.y0), QtCore.QPointF(box.x1, box.y1)))
        self.setVisible(True)


@dataclass
class LayerStyle:
    """What the user chose to see; kept across images."""

    heatmap_visible: bool = True
    heatmap_opacity: float = 0.6
    colormap: str = "inferno"
    fused_visible: bool = False
    mask_visible: bool = True
    points_visible: bool = True
