"""Text that was cut (issue 25), checked at the window's default size: the Mask panel's summary
and its candidates' IoU labels, the export dialog's result (it overlapped the Folder row), the
models dialog's Where column. Reached with real keys and clicks."""

from __future__ import annotations

import pytest
from PySide6 import QtCore, QtWidgets
from PySide6.QtTest import QTest

from gui.window.main_window import DEFAULT_SIZE
from support.gui import WAIT_MS, harness_fixture, wait_shown, write_photo
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse

Key, Mod = QtCore.Qt.Key, QtCore.Qt.KeyboardModifier
WRAP = QtCore.Qt.TextFlag.TextWordWrap | QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def _app(harness, qtbot, tmp_path, n: int = 1):
    folder = tmp_path / "photos"
    folder.mkdir()
    for k in range(n):
        write_photo(folder / f"photo{k}.png", seed=k)
    app = harness.build([folder])
    app.window.resize(*DEFAULT_SIZE)
    wait_shown(qtbot, app)
    return app


def _ask(qtbot, app, question: str = "where are the discs?") -> None:
    canvas = app.window.canvas
    canvas.setFocus()
    QTest.keyClick(canvas, Key.Key_Slash)
    QTest.keyClicks(app.window.question_panel.edit, question)
    with qtbot.waitSignal(app.controller.ask_finished, timeout=WAIT_MS) as blocker:
        QTest.keyClick(app.window.question_panel.edit, Key.Key_Return)
    assert blocker.args[1], app.window.messages.history


def _settle(qtbot) -> None:
    QtWidgets.QApplication.processEvents()
    QTest.qWait(50)  # layout requests are posted events


def _text_fits(label: QtWidgets.QLabel) -> bool:
    """Every wrapped line of ``label``'s (plain) text lies inside it."""
    box = label.contentsRect()
    need = label.fontMetrics().boundingRect(box, WRAP, label.text())
    return need.height() <= box.height() and need.width() <= box.width()


def _mask_panel_fits(window, whole: bool = True) -> None:
    """The summary's every line and each candidate's IoU label are inside their widgets; with
    ``whole``, the dock shows all of the panel (it scrolls only when the window is too short)."""
    panel = window.candidates_panel
    assert panel.summary.text() and _text_fits(panel.summary), (panel.summary.text(), panel.summary.size())
    for button in panel.buttons:
        assert "IoU" in button.text() or "—" in button.text()
        # text under the icon: the button is as tall as icon and text need, as wide as the text
        assert button.height() >= button.sizeHint().height(), (button.text(), button.size(), button.sizeHint())
        assert button.fontMetrics().horizontalAdvance(button.text()) <= button.contentsRect().width()
    if whole:
        area = window.candidates_dock.widget()
        assert not area.verticalScrollBar().isVisible() and panel.height() <= area.viewport().height()


def test_the_mask_panel_shows_its_whole_summary_and_every_iou(harness, qtbot, tmp_path):
    app = _app(harness, qtbot, tmp_path)
    w = app.window
    panel = w.candidates_panel
    _settle(qtbot)
    _mask_panel_fits(w)  # nothing asked yet
    _ask(qtbot, app)
    _settle(qtbot)
    assert all("IoU" in b.text() for b in panel.buttons)
    _mask_panel_fits(w)  # points, and why fewer automatic points came
    QTest.keyClick(w.canvas, Key.Key_O)  # no object selected: the longest summary
    _settle(qtbot)
    assert panel.summary.text().startswith("No object selected")
    _mask_panel_fits(w)
    width = panel.width()
    w.resizeDocks([w.question_dock], [200], QtCore.Qt.Orientation.Horizontal)  # as narrow as it goes
    _settle(qtbot)
    assert panel.width() < width
    _mask_panel_fits(w, whole=False)
    w.resize(DEFAULT_SIZE[0], 600)  # a short window: the panel scrolls, nothing in it is squeezed
    _settle(qtbot)
    assert w.candidates_dock.height() < panel.height()
    _mask_panel_fits(w, whole=False)


def test_the_export_result_is_shown_whole_below_the_folder_row(harness, qtbot, tmp_path):
    app = _app(harness, qtbot, tmp_path, n=3)  # two images never opened: the result lists them, long
    w = app.window
    _ask(qtbot, app)
    QTest.keyClick(w.canvas, Key.Key_Space, Mod.ShiftModifier)  # accept every object
    QTest.keyClick(w, Key.Key_E, Mod.ControlModifier)
    dialog = app.files.export_dialog
    qtbot.waitExposed(dialog)
    dialog.folder.selectAll()
    QTest.keyClicks(dialog.folder, str(tmp_path / "export"))
    with qtbot.waitSignal(dialog.exported, timeout=WAIT_MS):
        QTest.mouseClick(dialog.export_button, QtCore.Qt.MouseButton.LeftButton)
    _settle(qtbot)
    status = dialog.status
    assert "Skipped 2" in status.text() and status.text().count("\n") >= 2
    assert _text_fits(status), (status.size(), status.text())
    browse = next(b for b in dialog.findChildren(QtWidgets.QPushButton) if b.text() == "Browse…")
    label = next(lab for lab in dialog.findChildren(QtWidgets.QLabel) if lab.text() == "Folder")
    for widget in (dialog.folder, browse, label):  # the Folder row
        assert not widget.geometry().intersects(status.geometry()), widget
    assert status.geometry().bottom() < dialog.buttons.geometry().top()
    dialog.close()


def test_the_models_dialog_shows_every_column_whole(harness, qtbot, tmp_path):
    app = _app(harness, qtbot, tmp_path)
    app.window.action_map["models"].trigger()  # Engine > Models…
    dialog = app.files.models_dialog
    qtbot.waitExposed(dialog)
    _settle(qtbot)
    table, header = dialog.table, dialog.table.horizontalHeader()
    assert not table.wordWrap()  # a path is one line, never wrapped into a row too short for two
    for column in range(table.columnCount()):
        assert header.sectionSize(column) >= max(table.sizeHintForColumn(column), header.sectionSizeHint(column))
        for row in range(table.rowCount()):
            item = table.item(row, column)
            assert item.toolTip() == item.text()
    screen = dialog.screen().availableGeometry().width()
    margins = dialog.layout().contentsMargins()
    want = header.length() + 2 * table.frameWidth() + margins.left() + margins.right()
    assert dialog.width() >= min(want, screen)  # all of the table, where the screen has room
    dialog.close()
