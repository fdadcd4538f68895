"""File > Import dataset…: a YOLO dataset read off the GUI thread, written into the window's
project, its images opened; bad input says where, and writes nothing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.project import Project
from support.gui import WAIT_MS, harness_fixture
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def _yolo(root, rows):
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    Image.fromarray(np.full((30, 40, 3), 120, np.uint8)).save(root / "images" / "street.png")
    (root / "labels" / "street.txt").write_text(rows)
    (root / "data.yaml").write_text("train: images\nval: images\nnames: [car, tree]\n")


def test_import_dialog_adds_a_yolo_dataset_and_opens_its_images(harness, qtbot, tmp_path):
    root = tmp_path / "ds"
    _yolo(root, "1 0.1 0.1 0.5 0.1 0.5 0.5 0.1 0.5\n")
    project_file = tmp_path / "work.qmask"
    app = harness.build([], project=project_file, start=False)
    app.start(check_models=False)
    app.window.action_map["import_dataset"].trigger()
    dialog = app.files.import_dialog
    assert dialog is not None and dialog.isVisible() and not dialog.isModal()
    dialog.source.setText(str(root / "data.yaml"))
    with qtbot.waitSignal(dialog.imported, timeout=WAIT_MS) as blocker:
        qtbot.waitUntil(dialog.import_button.isEnabled)  # greyed until the last run's thread is over
        dialog.import_button.click()
    report = blocker.args[0]
    assert report.images == 1 and report.annotations == 1 and "Imported 1 annotation" in dialog.status.text()
    qtbot.waitUntil(lambda: app.workspace.find(root / "images" / "street.png") is not None, timeout=WAIT_MS)
    app.workspace.drain()
    with Project.open(project_file) as p:
        rec = p.find_image(root / "images" / "street.png")
        obj, = rec.objects
        assert obj.category == "tree" and obj.mask().sum() == 17 * 13  # x 4..20, y 3..15, boundary included
    # a bad row: the file and line are named, nothing more is written
    (root / "labels" / "street.txt").write_text("1 0.1 0.1 0.5 0.1 0.5 0.5 0.1 0.5\n7 0.1 0.1 0.2 0.1 0.2 0.2\n")
    with qtbot.waitSignal(dialog.import_failed, timeout=WAIT_MS) as blocker:
        qtbot.waitUntil(dialog.import_button.isEnabled)  # greyed until the last run's thread is over
        dialog.import_button.click()
    assert "street.txt:2" in blocker.args[0] and "class 7" in blocker.args[0]
    qtbot.waitUntil(lambda: dialog.task is None, timeout=WAIT_MS)
    app.workspace.drain()
    with Project.open(project_file) as p:
        assert sum(len(i.objects) for i in p.iter_images()) == 1
    dialog.close()
