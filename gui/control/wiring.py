"""Every connection from the window to what acts on it, in one place: which method a key, a menu
command, a panel's signal, a canvas gesture or an engine reply reaches.

The order of the connections is kept where it matters: the controller sets a tool before the
brush hears of it; the objects view shows a new image before the controller asks for its pixels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gui.canvas.point_editing import Tool
from gui.window.brush_commands import ask_island_size

if TYPE_CHECKING:
    from gui.control.controller import Controller
    from gui.control.file_actions import FileActions


def connect_controller(controller: "Controller") -> None:
    """The window's actions, panels and canvas, and the engine client's signals, to ``controller``,
    its edits (``controller.edits``), its objects view and the engine's replies."""
    _connect_objects(controller)
    _connect_engine(controller)
    _connect_panels(controller)
    _connect_actions(controller)
    _connect_polygons(controller)
    _connect_keyboard(controller)
    _connect_brush(controller)


def connect_file_actions(files: "FileActions") -> None:
    """File > Open…, Export…, Import…, Engine > Models… and Help."""
    a = files.window.action_map
    a["open_images"].triggered.connect(files.open_images)
    a["open_folder"].triggered.connect(files.open_folder)
    a["open_project"].triggered.connect(files.open_project)
    a["export"].triggered.connect(files.show_export)
    a["import_dataset"].triggered.connect(files.show_import)
    a["models"].triggered.connect(files.show_models)
    a["help"].triggered.connect(files.show_help)
    files.window.image_list.open_files_requested.connect(files.open_images)
    files.window.image_list.open_folder_requested.connect(files.open_folder)


def _connect_objects(controller: "Controller") -> None:
    view, edits = controller.objects, controller.edits
    p, a = controller.window.objects_panel, controller.window.action_map
    p.current_changed.connect(view.on_panel_current)
    p.hidden_toggled.connect(view.on_hidden)
    p.accept_toggled.connect(lambda uid, on: edits.set_accepted(on, uid))
    p.delete_requested.connect(edits.delete_objects)
    p.keep_requested.connect(edits.keep_objects)
    p.merge_requested.connect(edits.merge_objects)
    p.order_requested.connect(edits.move_object)
    p.class_requested.connect(view.pick_class)
    p.new_object_requested.connect(edits.new_object)
    for k in range(1, 10):
        a[f"class_{k}"].triggered.connect(lambda _=False, k=k: view.class_key(k))
    a["pick_class"].triggered.connect(lambda: view.pick_class(view.selected_uids()))
    a["classes"].triggered.connect(view.edit_classes)
    a["next_object"].triggered.connect(lambda: view.step(+1))
    a["prev_object"].triggered.connect(lambda: view.step(-1))
    a["review_next"].triggered.connect(view.review_next)
    controller.workspace.current_changed.connect(view.show)
    controller.workspace.classes_changed.connect(view.on_classes)
    controller.window.canvas.editor.select_requested.connect(view.select_at)


def _connect_engine(controller: "Controller") -> None:
    c, w, replies = controller.client, controller.window, controller.replies
    c.reply.connect(replies.on_reply)
    c.progress.connect(replies.on_progress)
    c.failed.connect(replies.on_failed)
    c.cancelled.connect(replies.on_cancelled)
    c.finished.connect(replies.on_finished)
    c.busy_changed.connect(w.status.set_busy)  # progress and Cancel, background work too
    c.user_busy_changed.connect(w.answer_panel.set_busy)  # never greyed for work the user did not ask for
    w.canvas.interacting.connect(c.note_input)  # (gui.engine_thread.input_priority)
    w.status.cancel_requested.connect(controller.cancel)


def _connect_panels(controller: "Controller") -> None:
    w, edits = controller.window, controller.edits
    w.canvas.editor.edited.connect(edits.on_edited)
    w.canvas.editor.preview.connect(edits.on_preview)
    w.canvas.cursor_moved.connect(w.status.set_cursor)
    w.question_panel.ask_requested.connect(controller.ask)
    w.question_panel.instances_changed.connect(lambda value: setattr(controller, "instances", value))
    w.answer_panel.alpha_changed.connect(edits.change_alpha)
    w.answer_panel.rerun_requested.connect(controller.rerun_answer)
    w.answer_panel.token_selected.connect(controller.presenter.select_token)
    w.candidates_panel.chosen.connect(edits.choose_candidate)
    w.candidates_panel.class_chosen.connect(lambda name: edits.change_category(name or None))
    w.candidates_panel.accept_toggled.connect(edits.set_accepted)
    w.image_list.current_index_changed.connect(controller.workspace.set_index)
    w.image_list.sort_requested.connect(controller.workspace.sort)
    controller.workspace.current_changed.connect(controller.on_current)
    controller.workspace.save_failed.connect(controller.show_error)
    w.opacity_slider.valueChanged.connect(controller.apply_style)
    w.colormap_box.currentTextChanged.connect(controller.apply_style)


def _connect_actions(controller: "Controller") -> None:
    w, a, edits, ws = controller.window, controller.window.action_map, controller.edits, controller.workspace
    undo = ws.undo_group
    a["undo"].triggered.connect(undo.undo)
    a["redo"].triggered.connect(undo.redo)
    undo.canUndoChanged.connect(a["undo"].setEnabled)
    undo.canRedoChanged.connect(a["redo"].setEnabled)
    undo.undoTextChanged.connect(controller.on_undo_text)
    undo.redoTextChanged.connect(controller.on_redo_text)
    a["undo"].setEnabled(False)
    a["redo"].setEnabled(False)

    a["prev_image"].triggered.connect(lambda: ws.step(-1))
    a["next_image"].triggered.connect(lambda: ws.step(+1))
    a["ask"].triggered.connect(controller.on_ask_shortcut)
    a["rerun_answer"].triggered.connect(controller.rerun_answer)
    a["load_models"].triggered.connect(controller.load_models)
    a["load_models"].setEnabled(False)  # (loading at start; enabled when a load is cancelled or fails)
    a["encode_on_show"].toggled.connect(controller.set_encode_on_show)
    a["clear_points"].triggered.connect(edits.clear_points)
    a["reset_points"].triggered.connect(edits.reset_points)
    a["accept"].triggered.connect(lambda checked: edits.set_accepted(checked))
    a["accept_all"].triggered.connect(edits.accept_all)
    a["accept_all_next"].triggered.connect(edits.accept_all_and_next)
    a["new_object"].triggered.connect(edits.new_object)
    a["delete_object"].triggered.connect(controller.delete_selected)
    a["keep_proposal"].triggered.connect(lambda: edits.keep_objects(controller.objects.selected_uids()))
    a["fit"].triggered.connect(w.canvas.fit)
    a["zoom_in"].triggered.connect(lambda: w.canvas.zoom(1.25))
    a["zoom_out"].triggered.connect(lambda: w.canvas.zoom(0.8))
    a["tool_points"].triggered.connect(lambda: edits.set_tool(Tool.POINTS))
    a["tool_box"].triggered.connect(lambda: edits.set_tool(Tool.BOX))
    a["tool_pan"].triggered.connect(lambda: edits.set_tool(Tool.PAN))
    a["save"].triggered.connect(controller.save)
    a["quit"].triggered.connect(w.close)
    for name in ("toggle_heat", "toggle_fused", "toggle_mask", "toggle_points"):
        a[name].toggled.connect(controller.apply_style)
    a["next_colormap"].triggered.connect(controller.next_colormap)
    a["more_opacity"].triggered.connect(lambda: w.opacity_slider.setValue(w.opacity_slider.value() + 10))
    a["less_opacity"].triggered.connect(lambda: w.opacity_slider.setValue(w.opacity_slider.value() - 10))


def _connect_polygons(controller: "Controller") -> None:
    """The Polygon tool, and the stroke stager's results."""
    w, edits = controller.window, controller.edits
    polygons = w.canvas.polygons
    polygons.edited.connect(edits.replace_mask)
    polygons.refused.connect(lambda text: controller.show_message(text, "warning"))
    polygons.noted.connect(lambda text: controller.show_message(text, "info"))
    w.tolerance_box.valueChanged.connect(polygons.set_tolerance)
    w.action_map["tool_polygon"].triggered.connect(lambda: edits.set_tool(Tool.POLYGON))
    w.tolerance_action.setVisible(False)
    w.closing.connect(polygons.wait)  # a trace still running ends before the window goes
    controller.strokes.staged.connect(edits.push_stroke)
    controller.strokes.failed.connect(edits.stroke_failed)
    w.closing.connect(controller.strokes.shutdown)  # (a stroke being worked out ends first)


def _connect_keyboard(controller: "Controller") -> None:
    """`/` or Ctrl+L to the question box, Esc, and the keys back to the image after asking
    (:mod:`gui.control.keyboard`)."""
    keys, w = controller.keyboard, controller.window
    w.action_map["focus_question"].triggered.connect(keys.to_question)
    w.action_map["cancel"].triggered.connect(keys.escape)
    w.question_panel.ask_requested.connect(lambda _question: keys.to_canvas())


def _connect_brush(controller: "Controller") -> None:
    """Brush, Eraser, Clear strokes and Edit > Clean-up, to the edits and the canvas' brush."""
    w, edits = controller.window, controller.edits
    a, brush = w.action_map, w.canvas.brush
    a["tool_brush"].triggered.connect(lambda: edits.set_tool(Tool.BRUSH))
    a["tool_eraser"].triggered.connect(lambda: edits.set_tool(Tool.ERASER))

    def show_radius() -> None:  # a size means something only with a tool that paints
        w.status.set_brush(brush.radius if w.canvas.editor.tool in (Tool.BRUSH, Tool.ERASER) else None)

    for name, action in a.items():
        if name.startswith("tool_"):
            action.triggered.connect(brush.tool_changed)  # after the edits set the tool
            action.triggered.connect(show_radius)
    a["brush_bigger"].triggered.connect(brush.grow)
    a["brush_smaller"].triggered.connect(brush.shrink)
    brush.radius_changed.connect(show_radius)
    brush.stroke_finished.connect(edits.paint_stroke)
    a["clear_strokes"].triggered.connect(edits.clear_strokes)
    a["cleanup_fill_holes"].triggered.connect(lambda: edits.clean_up("fill_holes"))
    a["cleanup_largest"].triggered.connect(lambda: edits.clean_up("largest"))

    def remove_islands() -> None:
        size = ask_island_size(w)
        if size is not None:
            edits.clean_up("islands", size)
    a["cleanup_islands"].triggered.connect(remove_islands)
