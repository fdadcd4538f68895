"""Moving the window to another project while an Export or Import dialog is open: an idle dialog
closes (it names the project about to close); a running export keeps the window on its project
until it ends, and says so. Real dialogs, real threads, the File menu's own commands."""

from __future__ import annotations

import threading

import pytest
from PySide6 import QtCore, QtWidgets
from PySide6.QtTest import QTest

from engine.project import Project
from support.gui import WAIT_MS, ask_and_wait, harness_fixture, wait_shown, write_photo
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse

import gui.window.dialogs.export_dialog as export_dialog_module

Key, Mod = QtCore.Qt.Key, QtCore.Qt.KeyboardModifier


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def _other_project(tmp_path):
    path = tmp_path / "other.qmask"
    project = Project.create(path, writer="test")
    project.add_image(write_photo(tmp_path / "theirs.png", seed=3))
    project.close()
    return path


def _choose(monkeypatch, path) -> None:
    monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))


def test_an_idle_export_dialog_closes_when_the_window_opens_another_project(harness, qtbot, tmp_path, monkeypatch):
    mine = tmp_path / "mine.qmask"
    app = harness.build([write_photo(tmp_path / "mine.png")], project=mine)
    wait_shown(qtbot, app)
    QTest.keyClick(app.window, Key.Key_E, Mod.ControlModifier)
    dialog = app.files.export_dialog
    qtbot.waitExposed(dialog)
    other = _other_project(tmp_path)
    _choose(monkeypatch, other)
    with qtbot.waitSignal(app.controller.project_listed, timeout=WAIT_MS):
        app.window.action_map["open_project"].trigger()
    assert app.workspace.project.path == other and [s.name for s in app.workspace.sessions] == ["theirs.png"]
    assert not dialog.isVisible() and app.files.export_dialog is None
    app.window.action_map["export"].trigger()  # a new one names the new project
    assert app.files.export_dialog.project is app.workspace.project
    app.files.export_dialog.close()


def test_a_running_export_keeps_the_window_on_its_project_until_it_ends(harness, qtbot, tmp_path, monkeypatch):
    mine = tmp_path / "mine.qmask"
    app = harness.build([write_photo(tmp_path / "mine.png")], project=mine)
    wait_shown(qtbot, app)
    ask_and_wait(qtbot, app)
    app.window.canvas.setFocus()
    QTest.keyClick(app.window.canvas, Key.Key_Space, Mod.ShiftModifier)  # accept every object: there is something to export
    release, started = threading.Event(), threading.Event()
    real_export = export_dialog_module.run_export

    def held_export(project, options, say):
        started.set()
        release.wait(30)  # the export is "running" until the test lets it go
        return real_export(project, options, say)

    monkeypatch.setattr(export_dialog_module, "run_export", held_export)
    QTest.keyClick(app.window, Key.Key_E, Mod.ControlModifier)
    dialog = app.files.export_dialog
    qtbot.waitExposed(dialog)
    dialog.folder.setText(str(tmp_path / "out"))
    QTest.mouseClick(dialog.export_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(started.is_set, timeout=WAIT_MS)
    other = _other_project(tmp_path)
    _choose(monkeypatch, other)
    try:
        app.window.action_map["open_project"].trigger()
        assert app.workspace.project.path == mine
        assert "still running" in app.window.messages.current_text
        assert dialog.isVisible()
    finally:
        release.set()
    qtbot.waitUntil(dialog.export_button.isEnabled, timeout=WAIT_MS)  # the export ended, written whole
    assert (tmp_path / "out" / "annotations.json").is_file(), dialog.status.text()  # from the project it began on
    with qtbot.waitSignal(app.controller.project_listed, timeout=WAIT_MS):
        app.window.action_map["open_project"].trigger()  # now the window goes
    assert app.workspace.project.path == other
    assert not dialog.isVisible()
