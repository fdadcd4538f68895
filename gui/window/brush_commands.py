"""The Brush, Eraser, Clear strokes and Edit > Clean-up commands placed in the window's tool
group, toolbar and Edit menu (connected in :mod:`gui.control.wiring`)."""

from __future__ import annotations

from PySide6 import QtWidgets

DEFAULT_ISLAND_PIXELS = 100


def add_brush_commands(window) -> None:
    """Brush and Eraser join the tools (toolbar and Edit menu, before Pan); the Edit menu gets
    Clear strokes and a Clean-up submenu."""
    a = window.action_map
    tools = [a["tool_brush"], a["tool_eraser"]]
    for action in tools:
        window._tool_group.addAction(action)
    window.toolbar.insertActions(a["tool_pan"], tools)
    # (the menu kept when it was made: QAction.menu() gives a dead wrapper on PySide6 6.8)
    edit = window.menus["&Edit"]
    edit.insertActions(a["tool_pan"], tools)
    edit.addSeparator()
    edit.addActions([a["brush_bigger"], a["brush_smaller"], a["clear_strokes"]])
    window.cleanup_menu = edit.addMenu("Clean-&up")
    window.cleanup_menu.setObjectName("cleanupMenu")
    window.cleanup_menu.addActions([a["cleanup_fill_holes"], a["cleanup_islands"], a["cleanup_largest"]])


def ask_island_size(parent: QtWidgets.QWidget, default: int = DEFAULT_ISLAND_PIXELS) -> int | None:
    """The smallest part to keep, in pixels, asked in a dialog; None when cancelled."""
    value, ok = QtWidgets.QInputDialog.getInt(
        parent, "Remove islands", "Remove the mask's parts smaller than (pixels):", default, 1, 1_000_000_000, 10)
    return int(value) if ok else None
