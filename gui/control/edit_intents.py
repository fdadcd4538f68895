"""The user's edits of the shown image, as undoable commands on its undo stack.

The controller's (:class:`~gui.control.controller.Controller`) ``edits``: each intent checks that an image is shown and
read, builds one :mod:`engine.annotation.edits` command and pushes it (wrapped for Qt) on the
image's own undo stack. Pushing applies it; what must be recomputed follows from the session's
change notices (the live segmenter hears of new prompts, the presenter redraws).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.annotation import (AddObject, ChooseCandidate, DeleteObjects, Group, KeepProposal, PromptState, Reorder,
                               SetAccepted, SetAlpha, SetCategory, SetPrompts, accept_all, merge_objects, new_object)
from engine.annotation.corrections import ClearStrokes, LayerEdit, PaintStroke, ReplaceMask
from engine.annotation.edits import UNDO_BUDGET_BYTES
from engine.errors import InputError
from engine.imaging import paint
from engine.project import clean_label

from gui.canvas.point_editing import Tool
from gui.workspace.session import ImageSession
from gui.workspace.undo import QtEdit, keep_within_budget

if TYPE_CHECKING:
    from gui.control.controller import Controller


class EditIntents:
    """The edits of ``controller``'s shown image (its workspace, window, stroke stager, messages and
    model loading).

    Every tool acts on the selected object. With none selected, a click, a box or a brush stroke
    starts a new object (one undo step makes it and gives it its first prompt or stroke)."""

    undo_budget = UNDO_BUDGET_BYTES  # per image, of what the undo steps keep (engine.annotation.edits)

    def __init__(self, controller: "Controller") -> None:
        self.c = controller

    def clear_points(self) -> None:
        session, obj = self._selected()
        if obj is not None and not obj.prompts.empty:
            self._push(session, SetPrompts(session, obj.uid, obj.prompts, PromptState(), "Clear points", obj.chosen))

    def reset_points(self) -> None:
        session, obj = self._selected()
        if obj is None:
            return
        if not obj.record.auto_points:
            self.c.show_message("This object has no automatic points: a question did not propose it.", "warning")
            return
        target = PromptState(tuple(obj.record.auto_points))
        if target.key() != obj.prompts.key():
            self._push(session, SetPrompts(session, obj.uid, obj.prompts, target, "Reset to automatic points",
                                           obj.chosen))

    def choose_candidate(self, index: int) -> None:
        session, obj = self._selected()
        if obj is not None and index != obj.chosen:
            self._push(session, ChooseCandidate(session, obj.uid, obj.chosen, index))

    def change_alpha(self, alpha: float, gesture: int) -> None:
        session = self._editable()
        run = None if session is None else session.current_run
        if run is not None and abs(alpha - run.alpha) > 1e-9:
            self._push(session, SetAlpha(session, run.key, run.alpha, alpha, gesture))

    def change_category(self, name: str | None, uids: list[str] | None = None) -> None:
        """The class of the selected object (or of ``uids``); a new name joins the class list."""
        session = self._editable()
        if session is None:
            return
        targets = [u for u in (uids or ([session.selected] if session.selected else [])) if u in session.objects]
        if not targets:
            self.c.show_message("Select an object first (click it, or pick it in the objects panel).", "warning")
            return
        clean = clean_label(name or "") or None
        if name is not None and clean != name.strip():
            self.c.show_message(f"The class is stored as {clean!r}: a class name is one line of text, without "
                              "control characters.", "info")
        edits = [SetCategory(session, u, session.objects[u].record.category, clean) for u in targets
                 if session.objects[u].record.category != clean]
        new_class = clean is not None and clean not in self.c.workspace.classes()
        if edits:
            self._push(session, edits[0] if len(edits) == 1 else Group(session, edits, f"Class '{clean}'"))
            if new_class:  # (a class already listed: only its objects' rows change, told by the session)
                self.c.workspace.classes_changed.emit()

    def set_accepted(self, accepted: bool, uid: str | None = None) -> None:
        session = self._editable()
        if session is None:
            return
        obj = session.objects.get(uid or session.selected or "")
        if obj is None:
            self.c.window.action_map["accept"].setChecked(False)
            self.c.show_message("Select an object to accept (or Shift+Space to accept every object).", "warning")
            return
        if accepted and obj.mask is None:
            self.c.window.action_map["accept"].setChecked(False)
            self.c.show_message("This object has no mask to accept yet.", "warning")
            return
        if accepted != obj.record.accepted:
            self._push(session, SetAccepted(session, obj.uid, accepted))

    def accept_all(self) -> None:
        session = self._editable()
        if session is None:
            return
        edit = accept_all(session)
        if edit is None:
            self.c.show_message("Every object of this image is accepted already." if session.objects else
                              "There is no object to accept yet.", "info")
            return
        self._push(session, edit)

    def accept_all_and_next(self) -> None:
        """Shift+D: every object of this image accepted (one undo step), then the next image."""
        session = self._editable()
        edit = None if session is None else accept_all(session)
        if edit is not None:
            self._push(session, edit)
        self.c.workspace.step(+1)

    def new_object(self) -> None:
        """The next click, box or stroke starts a new object (the selection is cleared)."""
        session = self._editable()
        if session is not None:
            session.select(None)
            self.c.window.status.showMessage("New object: click on it, drag a box around it, or paint it.", 5000)

    def delete_objects(self, uids: list[str] | None = None) -> None:
        session = self._editable()
        if session is None:
            return
        targets = [u for u in (uids or ([session.selected] if session.selected else [])) if u in session.objects]
        if targets:
            self._push(session, DeleteObjects(session, targets))

    def keep_objects(self, uids: list[str]) -> None:
        session = self._editable()
        if session is None:
            return
        edits = [KeepProposal(session, u) for u in uids if u in session.objects and session.objects[u].record.proposal]
        if edits:
            self._push(session, edits[0] if len(edits) == 1 else Group(session, edits, f"Keep {len(edits)} proposals"))

    def merge_objects(self, uids: list[str]) -> None:
        session = self._editable()
        if session is None:
            return
        try:
            edit = merge_objects(session, uids)
        except InputError as err:
            self.c.show_message(str(err), "warning")
            return
        self._push(session, edit)

    def move_object(self, uid: str, step: int) -> None:
        """Bring an object forward (+1) or send it backward (-1) in the drawing order."""
        session = self._editable()
        if session is None or uid not in session.objects:
            return
        order = [o.uid for o in session.ordered()]
        i = order.index(uid)
        j = max(0, min(len(order) - 1, i + int(step)))
        if i != j:
            neighbour = session.objects[order[j]].record.order
            self._push(session, Reorder(session, uid, neighbour + (1 if step > 0 else -1)))

    def paint_stroke(self, points: list, radius: float, erase: bool) -> None:
        """A brush or eraser stroke ((x, y) image pixels, radius in pixels): one undo step. With no
        object selected, a brush stroke makes a new one (an eraser stroke has nothing to erase)."""
        session, obj = self._selected()
        if session is not None and obj is None and not erase:
            state = new_object(session, self._default_category(session))
            stroke = PaintStroke(session, state.uid, points, radius, erase)  # worked out once the object is there
            self._push(session, Group(session, [AddObject(session, state), stroke], "New object (brush)"))
        elif obj is not None:  # worked out off the GUI thread, then pushed (push_stroke); drawn until then
            self.c.strokes.submit(session, PaintStroke(session, obj.uid, points, radius, erase))
            return
        self.c.window.canvas.brush.stroke_applied()

    def push_stroke(self, session: ImageSession, stroke: PaintStroke) -> None:
        """A stroke worked out by the stroke stager: one undo step (unless its object is gone)."""
        if stroke.uid in session.objects:
            self._push_layers(session, stroke)
        if not self.c.strokes.pending:
            self.c.window.canvas.brush.stroke_applied()

    def stroke_failed(self, session: ImageSession, text: str) -> None:
        self.c.show_message(text, "warning")
        if not self.c.strokes.pending:
            self.c.window.canvas.brush.stroke_applied()

    def clear_strokes(self) -> None:
        session, obj = self._selected()
        if obj is not None:
            if obj.corrections.empty:
                self.c.show_message("This object has no brush or eraser strokes to clear.", "info")
            else:
                self._push_layers(session, ClearStrokes(session, obj.uid))

    def clean_up(self, kind: str, min_pixels: int = 0) -> None:
        """``kind``: "fill_holes", "islands" (parts under ``min_pixels`` go) or "largest"; one undo step."""
        session, obj = self._selected()
        if obj is None:
            return
        if obj.mask is None:
            self.c.show_message("This object has no mask to clean up yet: click on it, or ask a question.", "warning")
            return
        try:
            if kind == "fill_holes":
                target, text = paint.fill_holes(obj.mask), "Fill holes"
            elif kind == "islands":
                target, text = paint.remove_islands(obj.mask, min_pixels), f"Remove islands < {min_pixels} px"
            else:
                target, text = paint.keep_largest(obj.mask), "Keep the largest part"
        except InputError as err:
            self.c.show_message(str(err), "warning")
            return
        if not self._push_layers(session, ReplaceMask(session, obj.uid, target, text, "cleanup")):
            self.c.show_message(f"{text}: nothing to change in this mask.", "info")

    def _push_layers(self, session: ImageSession, edit: LayerEdit) -> bool:
        """Push a layer edit when it changes something; False when it changes nothing."""
        try:
            changes = edit.prepare()
        except InputError as err:
            self.c.show_message(str(err), "warning")
            return False
        if changes:
            self._push(session, edit)
        return changes

    def set_tool(self, tool: Tool) -> None:
        self.c.window.canvas.editor.tool = tool
        self.c.window.canvas.polygons.set_active(tool is Tool.POLYGON)
        self.c.window.tolerance_action.setVisible(tool is Tool.POLYGON)

    def replace_mask(self, mask, text: str) -> None:
        """A new mask of the selected object, [H, W] bool, or its new pixels in a window,
        ``(row0, col0, patch)`` (the Polygon tool's edits): one ReplaceMask undo step."""
        session, obj = self._selected()
        if obj is not None:
            at, mask = ((mask[0], mask[1]), mask[2]) if isinstance(mask, tuple) else (None, mask)
            self._push_layers(session, ReplaceMask(session, obj.uid, mask, text, "polygon", at=at))

    def on_edited(self, before: PromptState, after: PromptState, text: str) -> None:
        self.c.ensure_models()  # a click's mask needs the decoder (a load stopped with Esc starts again)
        session, obj = self._selected()
        if obj is not None:
            self._push(session, SetPrompts(session, obj.uid, before, after, text, obj.chosen))
        elif session is not None and not after.empty:  # nothing selected: the click starts a new object
            state = new_object(session, self._default_category(session))
            self._push(session, Group(session, [AddObject(session, state),
                                                SetPrompts(session, state.uid, PromptState(), after, text)],
                                      f"{text} (new object)"))

    def on_preview(self, prompts: PromptState) -> None:
        session, obj = self._selected()
        if obj is not None:
            session.preview_prompts(prompts)  # the live segmenter hears of it from the session

    def _editable(self) -> ImageSession | None:
        session = self.c.workspace.current
        return session if session is not None and session.image is not None else None

    def _selected(self):
        """(the shown session, its selected object) — either may be None."""
        session = self._editable()
        return session, None if session is None else session.selected_object

    def _default_category(self, session: ImageSession) -> str | None:
        """A new manual object's class: the last one used, if the class list has it."""
        last = self.c.workspace.last_category
        return last if last in self.c.workspace.classes() else None

    def _push(self, session: ImageSession, edit) -> None:
        session.listener.undo_stack.push(QtEdit(edit))
        dropped = keep_within_budget(session.listener.undo_stack, self.undo_budget)
        if dropped:
            self.c.window.status.showMessage(
                f"Undo keeps up to {self.undo_budget / 2**20:.0f} MB of mask edits per image: the {dropped} oldest "
                f"step{'s' if dropped > 1 else ''} of {session.name} can no longer be undone.", 10_000)
