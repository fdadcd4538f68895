"""Per-image state, the autosaved project, export validated with pycocotools, cancel, bad images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from PySide6 import QtCore
from PySide6.QtTest import QTest

from engine.project import Project
from gui.window.panels.answer_panel import display_answer
from support.gui import WAIT_MS, ask_and_wait, fast_settings, write_photo, harness_fixture, wait_shown
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def test_navigation_keeps_each_image_state_and_the_project_restores_it(harness, qtbot, tmp_path):
    a = write_photo(tmp_path / "a.png", seed=1)
    b = write_photo(tmp_path / "b.png", w=120, h=150, seed=2)
    project_file = tmp_path / "work.qmask"
    app = harness.build([a, b], project=project_file)
    wait_shown(qtbot, app)
    w = app.window
    first = ask_and_wait(qtbot, app, "what is the yellow disc?")
    uid = first.selected  # the question's proposal, selected when it came
    w.candidates_panel.buttons[1].click()
    QTest.keyClick(w.canvas, QtCore.Qt.Key.Key_Space)  # accept
    assert first.accepted and first.chosen == 1 and first.done
    mask, answer = first.mask.copy(), first.answer.answer
    # D: next image (read on demand), A: back, state intact
    QTest.keyClick(w.canvas, QtCore.Qt.Key.Key_D)
    qtbot.waitUntil(lambda: app.workspace.current.image is not None, timeout=WAIT_MS)
    second = app.workspace.current
    assert second.path.name == "b.png" and w.canvas.image_size == (120, 150)
    assert w.canvas.mask_layer.mask is None and w.answer_panel.answer_label.text() == "—"
    QTest.keyClick(w.canvas, QtCore.Qt.Key.Key_A)
    assert app.workspace.current is first and w.canvas.image_size == (160, 120)
    assert np.array_equal(w.canvas.mask_layer.mask, mask)
    assert w.answer_panel.answer_label.text() == display_answer(answer)
    assert w.candidates_panel.buttons[1].isChecked() and w.candidates_panel.accept_box.isChecked()
    assert w.image_list.list.item(0).data(QtCore.Qt.ItemDataRole.UserRole) == "accepted"
    # undo history is per image
    assert first.listener.undo_stack.undoText() == "Accept object" and second.listener.undo_stack.count() == 0
    # written as made (by the store's thread: drained here): the file has the run, the object and its acceptance
    app.workspace.drain()
    on_disk = Project.open(project_file)
    stored = on_disk.find_image(a)
    assert stored.find_run("what is the yellow disc?").answer == answer
    obj = stored.find_object(uid)
    assert obj.accepted and obj.question == "what is the yellow disc?" and not obj.proposal
    assert np.array_equal(obj.mask(), mask) and obj.category is None  # no class list: unlabelled, never the answer
    # a new window on the same project shows it again (no model call needed)
    app.window.close()
    again = harness.build([], project=project_file)
    restored = again.workspace.sessions[again.workspace.find(a)]
    again.workspace.set_index(again.workspace.find(a))
    qtbot.waitUntil(lambda: restored.image is not None, timeout=WAIT_MS)
    assert restored.done and restored.answer.answer == answer and restored.selected is None
    restored.select(uid)
    assert restored.accepted and np.array_equal(restored.mask, mask)
    assert np.array_equal(again.window.canvas.mask_layer.mask, mask)
    assert again.window.canvas.heat_layer.grid is not None


def test_export_coco_png_and_overlays_validate_with_pycocotools(harness, qtbot, tmp_path):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    img = write_photo(tmp_path / "photo.png")
    app = harness.build([img])
    wait_shown(qtbot, app)
    session = ask_and_wait(qtbot, app)
    w = app.window
    w.candidates_panel.class_box.setEditText("saucer")
    w.candidates_panel.class_box.lineEdit().editingFinished.emit()
    assert session.category == "saucer" and session.listener.undo_stack.undoText() == "Class 'saucer'"
    w.candidates_panel.accept_box.click()
    assert session.accepted
    w.action_map["export"].trigger()
    dialog = app.files.export_dialog
    assert dialog is not None and dialog.isVisible() and not dialog.isModal()
    out = tmp_path / "export"
    dialog.folder.setText(str(out))
    dialog.scope_current.setChecked(True)
    dialog.coco_polygons.setCurrentIndex(1)  # polygons: holes kept as keyholes
    dialog.yolo.setChecked(True)  # every format the command line has
    dialog.labelme.setChecked(True)
    with qtbot.waitSignal(dialog.exported, timeout=WAIT_MS) as blocker:
        qtbot.waitUntil(dialog.export_button.isEnabled)  # greyed until the last run's thread is over
        dialog.export_button.click()
    summary = blocker.args[0]
    coco = COCO(str(summary.coco_file))
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) == 1
    ann = anns[0]
    assert coco.loadCats(ann["category_id"])[0]["name"] == "saucer"
    image_info = coco.loadImgs(ann["image_id"])[0]
    assert (image_info["width"], image_info["height"]) == (160, 120)
    decoded = coco.annToMask(ann).astype(bool)
    assert np.array_equal(decoded, session.mask)
    assert ann["area"] == int(session.mask.sum())
    ys, xs = np.nonzero(session.mask)
    assert ann["bbox"] == [float(xs.min()), float(ys.min()),
                           float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
    assert mask_utils.area(coco.annToRLE(ann)) == ann["area"]
    assert (out / "yolo" / "classes.txt").read_text().splitlines()[-1] == "saucer"
    assert len(list((out / "yolo" / "labels").glob("*.txt"))) == 1
    labelme = json.loads(next((out / "labelme").glob("*.json")).read_text())
    assert {s["label"] for s in labelme["shapes"]} == {"saucer"}
    pngs = sorted((out / "png_masks").rglob("*.png"))
    assert pngs and np.array(Image.open(pngs[0])).shape[:2] == (120, 160)
    overlays = sorted((out / "overlays").glob("*.png"))
    assert len(overlays) == 1
    overlay = np.array(Image.open(overlays[0]).convert("RGB")).astype(int)
    photo = np.array(Image.open(img).convert("RGB")).astype(int)
    assert np.abs(overlay - photo)[session.mask].mean() > np.abs(overlay - photo)[~session.mask].mean() * 0.5
    assert "Exported 1 annotation" in dialog.status.text()  # one object
    # RLE export of all images also validates
    dialog.coco_polygons.setCurrentIndex(0)
    dialog.scope_all.setChecked(True)
    dialog.folder.setText(str(tmp_path / "export-rle"))
    with qtbot.waitSignal(dialog.exported, timeout=WAIT_MS) as blocker:
        qtbot.waitUntil(dialog.export_button.isEnabled)  # greyed until the last run's thread is over
        dialog.export_button.click()
    coco = COCO(str(blocker.args[0].coco_file))
    ann, = coco.loadAnns(coco.getAnnIds())
    assert isinstance(ann["segmentation"]["counts"], str)
    assert np.array_equal(coco.annToMask(ann).astype(bool), session.mask)
    # self-contained datasets: the images copied, COCO in its standard layout
    dialog.self_contained.setChecked(True)
    dialog.folder.setText(str(tmp_path / "export-copy"))
    with qtbot.waitSignal(dialog.exported, timeout=WAIT_MS) as blocker:
        qtbot.waitUntil(dialog.export_button.isEnabled)  # greyed until the last run's thread is over
        dialog.export_button.click()
    copy = tmp_path / "export-copy"
    assert blocker.args[0].coco_file == copy / "coco" / "annotations" / "instances_default.json"
    assert (copy / "coco" / "images" / "photo.png").is_file() and (copy / "yolo" / "images" / "photo.png").is_file()
    assert (copy / "labelme" / "photo.png").is_file() and (copy / "labelme" / "photo.json").is_file()
    dialog.close()


def test_the_export_reads_what_the_window_shows_even_with_writes_still_queued(harness, qtbot, tmp_path):
    # Project writes go through the store's own thread; under load the accept just made may still
    # be queued when the export starts. The export waits for them (before: 'nothing accepted').
    import threading

    img = write_photo(tmp_path / "photo.png")
    app = harness.build([img])
    wait_shown(qtbot, app)
    session = ask_and_wait(qtbot, app)
    gate = threading.Event()
    app.workspace.write(lambda p: gate.wait(30))  # the store thread is busy: later writes queue behind
    app.window.candidates_panel.accept_box.click()
    assert session.accepted
    app.window.action_map["export"].trigger()
    dialog = app.files.export_dialog
    dialog.folder.setText(str(tmp_path / "export"))
    dialog.scope_current.setChecked(True)
    ended: list[str] = []
    dialog.exported.connect(lambda s: ended.append("exported"))
    dialog.export_failed.connect(lambda m: ended.append(m))
    qtbot.waitUntil(dialog.export_button.isEnabled)  # greyed until the last run's thread is over
    dialog.export_button.click()
    qtbot.wait(1500)  # time enough for an export that did not wait to end
    gate.set()
    qtbot.waitUntil(lambda: bool(ended), timeout=WAIT_MS)
    assert ended == ["exported"], ended
    assert dialog.summary.coco_file is not None and dialog.summary.coco_file.is_file()


def test_export_with_nothing_accepted_says_so(harness, qtbot, tmp_path):
    img = write_photo(tmp_path / "photo.png")
    app = harness.build([img], start=False)
    app.start(check_models=False)
    dialog = app.files.show_export()
    dialog.folder.setText(str(tmp_path / "out"))
    with qtbot.waitSignal(dialog.export_failed, timeout=WAIT_MS) as blocker:
        qtbot.waitUntil(dialog.export_button.isEnabled)  # greyed until the last run's thread is over
        dialog.export_button.click()
    assert "Nothing" in blocker.args[0] and "accepted" in blocker.args[0]
    qtbot.waitUntil(lambda: dialog.task is None, timeout=WAIT_MS)
    dialog.close()


def test_a_cancelled_first_question_leaves_the_image_as_it_was(harness, qtbot, tmp_path):
    img = write_photo(tmp_path / "photo.png")
    slow = fast_settings(num_captions=400, max_caption_rounds=200, caption_batch_size=2)
    app = harness.build([img], settings=slow)
    qtbot.waitUntil(lambda: app.workspace.current.image is not None, timeout=WAIT_MS)
    w = app.window
    seen = []

    def on_progress(p):
        seen.append(p.stage)
        if p.stage == "captions" and w.status.cancel_button.isVisible():
            QTest.mouseClick(w.status.cancel_button, QtCore.Qt.MouseButton.LeftButton)

    app.client.progress.connect(on_progress)
    with qtbot.waitSignal(app.controller.ask_finished, timeout=WAIT_MS) as blocker:
        app.controller.ask("what is this?")
    assert blocker.args[1] is False and "captions" in seen
    session = app.workspace.current
    assert "Cancelled" in w.messages.current_text and "last complete state" in w.messages.current_text
    # no half-made question: the image is new again (tests/gui/control/test_gui_ask_cancel.py: one with an answer)
    assert session.question_map is None and session.mask is None and session.answer is None
    assert not session.objects and not session.runs and w.objects_panel.model.rowCount() == 0
    assert w.canvas.heat_layer.grid is None and session.status == "new"
    qtbot.waitUntil(lambda: not w.status.cancel_button.isVisible(), timeout=WAIT_MS)
    assert not app.client.busy


def test_a_corrupt_image_shows_a_message_and_the_app_keeps_working(harness, qtbot, tmp_path):
    bad = tmp_path / "a-corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    good = write_photo(tmp_path / "b-good.png")
    app = harness.build([bad, good])
    w = app.window
    qtbot.waitUntil(lambda: "a-corrupt.png" in w.messages.current_text, timeout=WAIT_MS)
    assert w.messages.level == "error"
    assert app.workspace.current.status == "failed"
    assert w.image_list.list.item(0).data(QtCore.Qt.ItemDataRole.UserRole) == "failed"
    QTest.keyClick(w.canvas, QtCore.Qt.Key.Key_D)
    qtbot.waitUntil(lambda: app.workspace.current.image is not None, timeout=WAIT_MS)
    assert ask_and_wait(qtbot, app).answer is not None
    # the failure is in the project too (batch and GUI share it)
    app.workspace.drain()
    with Project.open(app.workspace.project.path) as other:  # as another process reads it
        statuses = {img.path: img.status for img in other.iter_images(records=False)}
    assert statuses["a-corrupt.png"] == "failed" and statuses["b-good.png"] == "ok"


def test_missing_models_are_listed_and_a_folder_can_be_chosen(harness, qtbot, tmp_path, tiny_models_dir):
    empty = tmp_path / "no-models"
    empty.mkdir()
    img = write_photo(tmp_path / "photo.png")
    app = harness.build([img], models_dir=empty, wait_models=False, check_models=True)
    dialog = app.files.models_dialog
    assert dialog is not None and dialog.isVisible()
    assert set(dialog.missing) == {"itm", "caption", "qa", "efficient_sam"}
    assert dialog.download_button.isEnabled() and not dialog.continue_button.isEnabled()
    statuses = [dialog.table.item(r, 1).text() for r in range(4)]
    assert statuses == ["missing"] * 4
    assert dialog.set_models_dir(str(tiny_models_dir)) == []
    assert "random weights" in dialog.table.item(0, 1).text()
    with qtbot.waitSignal(app.controller.models_ready, timeout=WAIT_MS):
        dialog.continue_button.click()
    assert app.controller.models_dir == str(tiny_models_dir)
    assert app.window.status.random_badge.isVisibleTo(app.window)


def test_loading_from_an_empty_folder_offers_the_models_dialog(harness, qtbot, tmp_path):
    empty = tmp_path / "no-models"
    empty.mkdir()
    app = harness.build([write_photo(tmp_path / "p.png")], models_dir=empty, wait_models=False)
    qtbot.waitUntil(lambda: "qmask models download" in app.window.messages.current_text, timeout=WAIT_MS)
    assert app.window.messages.action_button.isVisibleTo(app.window)
    app.window.messages.action_button.click()
    assert app.files.models_dialog is not None and app.files.models_dialog.isVisible()


def test_a_batch_project_opens_sorted_by_review_need(harness, qtbot, tmp_path):
    from engine.imaging.masks import encode_rle
    from engine.project import ObjectRecord, QuestionRun

    imgs = [write_photo(tmp_path / f"img{i}.png", seed=i) for i in range(3)]
    project_file = tmp_path / "batch.qmask"
    project = Project.create(project_file)
    mask = np.zeros((120, 160), bool)
    mask[30:90, 40:120] = True
    heat = np.zeros((6, 6), np.float32)
    heat[2:4, 2:4] = 1.0
    # img0: confident and accepted (no review); img1: doubtful; img2: in between
    for path, itm, iou, accepted in [(imgs[0], 0.95, 0.95, True), (imgs[1], 0.05, 0.1, False),
                                     (imgs[2], 0.6, 0.7, False)]:
        rec = project.add_image(path, width=160, height=120)
        rec.mark_ok(160, 120)
        project.update_image(rec)
        obj = ObjectRecord(question="what is it?", mask_rle=encode_rle(mask), mask_score=iou, accepted=accepted,
                           source="batch", proposal=True)
        run = QuestionRun(question="what is it?", answer="thing", itm_probability=itm, heatmap=heat,
                          object_uids=[obj.uid])
        project.put_changes(rec, runs=[run], objects=[obj], source="chain")
    project.close()
    app = harness.build([], project=project_file)
    names = [s.name for s in app.workspace.sessions]
    assert names == ["img1.png", "img2.png", "img0.png"]
    assert [app.window.image_list.list.item(i).text() for i in range(3)] == names
    assert app.workspace.current.name == "img1.png"
    qtbot.waitUntil(lambda: app.workspace.current.image is not None, timeout=WAIT_MS)
    objects = app.window.canvas.objects_layer
    qtbot.waitUntil(lambda: objects.label_map is not None, timeout=WAIT_MS)
    assert np.array_equal(objects.label_map.ids > 0, mask)  # the batch's object, drawn at once
    assert app.window.answer_panel.answer_label.text() == "thing"


def test_open_a_folder_in_natural_order(harness, qtbot, tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    for name in ("img10.png", "img2.png", "img1.png"):
        write_photo(folder / name)
    (folder / "notes.txt").write_text("not an image")
    app = harness.build([], start=False)
    app.controller.open_paths([folder])
    assert [s.name for s in app.workspace.sessions] == ["img1.png", "img2.png", "img10.png"]
    assert app.window.image_list.count_label.text() == "3 images, 0 done"
    app.controller.open_paths([tmp_path / "missing-folder"])
    assert "missing-folder" in app.window.messages.current_text


def test_model_download_runs_in_a_thread_with_progress_and_cancel(harness, qtbot, tmp_path, monkeypatch):
    import time

    import engine.models.download

    calls = []

    def fake_download(preset, sam_variant, to=None, progress=True, say=print, **_kw):
        calls.append((preset, sam_variant, to))
        for i in range(200):
            say(f"downloading file {i}")
            time.sleep(0.02)
        return []

    monkeypatch.setattr(engine.models.download, "download_models", fake_download)
    empty = tmp_path / "models"
    empty.mkdir()
    app = harness.build([], models_dir=empty, start=False)
    dialog = app.files.show_models()
    assert not dialog.isModal() or dialog.windowModality() != QtCore.Qt.WindowModality.ApplicationModal
    dialog.download_button.click()
    qtbot.waitUntil(lambda: "downloading file" in dialog.progress_label.text(), timeout=WAIT_MS)
    assert dialog.cancel_button.isVisible() and not dialog.download_button.isEnabled()
    app.window.messages.show_message("the window still responds", "info")  # event loop is free
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=WAIT_MS)
    assert "cancelled" in dialog.progress_label.text()
    assert calls == [("base", "vitt", str(empty))]
    assert dialog.download_button.isEnabled() and not dialog.cancel_button.isVisible()
