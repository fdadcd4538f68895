"""Shows the current image's session in the window: canvas layers and panels follow its changes.

One direction only (session -> widgets); user input goes the other way through the controller.
"""

from __future__ import annotations

from PySide6 import QtCore

from engine.imaging.point_notes import point_notes
from engine.prompts import POSITIVE

from gui.window.main_window import MainWindow
from gui.workspace.session import ImageSession, SessionSignals
from gui.workspace.workspace import Workspace


class Presenter(QtCore.QObject):
    def __init__(self, window: MainWindow, workspace: Workspace) -> None:
        super().__init__(window)
        self.window = window
        self.workspace = workspace
        self.session: ImageSession | None = None
        self.token_index: int | None = None  # None: the whole question's map
        self._listed: set[ImageSession] = set()
        workspace.current_changed.connect(self.show_session)
        workspace.sessions_changed.connect(self._on_sessions)
        workspace.rows_changed.connect(self._on_rows)

    # ------------------------------------------------------------------ session switching
    def show_session(self, session: ImageSession | None) -> None:
        if self.session is not None:
            try:
                self.session.listener.changed.disconnect(self._on_changed)
            except (RuntimeError, TypeError):  # pragma: no cover - already disconnected
                pass
        self.session = session
        self.token_index = None
        if session is not None:
            session.listener.changed.connect(self._on_changed)
            self.window.image_list.set_current(self.workspace.index)
            self._listen()
        self.refresh()

    def refresh(self) -> None:
        """Everything, from scratch (a new current image)."""
        s = self.session
        w = self.window
        w.canvas.set_image(None if s is None or s.image is None else s.image.rgb)
        title = "QMask" if s is None else f"{s.name} — QMask"
        w.setWindowTitle(title)
        if s is None:
            w.answer_panel.clear()
            w.candidates_panel.set_candidates(None, (), 0)
            return
        self.window.candidates_panel.set_classes(self.workspace.categories)
        for aspect in ("question", "heatmap", "prompts", "segmentation", "fusion", "alpha", "captions",
                       "answer", "category", "accepted"):
            self._on_changed(aspect)

    def _on_sessions(self) -> None:
        self.window.image_list.set_workspace(self.workspace)
        if self.workspace.index >= 0:
            self.window.image_list.set_current(self.workspace.index)
        self._listen()

    def _listen(self) -> None:
        made = self.workspace.made_sessions()
        self._listed.intersection_update(made)  # (another project's sessions are gone)
        for session in made:
            if session not in self._listed:
                self._listed.add(session)
                session.listener.changed.connect(self._on_any_changed)

    def _on_rows(self, rows: list[int]) -> None:
        self.window.image_list.update_rows(rows)
        self._listen()

    def _on_any_changed(self, aspect: str) -> None:
        """Keep every image's row in the list current (replies also land for images not shown)."""
        if aspect not in ("image", "answer", "accepted", "segmentation", "status", "heatmap"):
            return
        signals = self.sender()
        session = signals.session if isinstance(signals, SessionSignals) else None
        if session is not None and session in self._listed:
            self.window.image_list.update_rows([self.workspace.sessions.index(session)])

    # ------------------------------------------------------------------ one aspect
    def _on_changed(self, aspect: str) -> None:
        s = self.session
        if s is None:
            return
        w = self.window
        if aspect == "image":
            self.refresh()
        elif aspect == "question":
            w.question_panel.show_image_question(s.question)
        elif aspect == "heatmap":
            self.token_index = None
            self._show_heatmap()
            self._show_points()  # each point's heat is relative to this map
            w.answer_panel.set_tokens([word for word, _ in s.word_maps])
            if s.heatmap is not None:
                w.answer_panel.set_match(s.heatmap.itm_probability)
            else:
                run = s.current_run
                w.answer_panel.set_match(None if run is None else run.record.itm_probability)
        elif aspect == "selection":
            for shown in ("prompts", "segmentation", "category", "accepted"):
                self._on_changed(shown)
        elif aspect in ("prompts", "restored"):  # the one place that draws points and the box
            if not w.canvas.editor.dragging:  # (a drag's own state must not end it)
                w.canvas.editor.set_state(s.prompts)
            self._show_points()
            w.canvas.set_box(s.prompts.box)
            self._show_summary()
        elif aspect in ("segmentation", "choice", "mask"):  # mask: strokes, polygons, clean-up
            w.canvas.set_mask(s.mask)
            seg = s.segmentation
            w.candidates_panel.set_candidates(None if s.image is None else s.image.rgb,
                                              seg.candidates if seg is not None else (), s.chosen)
            self._show_summary()
            self._show_acceptance()
        elif aspect == "fusion":
            w.canvas.set_fused(s.fused_map)
            w.answer_panel.set_answer(s.answer, s.previous_answer, s.answer_stale)
        elif aspect == "alpha":
            w.answer_panel.set_alpha(s.alpha)
        elif aspect == "captions":
            w.answer_panel.set_captions(s.captions)
        elif aspect == "answer":
            w.answer_panel.set_answer(s.answer, s.previous_answer, s.answer_stale)
            if s.answer is not None:
                w.answer_panel.set_captions(s.answer.captions)
        elif aspect == "category":
            self._show_category()
        elif aspect == "accepted":
            self._show_acceptance()

    # ------------------------------------------------------------------ helpers
    def select_token(self, index: int | None) -> None:
        self.token_index = index
        self._show_heatmap()

    def _show_heatmap(self) -> None:
        s = self.session
        grid = None
        if s is not None:
            grid = s.question_map
            if self.token_index is not None and 0 <= self.token_index < len(s.word_maps):
                grid = s.word_maps[self.token_index][1]
        self.window.canvas.set_heatmap(grid)

    def _show_points(self) -> None:
        s = self.session
        if s is not None:
            self.window.canvas.set_points(s.prompts.points, point_notes(s.prompts.points, s.question_map, s.image_size))

    def _show_summary(self) -> None:
        s = self.session
        if s is None:
            return
        pts = s.prompts.points
        if not pts and s.prompts.box is None:
            text = ("No object selected: click on a new object (or drag a box, or paint it), ask a question, or "
                    "pick an object in the Objects panel.") if s.selected is None else \
                "No prompts: click on the object, or ask a question." if s.mask is None else \
                "No prompts: the mask is painted with the brush." if s.model_mask is None else \
                "Mask from the project (edit a point to see the candidates)."
        else:
            auto = sum(p.source == "auto" for p in pts)
            pos = sum(p.label == POSITIVE for p in pts)
            parts = [f"{len(pts)} point{'s' if len(pts) != 1 else ''} ({pos} positive, {len(pts) - pos} negative; "
                     f"{auto} automatic, {len(pts) - auto} yours)"]
            if s.prompts.box is not None:
                parts.append("a box")
            text = " + ".join(parts)
        if s.points_note and (not pts or any(p.source == "auto" for p in pts)):
            text += "\n" + s.points_note  # why fewer automatic points came than were asked for
        if s.segmentation is not None and s.segmentation.note:
            text += "\n" + s.segmentation.note
        self.window.candidates_panel.set_summary(text)

    def _show_category(self) -> None:
        s = self.session
        if s is not None:
            self.window.candidates_panel.set_category(s.category, enabled=s.selected is not None)

    def _show_acceptance(self) -> None:
        s = self.session
        if s is not None:
            can = s.mask is not None and s.selected is not None
            self.window.candidates_panel.set_accepted(s.accepted, can)
            self.window.action_map["accept"].setChecked(s.accepted)
