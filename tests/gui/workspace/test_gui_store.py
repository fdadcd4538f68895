"""The app over the SQLite store: a 10,000-image project opens reading only what it shows, and
what other processes write shows up (list rows, statuses, the shown image's objects and runs)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
from PySide6 import QtCore
from PySide6.QtTest import QTest

from engine.imaging.masks import encode_rle
from engine.project import ImageRecord, ObjectRecord, Project, QuestionRun

import pytest

from support.gui import WAIT_MS, harness_fixture, write_photo, wait_shown
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def _annotated(path: str, question: str, itm: float, answer: str = "thing", h: int = 30, w: int = 40) -> ImageRecord:
    """An image with one answered run and the object it proposed."""
    mask = np.zeros((h, w), bool)
    mask[5:20, 8:30] = True
    heat = np.zeros((6, 6), np.float32)
    heat[1:3, 1:4] = 1.0
    run = QuestionRun(question=question, answer=answer, itm_probability=itm, heatmap=heat,
                      captions=["a small thing on a table"] * 20)
    obj = ObjectRecord(mask_rle=encode_rle(mask), auto_mask_rle=encode_rle(mask), mask_score=0.8, source="batch",
                       question=question, proposal=True)
    run.object_uids = [obj.uid]
    return ImageRecord(path=path, width=w, height=h, status="ok", runs=[run], objects=[obj])


def test_a_10000_image_project_opens_reading_only_what_it_shows(harness, qtbot, tmp_path):
    n = 10_000
    folder = tmp_path / "images"
    folder.mkdir()
    project_file = tmp_path / "big.qmask"
    with Project.create(project_file) as project:
        images = []
        for i in range(n):
            # img00007 needs review most (BLIP doubts it most): it is shown first.
            images.append(_annotated(f"images/img{i:05d}.png", "what is it?", itm=0.01 if i == 7 else 0.9))
        project.import_records(images)
    for i in (7, 0, 1):
        write_photo(folder / f"img{i:05d}.png", w=40, h=30, seed=i)

    app = harness.build([], project=project_file)
    w = app.window
    assert w.image_list.list.count() == n
    wait_shown(qtbot, app)
    assert app.workspace.current.name == "img00007.png"
    assert app.workspace.current.answer is not None and app.workspace.current.answer.answer == "thing"
    qtbot.wait(50)  # let the list paint its first screen
    reads = app.workspace.project.reads
    # One image's objects and runs (the shown one); list rows a page or two, never all 10,000.
    assert reads["objects"] == 1 and reads["runs"] == 1, reads
    assert reads["images"] <= 3 * 128, reads
    assert len(app.workspace.made_sessions()) == 1
    # A row far down the list is read when it is looked at, from the store's summary.
    assert w.image_list.list.item(9_000).data(QtCore.Qt.ItemDataRole.UserRole) == "missing"
    assert w.image_list.list.item(1).text() == "img00000.png"
    assert w.image_list.list.item(1).data(QtCore.Qt.ItemDataRole.UserRole) == "answered"
    assert app.workspace.project.reads["objects"] == 1


WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from engine.imaging.masks import encode_rle
    from engine.project import ObjectRecord, Project, QuestionRun

    project = Project.open(sys.argv[1], writer="other")
    shown, other, new = sys.argv[2], sys.argv[3], sys.argv[4]
    mask = np.zeros((120, 160), bool)
    mask[10:50, 20:90] = True
    for path, answer, accepted in ((shown, "written elsewhere", False), (other, "also elsewhere", True)):
        img = project.find_image(path)
        img.mark_ok(160, 120)
        project.update_image(img)
        obj = ObjectRecord(question="who wrote this?", accepted=accepted, mask_rle=encode_rle(mask),
                           auto_mask_rle=encode_rle(mask), source="question")
        run = QuestionRun(question="who wrote this?", answer=answer, object_uids=[obj.uid])
        project.put_changes(img, runs=[run], objects=[obj], source="user")
    project.add_image(new)
    project.close()
""")


def test_changes_written_by_another_process_show_up(harness, qtbot, tmp_path):
    paths = [write_photo(tmp_path / f"{c}.png", seed=i) for i, c in enumerate("abc")]
    project_file = tmp_path / "shared.qmask"
    Project.create(project_file).close()
    app = harness.build(paths, project=project_file)
    ws, w = app.workspace, app.window
    qtbot.waitUntil(lambda: ws.current is not None and ws.current.image is not None, timeout=WAIT_MS)
    shown = ws.current
    assert shown.name == "a.png" and w.image_list.list.count() == 3
    new = write_photo(tmp_path / "d.png", seed=9)
    subprocess.run([sys.executable, "-c", WRITER, str(project_file), str(paths[0]), str(paths[2]), str(new)],
                   check=True, timeout=60)
    # The app's watch (once a second) finds the new image, the changed row and the shown record.
    qtbot.waitUntil(lambda: w.image_list.list.count() == 4, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: shown.answer is not None and shown.answer.answer == "written elsewhere",
                    timeout=WAIT_MS)
    assert shown.question == "who wrote this?" and len(shown.objects) == 1
    uid, = shown.objects
    assert shown.objects[uid].mask.sum() == 40 * 70
    assert w.objects_panel.model.rowCount() == 1  # the Objects panel lists it
    row_c = ws.find(paths[2])
    assert w.image_list.list.item(row_c).data(QtCore.Qt.ItemDataRole.UserRole) == "accepted"
    assert "also elsewhere" in w.image_list.list.item(row_c).toolTip()
    assert w.image_list.list.item(3).text() == "d.png"
    assert "1 done" in w.image_list.count_label.text()
    # Our own edits are not mistaken for someone else's: the shown session keeps its state.
    shown.set_category("mine", uid=uid)
    ws.drain()  # written (by the store's thread, on its own connection) before we look
    assert ws.check_external() == []
    with Project.open(project_file) as other:
        image = other.find_image(paths[0])
        assert image.find_object(uid).category == "mine"
        writers = {e.writer.split("@")[0] for e in other.edits(image.id)}
        assert writers == {"other", "app"}


def test_the_list_sorts_by_the_stores_orders_and_keeps_the_shown_image(harness, qtbot, tmp_path):
    names = ["c.png", "a.png", "b.png"]
    project_file = tmp_path / "sort.qmask"
    with Project.create(project_file) as project:
        images = []
        for i, name in enumerate(names):  # c needs review most, then a, then b
            write_photo(tmp_path / name, w=40, h=30, seed=i)
            images.append(_annotated(name, "what is it?", itm=(0.05, 0.5, 0.95)[i]))
        project.import_records(images)
    app = harness.build([], project=project_file)
    w, ws = app.window, app.workspace
    listed = lambda: [w.image_list.list.item(r).text() for r in range(3)]  # noqa: E731
    assert listed() == ["c.png", "a.png", "b.png"] and ws.current.name == "c.png"
    assert "review need:" in w.image_list.list.item(0).toolTip()
    box = w.image_list.sort_box
    box.setCurrentIndex(box.findData("name"))
    box.activated.emit(box.currentIndex())
    assert listed() == ["a.png", "b.png", "c.png"]
    assert ws.current.name == "c.png" and w.image_list.list.currentRow() == 2  # still shown, now last
    QTest.keyClick(w.canvas, QtCore.Qt.Key.Key_A)  # previous in the new order
    assert ws.current.name == "b.png"


def test_writes_go_after_the_gui_threads_work_but_never_keep_it_waiting(qapp, qtbot, tmp_path):
    """gui.engine_thread.input_priority on the store thread: a write waits while the GUI thread has priority;
    a write the GUI thread waits for (wait=True, drain) goes at once, with everything before it."""
    import threading

    from gui.engine_thread.input_priority import InputPriority
    from gui.workspace.workspace import Workspace

    project = Project.create(tmp_path / "p.qmask")
    ws = Workspace(project)
    try:
        p = InputPriority(max_wait_s=120.0, max_awake_wait_s=120.0)
        ws.priority = p
        order: list[str] = []
        p.hold(120.0)
        ws.write(lambda _p: order.append("queued"))
        qtbot.waitUntil(lambda: p.waiting, timeout=WAIT_MS)
        qtbot.wait(50)
        assert order == []  # giving way to the GUI thread
        done = []
        t = threading.Timer(60.0, lambda: done.append("stuck"))  # a guard, not a timing assertion
        t.start()
        assert ws.write(lambda _p: order.append("waited for"), wait=True)
        t.cancel()
        assert order == ["queued", "waited for"] and done == [] and not p.waiting
        p.enabled = False
        ws.write(lambda _p: order.append("later"))
        ws.drain()
        assert order[-1] == "later"
    finally:
        ws.close()
