"""The Brush, Eraser, Clear strokes and Edit > Clean-up commands: placed in the window's tool
group, toolbar and Edit menu, and connected to the controller's intents
(:mod:`gui.edit_intents`) and the canvas' brush (:mod:`gui.brush`)."""

from __future__ import annotations

from PySide6 import QtWidgets

from .point_editing import Tool

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


def connect_brush(controller) -> None:
    """Wire the commands to the controller's intents and the canvas' brush."""
    window = controller.window
    a, brush = window.action_map, window.canvas.brush
    a["tool_brush"].triggered.connect(lambda: controller.set_tool(Tool.BRUSH))
    a["tool_eraser"].triggered.connect(lambda: controller.set_tool(Tool.ERASER))
    def show_radius() -> None:  # a size means something only with a tool that paints
        window.status.set_brush(brush.radius if window.canvas.editor.tool in (Tool.BRUSH, Tool.ERASER) else None)

    for name, action in a.items():
        if name.startswith("tool_"):
            action.triggered.connect(brush.tool_changed)  # after the controller set the tool
            action.triggered.connect(show_radius)
    a["brush_bigger"].triggered.connect(brush.grow)
    a["brush_smaller"].triggered.connect(brush.shrink)
    brush.radius_changed.connect(show_radius)
    brush.stroke_finished.connect(controller.paint_stroke)
    a["clear_strokes"].triggered.connect(controller.clear_strokes)
    a["cleanup_fill_holes"].triggered.connect(lambda: controller.clean_up("fill_holes"))
    a["cleanup_largest"].triggered.connect(lambda: controller.clean_up("largest"))

    def remove_islands() -> None:
        size = ask_island_size(window)
        if size is not None:
            controller.clean_up("islands", size)
    a["cleanup_islands"].triggered.connect(remove_islands)
