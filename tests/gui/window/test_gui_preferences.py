"""What the app remembers between runs (gui.window.preferences): the file itself (round trip, damaged
and hand-edited values, a file that cannot be written), and the real app closed and opened again
on the same data folder."""

from __future__ import annotations

import json

import pytest
from PySide6 import QtCore

from gui.window.preferences import LAYER_ACTIONS, Preferences, PreferencesStore, default_path, models_folder
from support.gui import WAIT_MS, harness_fixture
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def test_round_trip_and_partial_saves(tmp_path):
    store = PreferencesStore(tmp_path / "prefs" / "preferences.json")
    assert store.load() == Preferences()  # no file yet: nothing remembered
    full = Preferences(models_dir=str(tmp_path / "models"), encode_on_show=False,
                       layers={"toggle_heat": False, "toggle_fused": True, "toggle_mask": True, "toggle_points": False},
                       heat_opacity=35, colormap="viridis", geometry=b"\x01\x02geometry", window_state=b"\x00state")
    assert store.save(full)
    assert store.load() == full
    # None fields leave the file's values alone; "" forgets the models folder
    assert store.save(Preferences(heat_opacity=80, layers={"toggle_heat": True}))
    assert store.load() == Preferences(**{**full.__dict__, "heat_opacity": 80,
                                          "layers": {**full.layers, "toggle_heat": True}})
    assert store.save(Preferences(models_dir=""))
    assert store.load().models_dir is None and store.load().colormap == "viridis"
    assert not list(store.path.parent.glob("*.tmp*"))  # atomic writes leave no temporary file


def test_hand_edited_values_read_as_not_remembered(tmp_path):
    path = tmp_path / "preferences.json"
    path.write_text(json.dumps({
        "engine": {"models_dir": "   ", "encode_on_show": "yes please"},
        "view": {"layers": {"heat": "maybe", "mask": False, "points": 1, "sky": True},
                 "heat_opacity": 150, "colormap": "rainbow-unicorn"},
        "window": {"geometry": "not base64!", "state": 42},
    }))
    store = PreferencesStore(path)
    assert store.load() == Preferences(layers={"toggle_mask": False})  # the one valid value
    assert store.save(Preferences(heat_opacity=20))
    assert store.load() == Preferences(layers={"toggle_mask": False}, heat_opacity=20)
    for odd in ("[1, 2]", '"text"', "null"):  # JSON, but not an object
        path.write_text(odd)
        assert store.load() == Preferences()


@pytest.mark.parametrize("content", [b"{\"view\": {\"heat_opacity\": 3", b"\x00\xff\xfe not text"])
def test_a_damaged_file_is_moved_aside_not_overwritten(tmp_path, content, caplog):
    path = tmp_path / "preferences.json"
    path.write_bytes(content)
    store = PreferencesStore(path)
    assert store.load() == Preferences()
    assert "is damaged" in caplog.text and "using the defaults" in caplog.text  # (tmp_path holds "damaged")
    assert store.save(Preferences(heat_opacity=20))
    assert store.load() == Preferences(heat_opacity=20)
    assert (tmp_path / "preferences.json.damaged").read_bytes() == content


def test_a_file_that_cannot_be_written_is_reported_not_raised(tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    assert not PreferencesStore(blocker / "preferences.json").save(Preferences(heat_opacity=10))
    taken = tmp_path / "preferences.json"
    taken.mkdir()  # a folder where the file should be
    assert PreferencesStore(taken).load() == Preferences()
    assert not PreferencesStore(taken).save(Preferences(heat_opacity=10))
    assert "Could not save the preferences" in caplog.text


def test_which_models_folder_wins(tmp_path):
    remembered = tmp_path / "remembered"
    remembered.mkdir()
    prefs = Preferences(models_dir=str(remembered))
    assert models_folder("/cli/models", prefs, {}) == ("/cli/models", "")
    assert models_folder(None, prefs, {"QMASK_MODELS_DIR": "/env/models"}) == (None, "")  # the engine reads it
    assert models_folder(None, prefs, {}) == (str(remembered), "")
    assert models_folder(None, Preferences(), {}) == (None, "")
    gone = Preferences(models_dir=str(tmp_path / "deleted"))
    folder, note = models_folder(None, gone, {})
    assert folder is None and "is gone" in note and str(tmp_path / "deleted") in note


def test_the_app_remembers_view_engine_toggle_and_window(harness, qtbot):
    app = harness.build()
    w, a = app.window, app.window.action_map
    a["toggle_heat"].setChecked(False)
    a["toggle_fused"].setChecked(True)
    a["toggle_points"].setChecked(False)
    w.opacity_slider.setValue(35)
    w.colormap_box.setCurrentText("viridis")
    a["encode_on_show"].setChecked(False)
    w.resize(1000, 700)
    qtbot.waitUntil(lambda: w.size() == QtCore.QSize(1000, 700), timeout=WAIT_MS)
    harness.close_all()
    assert default_path().is_file()

    again = harness.build()
    w, a = again.window, again.window.action_map
    assert not a["toggle_heat"].isChecked() and a["toggle_fused"].isChecked()
    assert a["toggle_mask"].isChecked() and not a["toggle_points"].isChecked()
    assert w.opacity_slider.value() == 35 and w.colormap_box.currentText() == "viridis"
    assert not a["encode_on_show"].isChecked() and not again.controller.prefetch.enabled
    style = w.canvas.style  # the canvas draws with them, not only the controls show them
    assert not style.heatmap_visible and style.fused_visible and style.heatmap_opacity == pytest.approx(0.35)
    assert style.colormap == "viridis"
    # the harness resizes every window it builds; the remembered size is what the app restored
    assert PreferencesStore().load().geometry is not None


def test_restored_window_size_and_dock_layout(harness, qtbot):
    from gui.app import AppOptions, QMaskApp

    first = QMaskApp(AppOptions(project=str(harness.tmp_path / "p.qmask")))
    qtbot.addWidget(first.window)
    first.window.resize(1000, 780)  # (the left side holds images, objects and now the answer: 746 px at least)
    first.window.addDockWidget(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, first.window.answer_dock)
    first.window.show()
    qtbot.waitExposed(first.window)
    first.window.close()  # saves

    second = QMaskApp(AppOptions(project=str(harness.tmp_path / "p.qmask")))
    qtbot.addWidget(second.window)
    assert second.window.dockWidgetArea(second.window.answer_dock) == QtCore.Qt.DockWidgetArea.LeftDockWidgetArea
    # built at 1440 x 900, then restored (restoreGeometry may shrink it further to fit the
    # offscreen platform's 800 x 600 screen)
    assert second.window.width() <= 1000 and second.window.height() <= 780
    second.window.close()
    second.shutdown()


def test_models_folder_chosen_in_the_dialog_is_used_next_time(harness, qtbot, tiny_models_dir, tmp_path):
    app = harness.build(models_dir=None, start=False)
    assert app.controller.models_dir is None
    dialog = app.files.show_models()
    with qtbot.waitSignal(app.controller.models_ready, timeout=WAIT_MS):
        dialog.models_chosen.emit(str(tiny_models_dir))  # what "Choose models folder…" + Continue sends
    assert PreferencesStore().load().models_dir == str(tiny_models_dir)  # saved at once, not at close
    harness.close_all()

    again = harness.build(models_dir=None)  # no --models: the remembered folder, and it loads
    assert again.controller.models_dir == str(tiny_models_dir)
    assert again.controller.models is not None and again.controller.models.random_weights
    harness.close_all()

    elsewhere = tmp_path / "cli-models"
    cli = harness.build(models_dir=elsewhere, start=False)  # --models wins over the remembered folder
    assert cli.controller.models_dir == str(elsewhere)


def test_a_remembered_models_folder_that_is_gone_says_so(harness, tmp_path):
    PreferencesStore().save(Preferences(models_dir=str(tmp_path / "was-here")))
    app = harness.build(models_dir=None, start=False)
    assert app.controller.models_dir is None
    assert any(level == "warning" and "is gone" in text for level, text in app.window.messages.history)


def test_every_layer_toggle_is_remembered(harness):
    app = harness.build(start=False)
    for name in LAYER_ACTIONS:
        app.window.action_map[name].toggle()
    flipped = {name: app.window.action_map[name].isChecked() for name in LAYER_ACTIONS}
    harness.close_all()
    assert PreferencesStore().load().layers == flipped


def test_a_screenshot_run_saves_nothing_and_keeps_the_default_layout(harness, qtbot):
    from gui.app import AppOptions, QMaskApp

    store = PreferencesStore()
    store.save(Preferences(heat_opacity=25, geometry=None))
    app = QMaskApp(AppOptions(project=str(harness.tmp_path / "p.qmask"),
                              screenshot=str(harness.tmp_path / "shot.png")))
    qtbot.addWidget(app.window)
    assert app.window.opacity_slider.value() == 25  # what the user sees is what they set
    app.window.opacity_slider.setValue(90)
    app.window.close()
    app.shutdown()
    assert store.load().heat_opacity == 25


def _start(harness, qtbot, images=()):
    """The app as ``qmask [IMAGES]`` starts it (no --project), on the test's own data folder."""
    from gui.app import AppOptions, QMaskApp
    from support.gui import fast_settings

    app = QMaskApp(AppOptions(images=[str(p) for p in images], models_dir=str(harness.models_dir),
                              settings=fast_settings()))
    harness.apps.append(app)
    qtbot.addWidget(app.window)
    app.window.show()
    app.start(check_models=False)
    return app


def test_the_question_history_is_remembered_and_up_down_recall_it(harness, qtbot, tmp_path):
    from PySide6.QtTest import QTest

    from gui.window.panels.question_panel import QUESTIONS_KEPT
    from support.gui import wait_shown, write_photo

    photo = write_photo(tmp_path / "photo.png")
    app = harness.build([photo])
    wait_shown(qtbot, app)
    edit = app.window.question_panel.edit
    for question in ("what is on the left?", "where is the cup?"):
        edit.setFocus()
        edit.clear()
        QTest.keyClicks(edit, question)
        with qtbot.waitSignal(app.controller.ask_finished, timeout=WAIT_MS):
            QTest.keyClick(edit, QtCore.Qt.Key.Key_Return)
    harness.close_all()

    again = harness.build([photo])  # a new window, the same (test's own) data folder
    edit = again.window.question_panel.edit
    edit.setFocus()
    edit.clear()
    QTest.keyClicks(edit, "how ")  # typed, not asked
    Key = QtCore.Qt.Key
    QTest.keyClick(edit, Key.Key_Up)
    assert edit.text() == "where is the cup?"  # the newest first
    QTest.keyClick(edit, Key.Key_Up)
    assert edit.text() == "what is on the left?"
    QTest.keyClick(edit, Key.Key_Up)  # (the oldest stays)
    assert edit.text() == "what is on the left?"
    QTest.keyClick(edit, Key.Key_Down)
    assert edit.text() == "where is the cup?"
    QTest.keyClick(edit, Key.Key_Down)
    assert edit.text() == "how "  # past the newest: what was typed
    # Bounded: a long history keeps the newest QUESTIONS_KEPT.
    store = again.preferences
    store.save(Preferences(questions=[f"question {i}?" for i in range(QUESTIONS_KEPT + 20)]))
    assert store.load().questions == [f"question {i}?" for i in range(QUESTIONS_KEPT)]


def test_the_folder_opened_last_is_reopened_by_qmask_alone_and_offered_by_open_folder(harness, qtbot, tmp_path,
                                                                                    monkeypatch):
    from PySide6 import QtWidgets
    from PySide6.QtTest import QTest

    from support.gui import write_photo

    folder = tmp_path / "shots"
    folder.mkdir()
    for i, name in enumerate(("a.png", "b.png")):
        write_photo(folder / name, seed=i)
    first = _start(harness, qtbot, [write_photo(tmp_path / "first.png")])  # qmask first.png
    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(folder))
    (button,) = [b for b in first.window.image_list.findChildren(QtWidgets.QPushButton) if b.text() == "Open folder…"]
    with qtbot.waitSignal(first.controller.paths_opened, timeout=WAIT_MS):
        QTest.mouseClick(button, QtCore.Qt.MouseButton.LeftButton)
    folder_project = first.project.path
    harness.close_all()

    again = _start(harness, qtbot)  # qmask, nothing given: the folder opened last, with its project
    lst = again.window.image_list.list
    assert [lst.item(i).text() for i in range(lst.count())] == ["a.png", "b.png"]
    assert again.project.path == folder_project
    assert "Reopened" in again.window.messages.current_text and str(folder) in again.window.messages.current_text
    offered = []
    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory",
                        lambda parent, caption, start, *args: offered.append(start) or "")
    again.window.activateWindow()
    qtbot.waitUntil(lambda: QtWidgets.QApplication.activeWindow() is again.window, timeout=WAIT_MS)
    again.window.canvas.setFocus()
    QTest.keyClick(again.window.canvas, QtCore.Qt.Key.Key_O,
                   QtCore.Qt.KeyboardModifier.ControlModifier | QtCore.Qt.KeyboardModifier.ShiftModifier)
    assert offered == [str(folder)]  # File > Open folder… opens there
