"""Opening folders and projects through the File menu and the image list's buttons (issue 25):
a folder of hundreds of images is listed and added off the GUI thread and read a bounded number
of times (not once per image), also when another process then writes every one of them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6 import QtCore, QtWidgets
from PySide6.QtTest import QTest

from engine.project import ImageRecord, Project, QuestionRun
from support.gui import WAIT_MS, harness_fixture, wait_shown, write_photo
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse

FOLDER_IMAGES = 300


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def _jpeg_folder(folder, n: int):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)).save(folder / f"img{i:04d}.jpg")
    return folder


def _button(widget: QtWidgets.QWidget, text: str) -> QtWidgets.QPushButton:
    (button,) = [b for b in widget.findChildren(QtWidgets.QPushButton) if b.text() == text]
    return button


def _count_calls(monkeypatch, obj, name: str, counts: dict) -> None:
    method = getattr(obj, name)

    def counted(*args, **kwargs):
        counts[name] = counts.get(name, 0) + 1
        return method(*args, **kwargs)

    monkeypatch.setattr(obj, name, counted)


def test_opening_a_folder_of_hundreds_reads_the_list_a_bounded_number_of_times(harness, qtbot, tmp_path,
                                                                               monkeypatch):
    folder = _jpeg_folder(tmp_path / "big", FOLDER_IMAGES)
    project_file = tmp_path / "p.qmask"
    app = harness.build([write_photo(tmp_path / "first.png")], project=project_file)
    wait_shown(qtbot, app)
    ws, w = app.workspace, app.window
    counts: dict[str, int] = {}
    for name in ("count_accepted", "get_image", "image_rows"):  # the list's count, records, list rows
        _count_calls(monkeypatch, ws.project, name, counts)
    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(folder))
    with qtbot.waitSignal(app.controller.paths_opened, timeout=WAIT_MS):
        QTest.mouseClick(_button(w.image_list, "Open folder…"), QtCore.Qt.MouseButton.LeftButton)
    assert w.image_list.list.count() == FOLDER_IMAGES + 1
    qtbot.waitUntil(lambda: ws.current.name == "img0000.jpg" and ws.current.image is not None, timeout=WAIT_MS)
    looks = ws.watch.looks
    qtbot.waitUntil(lambda: ws.watch.looks >= looks + 2, timeout=WAIT_MS)  # the watch looked after the adding
    assert counts.get("count_accepted", 0) <= 6, counts  # the count follows once, not once per image
    assert counts.get("get_image", 0) <= 4, counts  # only the images shown are read whole
    assert len(ws.session_ids()) <= 3  # the first photo, the folder's first, the one encoded next
    assert "301 images, 0 done" in w.image_list.count_label.text()

    # Another process (a batch) answers a question on every image: the watch finds all 300 rows,
    # reads the records of the few images shown, and the count follows once.
    counts.clear()
    with Project.open(project_file) as other:
        other.import_records([ImageRecord(path=other.rel_path(folder / f"img{i:04d}.jpg"), width=16, height=12,
                                          status="ok", runs=[QuestionRun(question="what is it?", answer="noise")])
                              for i in range(FOLDER_IMAGES)])
    qtbot.waitUntil(lambda: ws.current.answer is not None and ws.current.answer.answer == "noise", timeout=WAIT_MS)
    assert w.image_list.list.item(ws.index + 1).data(QtCore.Qt.ItemDataRole.UserRole) == "answered"
    assert counts.get("count_accepted", 0) <= 6, counts
    assert counts.get("get_image", 0) <= 4, counts


def _batch_project(tmp_path):
    """A project as ``qmask batch`` leaves it (engine Project API): three photos, each with a
    question run and the object it proposed (img1 the most doubtful: listed first)."""
    from engine.imaging.masks import encode_rle
    from engine.project import ObjectRecord

    folder = tmp_path / "shots"
    folder.mkdir()
    project_file = tmp_path / "batch.qmask"
    mask = np.zeros((120, 160), bool)
    mask[30:90, 40:120] = True
    heat = np.zeros((6, 6), np.float32)
    heat[2:4, 2:4] = 1.0
    with Project.create(project_file) as project:
        for i, itm in enumerate((0.95, 0.05, 0.6)):
            rec = project.add_image(write_photo(folder / f"img{i}.png", seed=i), width=160, height=120)
            rec.mark_ok(160, 120)
            project.update_image(rec)
            obj = ObjectRecord(question="what is it?", mask_rle=encode_rle(mask), mask_score=itm, source="batch",
                               proposal=True, category="thing")
            run = QuestionRun(question="what is it?", answer=f"answer {i}", itm_probability=itm, heatmap=heat,
                              object_uids=[obj.uid])
            project.put_changes(rec, runs=[run], objects=[obj], source="chain")
    return project_file, folder, mask


def _menu_click(qtbot, window, menu_title: str, action_name: str) -> None:
    """Click a menu's title in the menu bar, then one of its items, with the mouse."""
    bar = window.menuBar()
    (title,) = [a for a in bar.actions() if a.text().replace("&", "") == menu_title]
    QTest.mouseClick(bar, QtCore.Qt.MouseButton.LeftButton, pos=bar.actionGeometry(title).center())
    menu = title.menu()
    qtbot.waitUntil(menu.isVisible, timeout=WAIT_MS)
    QTest.mouseClick(menu, QtCore.Qt.MouseButton.LeftButton,
                     pos=menu.actionGeometry(window.action_map[action_name]).center())
    qtbot.waitUntil(lambda: not menu.isVisible(), timeout=WAIT_MS)
    window.activateWindow()  # (a window manager gives it back; the offscreen platform leaves the menu active)
    qtbot.waitUntil(lambda: QtWidgets.QApplication.activeWindow() is window, timeout=WAIT_MS)


def test_open_project_shows_a_batch_projects_objects_and_runs_and_writes_to_it(harness, qtbot, tmp_path,
                                                                                monkeypatch):
    project_file, folder, mask = _batch_project(tmp_path)
    mine = tmp_path / "mine.qmask"
    app = harness.build([write_photo(tmp_path / "other.png", seed=7)], project=mine)
    wait_shown(qtbot, app)
    w, ws = app.window, app.workspace
    monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileName",
                        lambda *args, **kwargs: (str(project_file), "QMask projects (*.qmask *.qmask.json)"))
    with qtbot.waitSignal(app.controller.project_listed, timeout=WAIT_MS):  # listed on the store's thread
        _menu_click(qtbot, w, "File", "open_project")
    assert ws.project.path == project_file
    assert app.project.path == project_file
    listed = [w.image_list.list.item(i).text() for i in range(w.image_list.list.count())]
    assert sorted(listed) == ["img0.png", "img1.png", "img2.png"]  # its images only,
    assert listed[0] == "img1.png"  # the one most in need of review first
    wait_shown(qtbot, app)
    objects = w.canvas.objects_layer
    for name in listed[:2]:
        assert ws.current.name == name
        answer = f"answer {name[3]}"
        qtbot.waitUntil(lambda: objects.label_map is not None, timeout=WAIT_MS)
        assert w.objects_panel.model.rowCount() == 1  # the batch's object, listed
        assert np.array_equal(objects.label_map.ids > 0, mask)  # and drawn
        assert w.answer_panel.answer_label.text() == answer  # its run
        w.canvas.setFocus()
        QTest.keyClick(w.canvas, QtCore.Qt.Key.Key_D)  # the next image
        wait_shown(qtbot, app)
    QTest.keyClick(w.canvas, QtCore.Qt.Key.Key_A)
    wait_shown(qtbot, app)
    QTest.keyClick(w.canvas, QtCore.Qt.Key.Key_Space, QtCore.Qt.KeyboardModifier.ShiftModifier)  # accept its object
    ws.drain()
    with Project.open(project_file) as batch:  # the change went to the batch project
        assert batch.find_image(folder / listed[1]).objects[0].accepted
    with Project.open(mine) as before:  # and the window's project before kept its own image only
        assert [r.name for r in before.iter_images(records=False)] == ["other.png"]


def _start_on_folder_project(harness, qtbot, images):
    """The app as ``qmask IMAGES...`` starts it: no --project, so the folder's own project."""
    from gui.app import AppOptions, QMaskApp
    from support.gui import fast_settings

    app = QMaskApp(AppOptions(images=[str(p) for p in images], models_dir=str(harness.models_dir),
                              settings=fast_settings()))
    harness.apps.append(app)
    qtbot.addWidget(app.window)
    app.window.show()
    app.start(check_models=False)
    return app


def _listed(app) -> list[str]:
    lst = app.window.image_list.list
    return [lst.item(i).text() for i in range(lst.count())]


def _photos(folder, *names):
    folder.mkdir(parents=True)
    return [write_photo(folder / name, seed=i) for i, name in enumerate(names)]


def test_two_sibling_folders_each_have_their_own_project(harness, qtbot, tmp_path, monkeypatch):
    ds, big = tmp_path / "x" / "ds", tmp_path / "x" / "big"
    _photos(ds, "a.png", "b.png")
    _photos(big, "c.png", "d.png", "e.png")
    first = _start_on_folder_project(harness, qtbot, [ds])  # qmask x/ds
    assert _listed(first) == ["a.png", "b.png"] and first.project.path.name.startswith("ds-")
    ds_project = first.project.path
    first.window.close()
    second = _start_on_folder_project(harness, qtbot, [big])  # qmask x/big: not ds's list
    assert _listed(second) == ["c.png", "d.png", "e.png"] and second.project.path.name.startswith("big-")
    second.window.close()
    third = _start_on_folder_project(harness, qtbot, [ds / "b.png"])  # an image of ds: ds's project
    assert third.project.path == ds_project and _listed(third) == ["a.png", "b.png"]
    # File > Open folder… on big moves the window to big's own project (its list, its work).
    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(big))
    with qtbot.waitSignal(third.controller.paths_opened, timeout=WAIT_MS):
        QTest.mouseClick(_button(third.window.image_list, "Open folder…"), QtCore.Qt.MouseButton.LeftButton)
    assert third.project.path.name.startswith("big-") and _listed(third) == ["c.png", "d.png", "e.png"]
    assert third.workspace.current.name == "c.png"


def test_a_folder_whose_work_is_in_the_earlier_parent_named_project_keeps_using_it(harness, qtbot, tmp_path):
    """Before projects were per folder, `qmask x/old` kept its work in a project named after x
    (shared by x's folders): that project is found and used, and the message says so."""
    from gui.workspace.data_paths import default_project_path

    old, new = tmp_path / "x" / "old", tmp_path / "x" / "new"
    photos = _photos(old, "a.png", "b.png")
    _photos(new, "c.png")
    earlier = default_project_path(tmp_path / "x" / "any.png")  # the parent's name and hash: as before
    earlier.parent.mkdir(parents=True, exist_ok=True)
    with Project.create(earlier) as project:
        project.add_images(photos)
        project.put_run(project.find_image(photos[0]), QuestionRun(question="what is it?", answer="earlier work"))
    app = _start_on_folder_project(harness, qtbot, [old])
    assert app.project.path == earlier and _listed(app) == ["a.png", "b.png"]
    assert "Your earlier work on old is in" in app.window.messages.current_text
    wait_shown(qtbot, app)
    assert app.workspace.current.answer.answer == "earlier work"
    app.window.close()
    other = _start_on_folder_project(harness, qtbot, [new])  # a folder the earlier project never held
    assert other.project.path != earlier and other.project.path.name.startswith("new-")
    assert _listed(other) == ["c.png"]


def test_qmask_on_a_folder_lists_it_while_the_window_goes_on_then_asks(harness, qtbot, tmp_path):
    """``qmask FOLDER --question Q`` (what run_app does): start() returns before the folder is
    listed; once its images are in, the first is shown and the question asked."""
    from gui.app import AppOptions, QMaskApp
    from support.gui import fast_settings

    folder = _jpeg_folder(tmp_path / "big", FOLDER_IMAGES)
    app = QMaskApp(AppOptions(images=[str(folder)], question="what is it?", models_dir=str(harness.models_dir),
                              settings=fast_settings(), project=str(tmp_path / "p.qmask")))
    harness.apps.append(app)
    qtbot.addWidget(app.window)
    app.window.show()
    with qtbot.waitSignal(app.controller.paths_opened, timeout=WAIT_MS):
        app.start(check_models=False, background=True)
        assert app.window.image_list.list.count() == 0  # not yet: listed on the store's thread
    assert app.window.image_list.list.count() == FOLDER_IMAGES
    with qtbot.waitSignal(app.controller.ask_finished, timeout=WAIT_MS) as finished:
        pass
    session, completed = finished.args
    assert completed and session.name == "img0000.jpg" and session.question == "what is it?"
