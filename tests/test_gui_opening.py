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
from gui_support import WAIT_MS, harness_fixture, wait_shown, write_photo
from gui_support import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse

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
