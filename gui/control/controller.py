"""What the user's actions do: edits pushed on the image's undo stack, requests for model work.

The controller holds what the window's inputs reach (every connection is made in
:mod:`gui.control.wiring`): its ``edits`` change the current
:class:`~gui.workspace.session.ImageSession` (as :mod:`engine.annotation.edits`), it sends model
work to the engine thread (:class:`~gui.engine_thread.engine_client.EngineClient`), and its
``replies`` put the engine's replies back into the sessions they belong to
(:mod:`gui.control.engine_replies`: by image key, so a reply for an image the user has left still
lands in that image's state).
What an image shows is drawn by the presenter; the controller itself touches only the status
bar (progress, busy), the message area, the question box's text and the accept toggle.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from engine.errors import InputError
from engine.project import Project
from engine.annotation.settings import PipelineSettings
from engine.vqa.question import clean_question_text

from gui.canvas.layers import HEATMAP_COLORMAPS
from gui.canvas.stroke_stager import StrokeStager
from gui.control.edit_intents import EditIntents
from gui.control.engine_replies import EngineReplies
from gui.control.keyboard import KeyboardFocus
from gui.control.live_segmentation import LiveSegmenter
from gui.control.objects_view import ObjectsView
from gui.control.prefetch import ImagePrefetcher
from gui.control.presenter import Presenter
from gui.control.relocate import ImageRelocator
from gui.control.wiring import connect_controller
from gui.engine_thread.engine_client import EngineClient
from gui.engine_thread.requests import Answer, Ask, ImageRef, LoadModels, ModelsInfo, OpenImage
from gui.window.main_window import MainWindow
from gui.workspace.data_paths import image_folder
from gui.workspace.opening import Opened
from gui.workspace.session import ImageSession
from gui.workspace.workspace import Workspace


class Controller(QtCore.QObject):
    """The window's control: asking, images, models and messages here; the shown image's edits in
    ``edits`` (:class:`~gui.control.edit_intents.EditIntents`); the engine's replies in ``replies``
    (:class:`~gui.control.engine_replies.EngineReplies`); every connection in :mod:`gui.control.wiring`.

    Signals for tests and the screenshot mode: each fires after the session was updated."""

    models_ready = QtCore.Signal(object)  # ModelsInfo
    image_ready = QtCore.Signal(object)  # ImageSession
    ask_finished = QtCore.Signal(object, bool)  # ImageSession, completed (False: failed or cancelled)
    answer_ready = QtCore.Signal(object)  # ImageSession
    error_shown = QtCore.Signal(str)
    paths_opened = QtCore.Signal(object)  # Opened: images and folders are in the list (see open_paths)
    project_listed = QtCore.Signal(object)  # Project: the images of a project just opened are in the list

    def __init__(self, window: MainWindow, workspace: Workspace, client: EngineClient,
                 settings: PipelineSettings, models_dir: str | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.workspace = workspace
        self.client = client
        self.settings = settings
        self.models_dir = models_dir
        self.models: ModelsInfo | None = None
        self.models_loading = False  # a LoadModels sent and not yet ended
        self.presenter = Presenter(window, workspace)
        self.live = LiveSegmenter(client, workspace)
        self.prefetch = ImagePrefetcher(client, workspace)  # encoders run while the user reads and types
        self.relocator = ImageRelocator(self)  # moved images: banner + "Locate folder…"
        self.objects = ObjectsView(self)  # the objects panel, the objects layer and the class list
        self.strokes = StrokeStager(self)  # a brush stroke's array work, off the GUI thread
        self.pending_questions: dict[str, str] = {}  # image key -> question to ask once it is read
        self.automatic_project = False  # the window works on a folder's own project (no --project, no Open project…)
        self.last_folder: Path | None = None  # the folder of the images opened last (remembered: gui.window.preferences)
        self.instances = "auto"  # objects per question: "one", "several" or "auto" (the question panel's choice)
        self.edits = EditIntents(self)  # the shown image's edits, on its undo stack
        self.replies = EngineReplies(self)  # the engine's replies, into the sessions they are about
        self.keyboard = KeyboardFocus(window, self.cancel)  # Esc, / and where the keys go after asking
        connect_controller(self)

    # ------------------------------------------------------------------ commands
    def delete_selected(self) -> None:
        """Delete: a selected polygon vertex (Polygon tool) first, else the selected object(s)."""
        if self.window.canvas.polygons.delete_selected():
            return
        self.edits.delete_objects(self.objects.selected_uids())

    def on_undo_text(self, text: str) -> None:
        self.window.action_map["undo"].setToolTip(f"Undo {text} (Ctrl+Z)" if text else "Nothing to undo")

    def on_redo_text(self, text: str) -> None:
        self.window.action_map["redo"].setToolTip(f"Redo {text} (Ctrl+Shift+Z)" if text else "Nothing to redo")

    # ------------------------------------------------------------------ engine start
    def load_models(self) -> None:
        """Load the models (at start, from Engine > Load models, or another folder chosen)."""
        self.models, self.models_loading = None, True
        self.prefetch.models_ready = False
        self.window.action_map["load_models"].setEnabled(False)
        self.window.status.set_engine_text("models: loading…", "Esc stops loading them")
        self.client.submit(LoadModels(settings=self.settings, models_dir=self.models_dir))

    def ensure_models(self) -> None:
        """Before model work the user asks for: load the models when they are neither loaded nor
        loading (Esc stopped their loading, or it failed); the request then waits behind the load."""
        if self.models is None and not self.models_loading:
            self.load_models()

    def models_not_loaded(self, text: str = "models: not loaded") -> None:
        """A load ended without models (cancelled or failed): say how to load them again."""
        self.models_loading = False
        self.window.action_map["load_models"].setEnabled(True)
        self.window.status.set_engine_text(text, "Engine > Load models, or asking a question, loads them again")

    # ------------------------------------------------------------------ images
    def open_paths(self, paths: list[str | Path], select_first: bool = True, background: bool = False,
                   remember: bool = True, then=None) -> Opened | None:
        """Add image files and folders to the list and show the first one found. The folders are
        listed and the images added on the store's thread; ``background``: the GUI thread goes on
        at once (``paths_opened``, and ``then(opened)``, say when they are in), else it waits and
        gets the Opened back. ``remember``: the first path's folder is the folder opened last
        (File > Open starts there)."""
        if remember and paths and Path(paths[0]).exists():
            self.last_folder = image_folder(Path(paths[0]))
        return self.workspace.open_paths([Path(p) for p in paths], lambda opened: self._opened(opened, select_first,
                                                                                              then),
                                         wait=not background)

    def _opened(self, opened: Opened, select_first: bool, then=None) -> None:
        for error in opened.errors:
            self.show_error(error)
        if not opened.found:
            if not opened.errors:
                self.show_message("No images found there.", "warning")
        elif select_first and opened.first >= 0:
            if opened.first == self.workspace.index:
                self.on_current(self.workspace.current)
            self.workspace.set_index(opened.first)
        if then is not None:
            then(opened)
        self.paths_opened.emit(opened)

    def use_project(self, project: Project, automatic: bool = False) -> None:
        """Work on ``project`` from now on: its images listed (most in need of review first, read on
        the store's thread; ``project_listed`` says when they are in), each shown with its objects
        and runs; every change is written to it. What the engine was doing for the project before
        is cancelled."""
        if self.client.busy:
            self.client.cancel()
        self.pending_questions.clear()
        self.workspace.use_project(project)
        self.automatic_project = automatic
        if project.notice:
            self.show_message(project.notice, "info")

        def listed() -> None:  # (on the GUI thread, once the store's thread has read the list)
            if self.workspace.ids and self.workspace.index < 0:
                self.workspace.set_index(0)
            self.relocator.check()  # images not where the project says: the banner offers to locate them
            self.project_listed.emit(project)

        self.workspace.add_project_images(then=listed, wait=False)  # the window goes on meanwhile

    def on_current(self, session: ImageSession | None) -> None:
        self.client.show(None if session is None else session.key)
        self.show_current(session)
        self.prefetch.image_shown(session)

    def show_current(self, session: ImageSession | None) -> None:
        """The selected image's question, and its pixels read if they are not in memory."""
        if session is None:
            return
        self.window.question_panel.show_image_question(session.question)
        if session.image is None and not session.loading:
            if not session.path.is_file():  # moved or deleted: say so, offer to locate it
                session.set_missing(True)
                self.relocator.tell_missing(session)
                return
            session.set_missing(False)
            # read on demand (again for a failed image: the file may have been fixed meanwhile)
            session.loading = True
            self.client.submit(OpenImage(key=session.key, path=str(session.path)))

    def ask_when_ready(self, session: ImageSession, question: str) -> None:
        """Ask ``question`` about ``session`` now, or as soon as its image is read."""
        if session.image is None:
            self.pending_questions[session.key] = question
            if session is self.workspace.current:
                self.window.question_panel.set_question(question)
        else:
            self.submit_ask(session, question)

    # ------------------------------------------------------------------ user intents
    def ask(self, question: str) -> None:
        session = self.workspace.current
        if session is None:
            self.show_message("Open an image first (Ctrl+O).", "warning")
            return
        try:
            question = clean_question_text(question)
        except InputError:
            self.window.question_panel.show_hint("Type a question first.")
            return
        self.ask_when_ready(session, question)

    def on_ask_shortcut(self) -> None:
        focus = QtWidgets.QApplication.focusWidget()
        if (isinstance(focus, (QtWidgets.QLineEdit, QtWidgets.QComboBox, QtWidgets.QAbstractSpinBox))
                and focus is not self.window.question_panel.edit):
            self.keyboard.to_canvas()  # Enter in the class box or a spin box ends the edit; it does not ask
            return
        self.window.question_panel.request_ask()

    def submit_ask(self, session: ImageSession, question: str) -> None:
        from engine.annotation.chain import ChainRequest, instances_for

        instances = instances_for(ChainRequest(question, instances=self.instances))
        self.ensure_models()
        run = session.asks.start(question, instances)
        self.window.question_panel.remember(question)
        request = self.client.submit(Ask(image=self._ref(session), question=run.question, alpha=run.alpha,
                                         instances=instances))
        session.asks.asking = request.request_id  # a cancel or failure of this ask takes it back

    def rerun_answer(self) -> None:
        session = self.workspace.current
        run = None if session is None else session.current_run
        if session is None or session.image is None or run is None or run.fused_map is None:
            self.show_message("Ask a question first: the answer is written from its map.", "warning")
            return
        self.ensure_models()
        self.client.submit(Answer(image=self._ref(session), question=run.question, fused_map=run.fused_map,
                                  run_key=run.key))

    def cancel(self) -> None:
        if self.client.busy:
            self.client.cancel()
            self.window.status.set_progress("cancelling…", -1.0)

    def set_encode_on_show(self, enabled: bool) -> None:
        self.prefetch.enabled = bool(enabled)
        if enabled:
            self.prefetch.image_shown(self.workspace.current)

    def save(self) -> None:
        if self.workspace.flush():
            self.show_message(f"Saved {self.workspace.project.path}", "info")

    # ------------------------------------------------------------------ messages and view
    def show_error(self, text: str, action_text: str | None = None, action=None) -> None:
        self.window.messages.show_message(text, "error", action_text, action)
        self.error_shown.emit(text)

    def show_message(self, text: str, level: str = "info", action_text: str | None = None, action=None) -> None:
        self.window.messages.show_message(text, level, action_text, action)

    def rekey(self, old_key: str, new_key: str) -> None:
        """A session's file moved (relocation): what waits for it follows the new key."""
        question = self.pending_questions.pop(old_key, None)
        if question is not None:
            self.pending_questions[new_key] = question

    def apply_style(self, *_args) -> None:
        w, a = self.window, self.window.action_map
        style = w.canvas.style
        style.heatmap_visible = a["toggle_heat"].isChecked()
        style.fused_visible = a["toggle_fused"].isChecked()
        style.mask_visible = a["toggle_mask"].isChecked()
        style.points_visible = a["toggle_points"].isChecked()
        style.heatmap_opacity = w.opacity_slider.value() / 100.0
        style.colormap = w.colormap_box.currentText() or style.colormap
        w.canvas.apply_style(style)

    def next_colormap(self) -> None:
        box = self.window.colormap_box
        box.setCurrentIndex((box.currentIndex() + 1) % len(HEATMAP_COLORMAPS))

    @staticmethod
    def _ref(session: ImageSession) -> ImageRef:
        assert session.image is not None  # callers check; an internal invariant, not input
        return ImageRef(session.key, session.image.rgb, session.image.image_id)
