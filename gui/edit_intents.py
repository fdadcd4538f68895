"""The user's edits of the shown image, as undoable commands on its undo stack.

Mixed into :class:`~gui.controller.Controller`: each intent checks that an image is shown and
read, builds one :mod:`engine.annotation.edits` command and pushes it (wrapped for Qt) on the
image's own undo stack. Pushing applies it; what must be recomputed follows from the session's
change notices (the live segmenter hears of new prompts, the presenter redraws).
"""

from __future__ import annotations

from engine.annotation import ChooseCandidate, PromptState, SetAccepted, SetAlpha, SetLabel, SetPrompts
from engine.annotation.corrections import ClearStrokes, LayerEdit, PaintStroke, ReplaceMask
from engine.annotation.edits import UNDO_BUDGET_BYTES
from engine.errors import InputError
from engine.imaging import paint
from engine.project import clean_label

from .point_editing import Tool
from .session import ImageSession
from .undo_commands import QtEdit, keep_within_budget


class EditIntents:
    """Needs ``self.workspace``, ``self.window`` and ``show_message`` (the controller's)."""

    undo_budget = UNDO_BUDGET_BYTES  # per image, of what the undo steps keep (engine.annotation.edits)

    def clear_points(self) -> None:
        if self.window.canvas.polygons.delete_selected():  # Delete on a selected polygon vertex
            return
        session = self._editable()
        if session is not None and not session.prompts.empty:
            self._push(session, SetPrompts(session, session.prompts, PromptState(), "Clear points",
                                               session.chosen))

    def reset_points(self) -> None:
        session = self._editable()
        if session is None:
            return
        if not session.auto_points:
            self.show_message("No automatic points yet: ask a question first.", "warning")
            return
        target = PromptState(session.auto_points)
        if target.key() != session.prompts.key():
            self._push(session, SetPrompts(session, session.prompts, target,
                                               "Reset to automatic points", session.chosen))

    def choose_candidate(self, index: int) -> None:
        session = self._editable()
        if session is not None and index != session.chosen:
            self._push(session, ChooseCandidate(session, session.chosen, index))

    def change_alpha(self, alpha: float, gesture: int) -> None:
        session = self._editable()
        if session is not None and abs(alpha - session.alpha) > 1e-9:
            self._push(session, SetAlpha(session, session.alpha, alpha, gesture))

    def change_label(self, label: str) -> None:
        session = self._editable()
        if session is None:
            return
        clean = clean_label(label)
        if clean != label.strip():
            self.show_message(f"The label is stored as {clean!r}: a label is one line of text, without control "
                              "characters.", "info")
        if clean != session.label:
            self._push(session, SetLabel(session, session.label, clean))

    def set_accepted(self, accepted: bool) -> None:
        session = self._editable()
        if session is None:
            return
        if accepted and session.mask is None:
            self.window.action_map["accept"].setChecked(False)
            self.show_message("There is no mask to accept yet.", "warning")
            return
        if accepted != session.accepted:
            self._push(session, SetAccepted(session, accepted))

    def paint_stroke(self, points: list, radius: float, erase: bool) -> None:
        """A brush or eraser stroke ((x, y) image pixels, radius in pixels): one undo step."""
        session = self._editable()
        if session is not None:
            self._push_layers(session, PaintStroke(session, points, radius, erase))
        self.window.canvas.brush.stroke_applied()

    def clear_strokes(self) -> None:
        session = self._editable()
        if session is not None:
            if session.corrections.empty:
                self.show_message("There are no brush or eraser strokes to clear.", "info")
            else:
                self._push_layers(session, ClearStrokes(session))

    def clean_up(self, kind: str, min_pixels: int = 0) -> None:
        """``kind``: "fill_holes", "islands" (parts under ``min_pixels`` go) or "largest"; one undo step."""
        session = self._editable()
        if session is None:
            return
        if session.mask is None:
            self.show_message("There is no mask to clean up yet: ask a question or click on the object.", "warning")
            return
        try:
            if kind == "fill_holes":
                target, text = paint.fill_holes(session.mask), "Fill holes"
            elif kind == "islands":
                target, text = paint.remove_islands(session.mask, min_pixels), f"Remove islands < {min_pixels} px"
            else:
                target, text = paint.keep_largest(session.mask), "Keep the largest part"
        except InputError as err:
            self.show_message(str(err), "warning")
            return
        if not self._push_layers(session, ReplaceMask(session, target, text, "cleanup")):
            self.show_message(f"{text}: nothing to change in this mask.", "info")

    def _push_layers(self, session: ImageSession, edit: LayerEdit) -> bool:
        """Push a layer edit when it changes something; False when it changes nothing."""
        try:
            changes = edit.prepare()
        except InputError as err:
            self.show_message(str(err), "warning")
            return False
        if changes:
            self._push(session, edit)
        return changes

    def set_tool(self, tool: Tool) -> None:
        self.window.canvas.editor.tool = tool
        self.window.canvas.polygons.set_active(tool is Tool.POLYGON)
        self.window.tolerance_action.setVisible(tool is Tool.POLYGON)

    def replace_mask(self, mask, text: str) -> None:
        """A new mask, [H, W] bool, or its new pixels in a window, ``(row0, col0, patch)`` (the
        Polygon tool's edits): one ReplaceMask undo step."""
        session = self._editable()
        if session is not None:
            at, mask = ((mask[0], mask[1]), mask[2]) if isinstance(mask, tuple) else (None, mask)
            self._push_layers(session, ReplaceMask(session, mask, text, "polygon", at=at))

    def _connect_polygons(self) -> None:
        """The Polygon tool's wiring (from the controller's ``_connect``)."""
        polygons, a = self.window.canvas.polygons, self.window.action_map
        polygons.edited.connect(self.replace_mask)
        polygons.refused.connect(lambda text: self.show_message(text, "warning"))
        self.window.tolerance_box.valueChanged.connect(polygons.set_tolerance)
        a["tool_polygon"].triggered.connect(lambda: self.set_tool(Tool.POLYGON))
        self.window.tolerance_action.setVisible(False)
        self.window.closing.connect(polygons.wait)  # a trace still running ends before the window goes

    def _on_edited(self, before: PromptState, after: PromptState, text: str) -> None:
        session = self._editable()
        if session is not None:
            self._push(session, SetPrompts(session, before, after, text, session.chosen))

    def _on_preview(self, prompts: PromptState) -> None:
        session = self._editable()
        if session is not None:
            session.preview_prompts(prompts)  # the live segmenter hears of it from the session

    def _editable(self) -> ImageSession | None:
        session = self.workspace.current
        return session if session is not None and session.image is not None else None

    def _push(self, session: ImageSession, edit) -> None:
        session.undo_stack.push(QtEdit(edit))
        dropped = keep_within_budget(session.undo_stack, self.undo_budget)
        if dropped:
            self.window.status.showMessage(
                f"Undo keeps up to {self.undo_budget / 2**20:.0f} MB of mask edits per image: the {dropped} oldest "
                f"step{'s' if dropped > 1 else ''} of {session.name} can no longer be undone.", 10_000)
