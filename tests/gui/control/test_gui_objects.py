"""The app with several objects of several classes (issue 23), driven by real keys and clicks:
the Objects panel, digit keys, accept one / accept all, editing only the selected object,
delete and undo, the eye, a new object with O, Ctrl+click to select."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest

from engine.imaging.masks import encode_rle
from engine.project import ImageRecord, ObjectRecord, Project
from support.gui import WAIT_MS, click_image, drag_image, harness_fixture, select_object_row, wait_shown, write_photo
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse

Key, Mod = QtCore.Qt.Key, QtCore.Qt.KeyboardModifier
# five objects of three classes on a 160 x 120 photo: (class, rows, columns)
OBJECTS = [("person", (10, 40), (10, 40)), ("person", (10, 40), (60, 90)), ("dog", (60, 100), (10, 50)),
           ("dog", (60, 100), (70, 110)), ("cat", (20, 50), (120, 150))]


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def _project(tmp_path):
    """A project whose one photo holds OBJECTS (as an import made them), classes person, dog, cat."""
    photo = write_photo(tmp_path / "photo.png")
    path = tmp_path / "objects.qmask"
    objects = []
    for k, (cls, (y0, y1), (x0, x1)) in enumerate(OBJECTS):
        mask = np.zeros((120, 160), bool)
        mask[y0:y1, x0:x1] = True
        rle = encode_rle(mask)
        objects.append(ObjectRecord(category=cls, mask_rle=rle, auto_mask_rle=dict(rle), mask_source="import",
                                    source="import", order=k))
    with Project.create(path) as project:
        project.set_classes(["person", "dog", "cat"])
        project.import_records([ImageRecord(path=project.rel_path(photo), width=160, height=120, status="ok",
                                            objects=objects)])
    return photo, path, [o.uid for o in objects]


def _open(harness, qtbot, tmp_path):
    photo, path, uids = _project(tmp_path)
    app = harness.build([], project=path)
    wait_shown(qtbot, app)
    qtbot.waitUntil(lambda: app.controller.objects.label_map is not None, timeout=WAIT_MS)
    return app, path, uids


def _masks(session) -> dict[str, str]:
    return {uid: o.record.mask_rle["counts"] for uid, o in session.objects.items() if o.record.has_mask}


def test_the_panel_lists_every_object_and_keys_label_and_accept_them(harness, qtbot, tmp_path):
    app, path, uids = _open(harness, qtbot, tmp_path)
    w, session = app.window, app.workspace.current
    panel = w.objects_panel
    assert panel.model.rowCount() == 5 and "5 objects, 0 accepted" in panel.summary.text()
    assert w.candidates_panel.class_box.count() == 3  # the class list, in id order
    uid = select_object_row(qtbot, app, 0)  # the top of the drawing order: the cat
    assert uid == uids[-1] and session.category == "cat"
    w.canvas.setFocus()
    QTest.keyClick(w.canvas, Key.Key_2)  # digit key 2: the class list's second class
    assert session.objects[uid].record.category == "dog" and w.candidates_panel.class_box.currentText() == "dog"
    QTest.keyClick(w.canvas, Key.Key_Space)  # accept the selected object only
    assert session.objects[uid].record.accepted and sum(o.record.accepted for o in session.objects.values()) == 1
    assert not session.done and "5 objects, 1 accepted" in panel.summary.text()
    QTest.keyClick(w.canvas, Key.Key_J)  # the next object down the drawing order
    assert session.selected == uids[-2]
    QTest.keyClick(w.canvas, Key.Key_Space, Mod.ShiftModifier)  # accept every object
    assert session.done and all(o.record.accepted for o in session.objects.values())
    assert session.listener.undo_stack.undoText() == "Accept all (4)"
    assert w.image_list.list.item(0).data(QtCore.Qt.ItemDataRole.UserRole) == "accepted"
    app.workspace.drain()
    with Project.open(path) as other:  # the project has it: every object accepted, the relabel
        stored = other.find_image(session.path)
        assert stored.done and stored.find_object(uid).category == "dog"
        assert other.count_accepted() == 1


def test_editing_touches_only_the_selected_object(harness, qtbot, tmp_path):
    app, _path, uids = _open(harness, qtbot, tmp_path)
    w, session = app.window, app.workspace.current
    before = _masks(session)
    click_image(w.canvas, 25.5, 25.5, modifiers=Mod.ControlModifier)  # Ctrl+click selects the object there
    assert session.selected == uids[0]
    QTest.keyClick(w.canvas, Key.Key_N)  # the brush
    drag_image(w.canvas, (38.0, 25.0), (55.0, 25.0))  # paint out of the first person, towards the second
    qtbot.waitUntil(lambda: session.objects[uids[0]].mask[25, 50], timeout=WAIT_MS)
    after = _masks(session)
    assert after[uids[0]] != before[uids[0]]
    assert {u: after[u] for u in uids[1:]} == {u: before[u] for u in uids[1:]}  # the others exactly as they were
    QTest.keyClick(w, Key.Key_Z, Mod.ControlModifier)
    assert _masks(session) == before
    # a click with the Points tool edits the selected object's prompts, and nothing else
    QTest.keyClick(w.canvas, Key.Key_V)
    click_image(w.canvas, 20.5, 30.5)
    assert len(session.objects[uids[0]].prompts.points) == 1
    assert all(session.objects[u].prompts.empty for u in uids[1:])
    qtbot.waitUntil(lambda: not session.needs_segmentation(), timeout=WAIT_MS)
    assert {u: _masks(session)[u] for u in uids[1:]} == {u: before[u] for u in uids[1:]}


def test_delete_undo_hide_and_a_new_object(harness, qtbot, tmp_path):
    app, _path, uids = _open(harness, qtbot, tmp_path)
    w, session = app.window, app.workspace.current
    objects = w.canvas.objects_layer
    select_object_row(qtbot, app, 2)  # the middle of the list: the first dog
    uid = session.selected
    mask = session.objects[uid].record.mask_rle["counts"]
    w.canvas.setFocus()
    QTest.keyClick(w.canvas, Key.Key_Delete)
    assert uid not in session.objects and w.objects_panel.model.rowCount() == 4
    assert app.controller.objects.label_map.object_at(30, 80) is None  # gone from the canvas too
    QTest.keyClick(w, Key.Key_Z, Mod.ControlModifier)
    assert session.objects[uid].record.mask_rle["counts"] == mask and w.objects_panel.model.rowCount() == 5
    assert app.controller.objects.label_map.object_at(30, 80) == uid
    # the eye: hidden from the canvas and from clicks, still in the project
    view = w.objects_panel.view
    row = w.objects_panel.model.row_of(uid)
    eye = view.visualRect(w.objects_panel.model.index(row, 4)).center()
    QTest.mouseClick(view.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=eye)
    assert session.objects[uid].hidden and app.controller.objects.label_map.object_at(30, 80) is None
    assert objects.label_map is app.controller.objects.label_map
    # O, then a click where no object is: a new object of the class used last
    w.canvas.setFocus()
    QTest.keyClick(w.canvas, Key.Key_O)
    assert session.selected is None
    app.workspace.remember_category("cat")
    click_image(w.canvas, 140.5, 100.5)
    new = session.selected
    assert new is not None and new not in uids and session.objects[new].record.source == "manual"
    assert session.objects[new].record.category == "cat" and len(session.objects) == 6
    assert session.listener.undo_stack.undoText() == "Add positive point (new object)"
    qtbot.waitUntil(lambda: session.objects[new].mask is not None, timeout=WAIT_MS)
    QTest.keyClick(w, Key.Key_Z, Mod.ControlModifier)  # one step: the new object and its point go together
    assert new not in session.objects and len(session.objects) == 5


def test_the_review_queue_goes_to_the_object_most_in_need(harness, qtbot, tmp_path):
    from engine.project import QuestionRun

    photo, path, uids = _project(tmp_path)
    with Project.open(path) as project:  # a count question says 4: its two objects need a look
        image = project.find_image(photo)
        run = QuestionRun(question="how many dogs are there?", answer="4")
        for uid in uids[2:4]:
            obj = image.find_object(uid)
            obj.question = run.question
        project.put_changes(image, runs=[run], objects=[image.find_object(u) for u in uids[2:4]])
    app = harness.build([], project=path)
    wait_shown(qtbot, app)
    session = app.workspace.current
    assert session.selected is None
    app.window.canvas.setFocus()
    QTest.keyClick(app.window.canvas, Key.Key_J, Mod.ControlModifier)
    assert session.selected in uids[2:4]
    reasons = session.objects[session.selected].record.reasons
    assert any("the answer says 4 but 2 objects are kept" in r for r in reasons), reasons
    first = session.selected
    QTest.keyClick(app.window.canvas, Key.Key_J, Mod.ControlModifier)  # the other one, next
    assert session.selected in uids[2:4] and session.selected != first


def test_the_done_count_follows_space_and_shift_space_at_once(harness, qtbot, tmp_path):
    """The image list's "N images, K done" counts the accept just made (it ran one behind: it
    read the project before the accept's write was in)."""
    app, _path, _uids = _open(harness, qtbot, tmp_path)
    w = app.window
    label = w.image_list.count_label
    assert label.text() == "1 image, 0 done"
    w.canvas.setFocus()
    QTest.keyClick(w.canvas, Key.Key_Space, Mod.ShiftModifier)  # accept every object: the image is done
    qtbot.waitUntil(lambda: label.text() == "1 image, 1 done", timeout=WAIT_MS)
    QTest.keyClick(w.canvas, Key.Key_Z, Mod.ControlModifier)
    qtbot.waitUntil(lambda: label.text() == "1 image, 0 done", timeout=WAIT_MS)
    select_object_row(qtbot, app, 0)
    w.canvas.setFocus()
    for _ in range(len(OBJECTS) - 1):  # accept four of the five, one by one
        QTest.keyClick(w.canvas, Key.Key_Space)
        QTest.keyClick(w.canvas, Key.Key_J)
    app.workspace.drain()
    QtCore.QCoreApplication.processEvents()
    assert label.text() == "1 image, 0 done"
    QTest.keyClick(w.canvas, Key.Key_Space)  # the fifth: done
    qtbot.waitUntil(lambda: label.text() == "1 image, 1 done", timeout=WAIT_MS)
    assert app.workspace.current.done
