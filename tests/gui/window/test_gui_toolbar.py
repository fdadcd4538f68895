"""The main window's tool bars at the harness' 1200 x 800 (narrower than the default window):
every control is on screen, none in the overflow (>>) menu, with the Polygon tool's tolerance
box shown too. A screenshot goes to /tmp/s8/toolbar.png (looked at by hand)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6 import QtCore, QtWidgets
from PySide6.QtTest import QTest

from support.gui import WAIT_MS, harness_fixture, write_photo, wait_shown
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def hidden_controls(bar: QtWidgets.QToolBar) -> list[str]:
    """The bar's controls that are not on screen (in the overflow menu, or cut off)."""
    out = []
    for action in bar.actions():
        if action.isSeparator() or not action.isVisible():
            continue
        widget = bar.widgetForAction(action)
        shown = widget is not None and widget.isVisible() and bar.rect().contains(widget.geometry())
        if not shown:
            out.append(action.iconText() or action.objectName() or type(widget).__name__)
    return out


def test_every_tool_bar_control_is_shown_at_1200_pixels_with_the_polygon_tool(harness, qtbot, tmp_path):
    app = harness.build([write_photo(tmp_path / "photo.png")])
    wait_shown(qtbot, app)
    w = app.window
    assert w.width() == 1200
    QTest.keyClick(w.canvas, QtCore.Qt.Key.Key_G)  # the Polygon tool: its tolerance box joins the tools
    assert w.action_map["tool_polygon"].isChecked() and w.tolerance_action.isVisible()
    qtbot.waitUntil(w.tolerance_box.isVisible, timeout=WAIT_MS)  # (the bar lays it out when it next can)
    bars = [bar for bar in w.findChildren(QtWidgets.QToolBar) if bar.isVisible()]
    assert len(bars) == 2
    for bar in bars:
        qtbot.waitUntil(lambda: bar.width() > 0, timeout=WAIT_MS)
        assert hidden_controls(bar) == [], bar.objectName()
        extension = bar.findChild(QtWidgets.QToolButton, "qt_toolbar_ext_button")
        assert extension is None or not extension.isVisible()
    shown = {bar.widgetForAction(a) for bar in bars for a in bar.actions()}
    for control in (w.opacity_slider, w.colormap_box, w.tolerance_box):
        assert control in shown
    for name in ("export", "accept", "undo", "tool_brush", "tool_eraser", "toggle_mask", "fit"):
        assert any(w.action_map[name] in bar.actions() for bar in bars), name
    shots = Path("/tmp/s8")
    shots.mkdir(parents=True, exist_ok=True)
    assert w.grab().save(str(shots / "toolbar.png"))
