"""Mouse gestures on the canvas -> prompt edits.

Gestures (tool "Points", the default):

- left click on the image: add a positive point to the selected object (with none selected, the
  click starts a new object); right click or Shift+click: a negative one;
- Ctrl+click (or a click with the Pan tool): select the object under the cursor;
- click on a point (any button): remove it;
- left drag starting on a point: move it (the mask follows while dragging);
- Ctrl+left drag (or any left drag with the "Box" tool): draw a box prompt;
- any other drag pans, the wheel zooms (pyqtgraph's view box does that).

The editor does not change anything itself: it emits ``preview`` while a drag is under way
(shown and segmented, but not an undo step) and ``edited(before, after, text)`` when a gesture
is complete; the controller turns that into an undo command. Hit-testing is in screen pixels
so a point is as easy to grab at any zoom.
"""

from __future__ import annotations

import enum
import math

from PySide6 import QtCore

from engine.prompts import NEGATIVE, POSITIVE, Box, Point

from engine.annotation.prompts import PromptState

HIT_RADIUS_PX = 10.0
MIN_BOX_PX = 4.0  # a smaller drag is a slip of the hand, not a box


class Tool(enum.Enum):
    POINTS = "points"
    BOX = "box"
    PAN = "pan"
    BRUSH = "brush"  # gui.canvas.brush: paint the mask
    ERASER = "eraser"
    POLYGON = "polygon"  # gui.canvas.polygon_editor edits the mask's rings; points are left alone


class PointEditor(QtCore.QObject):
    preview = QtCore.Signal(object)  # PromptState while dragging
    edited = QtCore.Signal(object, object, str)  # before, after: PromptState; description
    select_requested = QtCore.Signal(float, float)  # (x, y) image pixels: select the object there

    def __init__(self, canvas, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self.tool = Tool.POINTS
        self.enabled = False  # no image, no edits
        self.state = PromptState()
        self._drag: tuple[str, int] | None = None  # ("move", index) or ("box", -1)
        self._drag_start: PromptState | None = None
        self._drag_origin: tuple[float, float] = (0.0, 0.0)

    # ------------------------------------------------------------------ state from outside
    def set_state(self, state: PromptState) -> None:
        """The committed prompt state (after undo/redo, a new image, automatic points)."""
        self.state = state
        if self._drag is not None:  # an outside change ends a drag: its start is stale now
            self._drag = None
            self._drag_start = None
            self.canvas.drag_layer.set_box(None)

    @property
    def dragging(self) -> bool:
        return self._drag is not None

    # ------------------------------------------------------------------ hit testing
    def point_at(self, scene_pos: QtCore.QPointF) -> int | None:
        """Index of the point nearest ``scene_pos`` within HIT_RADIUS_PX screen pixels (topmost wins)."""
        best, best_d = None, HIT_RADIUS_PX
        for i, p in enumerate(self.state.points):
            s = self.canvas.image_to_scene(p.x, p.y)
            d = math.hypot(s.x() - scene_pos.x(), s.y() - scene_pos.y())
            if d <= best_d:
                best, best_d = i, d
        return best

    # ------------------------------------------------------------------ gestures
    def click(self, scene_pos: QtCore.QPointF, button: QtCore.Qt.MouseButton,
              modifiers: QtCore.Qt.KeyboardModifier) -> bool:
        """A click on the view box; True when it was an edit (the event is then consumed)."""
        Mod, Btn = QtCore.Qt.KeyboardModifier, QtCore.Qt.MouseButton
        if self.enabled and button == Btn.LeftButton and (modifiers & Mod.ControlModifier or self.tool is Tool.PAN):
            x, y = self.canvas.scene_to_image(scene_pos)
            if self.canvas.contains_image_point(x, y):
                self.select_requested.emit(float(x), float(y))
                return True
        if not self.enabled or self.tool not in (Tool.POINTS, Tool.BOX):
            return False
        hit = self.point_at(scene_pos)
        if hit is not None:
            after = self.state.without_point(hit)
            self._commit(after, f"Remove point {hit + 1}")
            return True
        if self.tool is not Tool.POINTS:
            return False
        x, y = self.canvas.scene_to_image(scene_pos)
        if not self.canvas.contains_image_point(x, y):
            return False
        if button == Btn.RightButton or (button == Btn.LeftButton and modifiers & Mod.ShiftModifier):
            label = NEGATIVE
        elif button == Btn.LeftButton:
            label = POSITIVE
        else:
            return False
        point = Point(x=float(x), y=float(y), label=label, source="user")
        kind = "positive" if label == POSITIVE else "negative"
        self._commit(self.state.with_points(self.state.points + (point,)), f"Add {kind} point")
        return True

    def drag(self, phase: str, scene_pos: QtCore.QPointF, start_scene_pos: QtCore.QPointF,
             button: QtCore.Qt.MouseButton, modifiers: QtCore.Qt.KeyboardModifier) -> bool:
        """A drag step: ``phase`` is "start", "move" or "finish". True when the editor handles it."""
        if phase == "start":
            return self._start_drag(start_scene_pos, button, modifiers)
        if self._drag is None:
            return False
        kind, index = self._drag
        x, y = self.canvas.clamp_to_image(*self.canvas.scene_to_image(scene_pos))
        if kind == "move":
            start = self._drag_start
            current = start.with_point_moved(index, x, y)
            if phase == "finish":
                self._end_drag()
                if (current.points[index].x, current.points[index].y) != self._drag_origin:
                    self._commit(current, f"Move point {index + 1}", before=start)
                else:
                    self.state = start
                return True
            self.state = current
            self.preview.emit(current)  # the session takes it; the presenter draws it
            return True
        # box
        x0, y0 = self._drag_origin
        sx, sy = self.canvas.image_to_scene(x0, y0).toTuple()
        big_enough = math.hypot(scene_pos.x() - sx, scene_pos.y() - sy) >= MIN_BOX_PX and x != x0 and y != y0
        box = Box.from_corners(x0, y0, x, y) if big_enough else None
        if phase == "finish":
            start = self._drag_start
            self._end_drag()
            self.canvas.drag_layer.set_box(None)
            if box is not None:
                self._commit(start.with_box(box), "Draw box", before=start)
            return True
        self.canvas.drag_layer.set_box(box, preview=True)  # the rubber band is the editor's own layer
        return True

    def _start_drag(self, start_scene_pos, button, modifiers) -> bool:
        if not self.enabled or button != QtCore.Qt.MouseButton.LeftButton or self.tool not in (Tool.POINTS, Tool.BOX):
            return False
        hit = self.point_at(start_scene_pos)
        box_gesture = self.tool is Tool.BOX or bool(modifiers & QtCore.Qt.KeyboardModifier.ControlModifier)
        if hit is not None and not box_gesture:
            self._drag = ("move", hit)
            self._drag_origin = (self.state.points[hit].x, self.state.points[hit].y)
        elif box_gesture:
            x, y = self.canvas.scene_to_image(start_scene_pos)
            if not self.canvas.contains_image_point(x, y):
                return False
            self._drag = ("box", -1)
            self._drag_origin = (x, y)
        else:
            return False
        self._drag_start = self.state
        return True

    def _end_drag(self) -> None:
        self._drag = None
        self._drag_start = None

    def _commit(self, after: PromptState, text: str, before: PromptState | None = None) -> None:
        before = self.state if before is None else before
        self.state = after
        self.edited.emit(before, after, text)
