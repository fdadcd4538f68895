"""A project whose images moved: the banner asks for the new folder instead of failing; images
still missing stay listed, greyed; the project is saved pointing at the new folder."""

from __future__ import annotations

import shutil

import pytest
from PySide6 import QtCore

from engine.project import Project, file_sha256
from gui.control.relocate import LOCATE_TEXT
from support.gui import WAIT_MS, harness_fixture, write_photo
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def _moved_project(tmp_path):
    """A project of a.png, b.png, c.png under work/images, then the folder moved to elsewhere/pics
    (c.png lost on the way). Returns (project file, new folder)."""
    images = tmp_path / "work" / "images"
    images.mkdir(parents=True)
    project = Project.create(tmp_path / "work" / "birds.qmask")
    for i, (name, w, h) in enumerate((("a.png", 160, 120), ("b.png", 120, 150), ("c.png", 100, 100))):
        path = write_photo(images / name, w=w, h=h, seed=i)
        project.add_image(path, read_size=True, sha256=file_sha256(path) if name == "b.png" else None)
    project.close()
    new = tmp_path / "elsewhere" / "pics"
    new.parent.mkdir()
    shutil.move(str(images), str(new))
    (new / "c.png").unlink()
    return project.path, new


def _row_status(app, index):
    return app.window.image_list.list.item(index).data(QtCore.Qt.ItemDataRole.UserRole)


def test_moved_images_ask_for_the_folder_and_load_after_relocating(harness, qtbot, tmp_path):
    project_file, new = _moved_project(tmp_path)
    errors: list[str] = []
    asked: list[tuple[str, str]] = []

    def choose(parent, title, start):  # stands in for the folder dialog
        asked.append((title, start))
        return str(new)

    app = harness.build([], project=project_file)
    app.controller.error_shown.connect(errors.append)
    app.controller.relocator.choose_folder = choose
    ws, w = app.workspace, app.window

    # Opening: no failure, a banner with the button, every image listed and greyed.
    banner = w.messages
    assert "3 images of this project are not where they were" in banner.current_text
    assert banner.action_button.isVisible() and banner.action_button.text() == LOCATE_TEXT
    assert [s.name for s in ws.sessions] == ["a.png", "b.png", "c.png"]
    assert all(s.missing and s.status == "missing" for s in ws.sessions)
    assert [_row_status(app, i) for i in range(3)] == ["missing"] * 3
    item = w.image_list.list.item(1)
    assert "not found" in item.toolTip() and item.foreground().color().name() == "#96989c"
    assert "3 missing" in w.image_list.count_label.text()

    # Selecting a missing image says so; nothing is marked failed, no error.
    w.image_list.list.setCurrentRow(1)
    assert ws.current.name == "b.png" and ws.current.image is None and not ws.current.loading
    assert "b.png is not at" in banner.current_text and banner.action_button.isVisible()
    assert all(img.status != "failed" for img in ws.project.iter_images())
    assert errors == []

    # "Locate folder…": the injected chooser gives the new folder; the project follows.
    with qtbot.waitSignal(app.controller.relocator.relocated, timeout=WAIT_MS) as blocker:
        banner.action_button.click()
    report = blocker.args[0]
    assert asked and asked[0][1] == str(tmp_path / "work")  # opened where the images were
    assert sorted(report.found) == ["images/a.png", "images/b.png"] and report.not_found == ["images/c.png"]
    a, b, c = ws.sessions
    assert a.path == new / "a.png" and b.path == new / "b.png" and not a.missing and not b.missing
    assert c.missing and _row_status(app, 2) == "missing" and "not found" in w.image_list.list.item(2).toolTip()
    assert [_row_status(app, i) for i in range(2)] == ["new", "new"]
    assert "1 image(s) still missing" in banner.current_text and banner.action_button.isVisible()

    # The current image (b.png) was missing a moment ago: it is read now.
    qtbot.waitUntil(lambda: b.image is not None, timeout=WAIT_MS)
    assert w.canvas.image_size == (120, 150)
    # The others load when selected.
    w.image_list.list.setCurrentRow(0)
    qtbot.waitUntil(lambda: a.image is not None, timeout=WAIT_MS)
    assert w.canvas.image_size == (160, 120)

    # Written (one transaction) with the new paths; c.png keeps its old one.
    on_disk = Project.open(project_file)
    assert [img.path for img in on_disk.iter_images()] == ["../elsewhere/pics/a.png", "../elsewhere/pics/b.png",
                                                    "images/c.png"]
    assert [img.name for img in on_disk.missing_images()] == ["c.png"]
    assert on_disk.find_image(new / "b.png").sha256 == file_sha256(new / "b.png")

    # The one still missing: selecting it says so again, still no failure.
    w.image_list.list.setCurrentRow(2)
    assert "c.png is not at" in banner.current_text
    assert errors == [] and list(ws.project.iter_images())[2].status != "failed"


def _stored(project):
    """What the project holds (paths, statuses) and how many edits its log has."""
    return [(img.path, img.status) for img in project.iter_images()], len(project.edits())


def test_cancelled_folder_choice_changes_nothing(harness, tmp_path):
    project_file, _new = _moved_project(tmp_path)
    app = harness.build([], project=project_file)
    app.controller.relocator.choose_folder = lambda parent, title, start: ""
    before = _stored(app.workspace.project)
    assert app.controller.relocator.locate() is None
    assert all(s.missing for s in app.workspace.sessions)
    assert _stored(app.workspace.project) == before


def test_relocating_to_a_folder_that_is_not_there_is_an_error_message(harness, tmp_path):
    project_file, _new = _moved_project(tmp_path)
    app = harness.build([], project=project_file)
    assert app.controller.relocator.relocate_to(tmp_path / "nowhere") is None
    assert "is not a folder" in app.window.messages.current_text
    assert all(s.missing for s in app.workspace.sessions)


def test_file_gone_between_listing_and_reading_is_missing_not_failed(harness, qtbot, tmp_path):
    a = write_photo(tmp_path / "a.png", seed=1)
    b = write_photo(tmp_path / "b.png", seed=2)
    app = harness.build([a, b])
    qtbot.waitUntil(lambda: app.workspace.current.image is not None, timeout=WAIT_MS)
    b.unlink()
    app.window.image_list.list.setCurrentRow(1)
    session = app.workspace.current
    assert session.missing and session.status == "missing" and "b.png is not at" in app.window.messages.current_text
    # It comes back: selecting it again reads it.
    write_photo(b, seed=2)
    app.window.image_list.list.setCurrentRow(0)
    app.window.image_list.list.setCurrentRow(1)
    qtbot.waitUntil(lambda: session.image is not None, timeout=WAIT_MS)
    assert not session.missing and session.status == "new"


def test_opening_another_project_lists_its_missing_images_too(harness, qtbot, tmp_path):
    project_file, new = _moved_project(tmp_path)
    app = harness.build([], project=tmp_path / "mine.qmask")
    with qtbot.waitSignal(app.controller.project_listed, timeout=WAIT_MS):  # listed on the store's thread
        assert app.files.load_project(project_file)
    names = [s.name for s in app.workspace.sessions]
    assert {"a.png", "b.png", "c.png"} <= set(names)
    assert "3 images of this project are not where they were" in app.window.messages.current_text
    app.controller.relocator.choose_folder = lambda parent, title, start: str(new)
    app.window.messages.action_button.click()
    by_name = {s.name: s for s in app.workspace.sessions}
    assert not by_name["a.png"].missing and not by_name["b.png"].missing and by_name["c.png"].missing


def test_same_name_other_content_is_not_used(harness, tmp_path):
    project_file, _new = _moved_project(tmp_path)
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    write_photo(decoy / "b.png", w=120, h=150, seed=9)  # b.png's name, not its bytes (SHA-256 recorded)
    app = harness.build([], project=project_file)
    report = app.controller.relocator.relocate_to(decoy)
    assert report.hash_mismatch == ["images/b.png"] and report.found == []
    assert "other content" in app.window.messages.current_text
    assert all(s.missing for s in app.workspace.sessions)
    assert list(Project.open(project_file).iter_images())[1].path == "images/b.png"
