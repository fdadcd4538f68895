"""The user's edits of the shown image, as undoable commands on its undo stack.

Mixed into :class:`~gui.controller.Controller`: each intent checks that an image is shown and
read, builds one :mod:`engine.annotation.edits` command and pushes it (wrapped for Qt) on the
image's own undo stack. Pushing applies it; what must be recomputed follows from the session's
change notices (the live segmenter hears of new prompts, the presenter redraws).
"""

from __future__ import annotations

from engine.annotation import ChooseCandidate, PromptState, SetAccepted, SetAlpha, SetLabel, SetPrompts
from engine.project import clean_label

from .point_editing import Tool
from .session import ImageSession
from .undo_commands import QtEdit


class EditIntents:
    """Needs ``self.workspace``, ``self.window`` and ``show_message`` (the controller's)."""

    def clear_points(self) -> None:
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

    def set_tool(self, tool: Tool) -> None:
        self.window.canvas.editor.tool = tool

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
