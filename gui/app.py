"""Builds the app from the command line (``gui.main``) and runs it.

:class:`QMaskApp` puts the parts together: the project and workspace (``gui.workspace.workspace``), the
window (``gui.window.main_window``), the engine thread (``gui.engine_thread.worker``), the controller and the dialog
launcher. Tests build it the same way (with tiny models and fewer captions) and call
:meth:`QMaskApp.shutdown` at the end, which stops the engine thread.

Project file: ``--project FILE`` when given (created if new; a batch project's images open
sorted by review need). Otherwise QMask keeps one project per image folder in its data folder
(see :func:`gui.workspace.data_paths.default_project_path`), so reopening a folder resumes the work.
File > Open project… moves the window to another project (``Controller.use_project``).

A project whose images moved opens all the same: the banner offers "Locate folder…"
(``gui.control.relocate``); ``choose_folder`` replaces the folder dialog (tests).

Preferences (``gui.window.preferences``: view, Engine toggle, window layout, the models folder chosen in
the Models dialog) are read at start and saved when the window closes; ``--screenshot`` runs read
them but keep the default window layout and save nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from engine.annotation.settings import PipelineSettings
from engine.project import Project
from resources import SAMPLE_IMAGE, SAMPLE_QUESTION

from gui.control.controller import Controller
from gui.control.file_actions import FileActions
from gui.control.relocate import FolderChooser
from gui.engine_thread import gui_thread_gc
from gui.engine_thread.engine_client import EngineClient
from gui.engine_thread.requests import LoadModels
from gui.engine_thread.worker import default_pipeline_factory
from gui.window.main_window import MainWindow
from gui.window.preferences import Preferences, PreferencesStore, apply, capture, models_folder
from gui.workspace.data_paths import open_project
from gui.workspace.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass
class AppOptions:
    images: list[str] = field(default_factory=list)
    question: str | None = None
    models_dir: str | None = None
    settings: PipelineSettings = field(default_factory=PipelineSettings)
    project: str | None = None
    screenshot: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "AppOptions":
        settings = PipelineSettings(preset=args.preset, sam_variant=getattr(args, "sam", "vitt"), device=args.device,
                                    dtype=getattr(args, "dtype", "auto"))
        return cls(images=list(args.images or []), question=args.question, models_dir=args.models,
                   settings=settings, project=args.project, screenshot=args.screenshot)


# Qt messages that say nothing to a QMask user. The offscreen platform (--screenshot, tests)
# prints the first one several times per window: it cannot pass size hints to a window manager
# it does not have.
QUIET_QT_MESSAGES = frozenset({"This plugin does not support propagateSizeHints()"})


class QtMessageFilter:
    """A Qt message handler that drops :data:`QUIET_QT_MESSAGES` and passes every other
    message on: to the handler installed before it, else to stderr in Qt's own format."""

    def __init__(self, previous=None) -> None:
        self.previous = previous
        self.dropped = 0

    def __call__(self, mode, context, message: str) -> None:
        if message in QUIET_QT_MESSAGES:
            self.dropped += 1
            return
        if self.previous is not None:
            self.previous(mode, context, message)
        else:
            sys.stderr.write(QtCore.qFormatLogMessage(mode, context, message) + "\n")


def quiet_qt_messages() -> QtMessageFilter:
    """Install :class:`QtMessageFilter` in front of the current handler (once: calling it again
    keeps a single filter)."""
    previous = QtCore.qInstallMessageHandler(None)
    if isinstance(previous, QtMessageFilter):
        previous = previous.previous
    handler = QtMessageFilter(previous)
    QtCore.qInstallMessageHandler(handler)
    return handler


def ensure_qapp() -> QtWidgets.QApplication:
    quiet_qt_messages()
    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("QMask")
    app.setOrganizationName("QMask")
    return app


# Each time the GUI thread takes the GIL back from the engine thread (dozens of times a click:
# PySide lets it go around Qt calls) it may wait a whole switch interval, Python's default 5 ms.
# Measured while the engine ran Python: a click's wall time 34 -> 17 ms at 0.5 ms, the engine no
# slower (python -m gui.tools.bench_clicks --switch-interval MS compares).
GIL_SWITCH_INTERVAL_S = 0.0005
# The engine thread, and the threads it starts (torch's workers), run at a lower CPU priority
# than the GUI thread: on 2 cores they would otherwise take its turn while it handles a click.
# 5 (the GUI thread's share about 3:1) rather than 10 (9:1): other busy programs would starve
# the engine at 10 (a 12 MP click's wall time, median: 54 ms without, 26 at 5, 20 at 10; half
# as many masks came back in time at 10, on a CPU shared with others).
ENGINE_NICENESS = 5  # added to its niceness (at most 19)


def lower_engine_priority() -> None:
    """Run in the engine thread: make it (and the threads it starts later) ``ENGINE_NICENESS``
    nicer than it is. Linux only: there a thread has its own niceness; elsewhere ``setpriority``
    would apply to a whole process, so nothing is done."""
    if sys.platform.startswith("linux"):
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(os.getpriority(os.PRIO_PROCESS, tid) + ENGINE_NICENESS, 19))
        except OSError as err:  # pragma: no cover - a sandbox that forbids it: run as before
            log.info("could not lower the engine thread's priority: %s", err)


class QMaskApp(QtCore.QObject):
    """The running app's parts. ``start()`` loads models and opens the images."""

    def __init__(self, options: AppOptions, pipeline_factory=default_pipeline_factory,
                 choose_folder: FolderChooser | None = None) -> None:
        super().__init__()
        self.options = options
        self.qapp = ensure_qapp()
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        self.preferences = PreferencesStore()
        prefs = self.preferences.load()
        self.images, reopened = list(options.images), None
        if not self.images and not options.project and not options.screenshot and prefs.last_folder \
                and Path(prefs.last_folder).is_dir():
            # `qmask` alone goes on where the annotator stopped: the folder opened last, its project
            self.images = reopened = [prefs.last_folder]
        first = Path(self.images[0]) if self.images else None
        project, project_note = open_project(options.project, first)
        self.workspace = Workspace(project, default_alpha=options.settings.alpha)
        self.window = MainWindow()
        self.client = EngineClient(pipeline_factory)
        priority = self.client.priority
        self.workspace.priority = priority  # project writes, too, go after the GUI thread's work
        # full collections wait until the user is quiet
        gui_thread_gc.collector().quiet = lambda: not priority.recent(gui_thread_gc.QUIET_S)
        self.client.finished.connect(self._settle_after_loading)
        QtCore.QTimer.singleShot(0, self.client.worker, lower_engine_priority)  # first thing in its thread
        models_dir, models_note = models_folder(options.models_dir, prefs)
        self.controller = Controller(self.window, self.workspace, self.client, options.settings, models_dir)
        self.controller.automatic_project = options.project is None
        if prefs.last_folder:
            self.controller.last_folder = Path(prefs.last_folder)  # File > Open starts there
        apply(prefs, self.window, layout=not options.screenshot)
        if choose_folder is not None:
            self.controller.relocator.choose_folder = choose_folder
        self.files = FileActions(self.controller)
        self.files.models_folder_chosen.connect(self._remember_models_folder)
        self.window.closing.connect(self.shutdown)
        self._closed = False
        if project_note and project_note == project.notice:
            self.controller.show_message(project_note, "info")  # converted from an older project file
        elif project_note:
            self.controller.show_error(project_note)
        if models_note:
            self.controller.show_message(models_note, "warning")
        if reopened:
            self.controller.show_message(f"Reopened {reopened[0]}, the folder opened last (File > Open folder… "
                                         "opens another).", "info")
        from gui.qt_compat import binding_warning

        warning = binding_warning()
        if warning:
            log.warning("%s", warning)
            self.controller.show_message(warning, "warning")

    @property
    def project(self) -> Project:
        """The project the window works on (File > Open project… changes it)."""
        return self.workspace.project

    def _settle_after_loading(self, done) -> None:
        # The heap has just grown by the models: settle it now, before the user works, not at
        # the first full collection in the middle of a click (gui.engine_thread.gui_thread_gc).
        if isinstance(done.request, LoadModels):
            gui_thread_gc.settle()

    def start(self, check_models: bool = True, background: bool = False) -> None:
        """Load the models (or ask for them), open the images, ask the question if one was given.
        ``background``: the images are listed and added while the window goes on (``qmask``
        itself: a folder of thousands does not hold the window), then the question is asked;
        else this returns with them listed (tests, benchmarks)."""
        missing: list[str] = []
        if check_models:
            from gui.window.dialogs.models_dialog import missing_roles

            s = self.options.settings
            missing = missing_roles(s.preset, s.sam_variant, self.controller.models_dir)
        if missing:
            self.window.status.set_engine_text("models: missing")
            self.files.show_models()
        else:
            self.controller.load_models()
        images = list(self.images)
        has_images = self.project.count_images() > 0
        if has_images:
            self.workspace.add_project_images()
        if images or not has_images:
            self.controller.open_paths(images or [str(SAMPLE_IMAGE)], remember=bool(images), background=background,
                                       then=lambda _opened: self._opened())  # the rest once they are in
            return
        elif self.workspace.ids:
            self.workspace.set_index(0)
        self._opened()

    def _opened(self) -> None:
        """The images given are in the list: say which are missing, ask the question given."""
        if self.workspace.missing_sessions():
            self.controller.relocator.check()  # banner: "N images ... not where they were: Locate folder…"
        question = self.options.question
        if question is None and self.options.screenshot and self.workspace.current is not None:
            question = SAMPLE_QUESTION if self.workspace.current.path == SAMPLE_IMAGE else "what is in the picture?"
        current = self.workspace.current
        if question and current is not None:
            if current.missing and self.options.screenshot:
                self.controller.show_error(f"Cannot take the screenshot: {current.name} is not at {current.path}.")
                return
            self.controller.ask_when_ready(current, question)

    def shutdown(self) -> None:
        """Stop the engine thread and save (work and preferences); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if not self.options.screenshot:
            prefs = capture(self.window)
            last = self.controller.last_folder
            prefs.last_folder = str(last) if last is not None else None
            self.preferences.save(prefs)
        self.client.shutdown()
        self.workspace.close()

    def _remember_models_folder(self, folder: str) -> None:
        if not self.options.screenshot:
            self.preferences.save(Preferences(models_dir=folder))


def run_app(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="qmask: %(levelname)s: %(message)s")
    options = AppOptions.from_args(args)
    qapp = ensure_qapp()
    app = QMaskApp(options)
    runner = None
    if options.screenshot:
        from gui.tools.screenshot import ScreenshotRun

        runner = ScreenshotRun(app, Path(options.screenshot))
        runner.done.connect(lambda _code: QtCore.QTimer.singleShot(0, qapp.quit))
        if not runner.check_models():
            app.shutdown()
            app.window.close()
            return 1
    # Quit explicitly when our window closes: Qt's implicit quit-on-last-window would also fire
    # when the window is closed after exec() returned, and a quit outside exec() leaves the
    # thread's later event loops exiting at once (seen when run_app is called in-process).
    quit_on_last = qapp.quitOnLastWindowClosed()
    qapp.setQuitOnLastWindowClosed(False)
    app.window.closing.connect(qapp.quit)
    try:
        app.window.show()
        app.start(check_models=runner is None, background=runner is None)
        code = qapp.exec()
        app.window.closing.disconnect(qapp.quit)
        app.window.close()
        app.shutdown()
    finally:
        qapp.setQuitOnLastWindowClosed(quit_on_last)
    return runner.exit_code if runner is not None else code

