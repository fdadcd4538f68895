"""Every command of the window with its shortcut, in one table.

The main window creates a QAction per entry; the Help dialog (F1) lists the same table, so the
shortcuts shown are always the ones that work. Single-letter shortcuts (A, D, R, F, H, M ...)
do not fire while typing in a text box: Qt gives printable keys to the focused line edit first.
A focused slider, spin box, combo box or list keeps PgUp/PgDn, Home/End and the arrows
(``gui.control.keyboard``).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6 import QtGui, QtWidgets


@dataclass(frozen=True)
class ActionSpec:
    name: str
    text: str
    shortcuts: tuple[str, ...] = ()
    tip: str = ""
    group: str = "General"
    checkable: bool = False
    checked: bool = False
    icon: str | None = None  # a QStyle.StandardPixmap name
    short: str | None = None  # toolbar label (defaults to ``text``)


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("open_images", "Open images…", ("Ctrl+O",), "Open image files", "Files",
               icon="SP_DialogOpenButton", short="Open"),
    ActionSpec("open_folder", "Open folder…", ("Ctrl+Shift+O",), "Open every image of a folder", "Files",
               icon="SP_DirOpenIcon", short="Folder"),
    ActionSpec("open_project", "Open project…", (), "Work on a project (e.g. from qmask batch): its images with their objects and runs", "Files"),
    ActionSpec("save", "Save project", ("Ctrl+S",), "Every change is already written; this also folds the "
               "journal into the project file",
               "Files", icon="SP_DialogSaveButton"),
    ActionSpec("export", "Export…", ("Ctrl+E",), "Export accepted masks: COCO JSON, PNG masks, overlays", "Files",
               short="Export"),
    ActionSpec("import_dataset", "Import dataset…", ("Ctrl+I",),
               "Add a COCO, YOLO, LabelMe or PNG-mask dataset's images and masks to the project, to correct them",
               "Files"),
    ActionSpec("quit", "Quit", ("Ctrl+Q",), "", "Files"),
    ActionSpec("prev_image", "Previous image", ("A", "PgUp"), "Previous image in the list", "Navigate",
               icon="SP_ArrowBack", short="Prev"),
    ActionSpec("next_image", "Next image", ("D", "PgDown"), "Next image in the list", "Navigate",
               icon="SP_ArrowForward", short="Next"),
    ActionSpec("ask", "Ask", ("Return", "Enter"), "Ask the question about this image; the keys go back to the image",
               "Question"),
    ActionSpec("focus_question", "Type a question", ("/", "Ctrl+L"), "Go to the question box (Esc: back to the "
               "image)", "Question"),
    ActionSpec("rerun_answer", "Re-run answer", ("Ctrl+R",),
               "New captions from the current fused map, and a new answer", "Question"),
    ActionSpec("cancel", "Cancel", ("Esc",), "Stop the running model call; an unanswered question is taken back "
               "(in the question box: back to the image)", "Question"),
    ActionSpec("undo", "Undo", ("Ctrl+Z",), "", "Edit", short="Undo"),
    ActionSpec("redo", "Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "", "Edit", short="Redo"),
    ActionSpec("tool_points", "Points tool", ("V",),
               "Click: positive point · right click or Shift+click: negative · click a point: remove · "
               "drag a point: move · Ctrl+drag: box", "Edit", checkable=True, checked=True, short="Points"),
    ActionSpec("tool_box", "Box tool", ("B",), "Drag a box around the object", "Edit", checkable=True, short="Box"),
    ActionSpec("tool_polygon", "Polygon tool", ("G",),
               "Edit the mask as polygons: drag a vertex · double-click an edge: add a vertex · right click "
               "a vertex (or click it, then Delete): delete it", "Edit", checkable=True, short="Polygon"),
    ActionSpec("tool_brush", "Brush tool", ("N",), "Drag: paint the mask with a round brush ([ and ]: size)", "Edit",
               checkable=True, short="Brush"),
    ActionSpec("tool_eraser", "Eraser tool", ("E",), "Drag: erase from the mask ([ and ]: size)", "Edit",
               checkable=True, short="Eraser"),
    ActionSpec("brush_bigger", "Bigger brush", ("]",), "", "Edit"),
    ActionSpec("brush_smaller", "Smaller brush", ("[",), "", "Edit"),
    ActionSpec("clear_strokes", "Clear strokes", ("Shift+Delete",),
               "Remove every brush and eraser stroke: the mask is the model's again", "Edit"),
    ActionSpec("cleanup_fill_holes", "Fill holes", (), "Fill every hole of the mask", "Edit"),
    ActionSpec("cleanup_islands", "Remove islands…", (), "Remove the mask's parts smaller than a number of pixels",
               "Edit"),
    ActionSpec("cleanup_largest", "Keep the largest part", (), "Keep only the mask's largest connected part", "Edit"),
    ActionSpec("tool_pan", "Pan tool", ("Shift+V",), "Drag to pan; clicks do not edit", "Edit", checkable=True,
               short="Pan"),
    ActionSpec("clear_points", "Clear points", ("Backspace",), "Remove every point and the box of the selected object",
               "Edit", short="Clear"),
    ActionSpec("reset_points", "Reset points", ("R",), "Back to the automatic points the selected object was "
               "proposed with", "Edit", short="Reset"),
    ActionSpec("accept", "Accept object", ("Space",), "Mark the selected object for export (toggle)", "Objects",
               checkable=True, short="Accept"),
    ActionSpec("accept_all", "Accept all objects", ("Shift+Space",), "Mark every object of this image for export",
               "Objects", short="Accept all"),
    ActionSpec("accept_all_next", "Accept all, next image", ("Shift+D",), "Mark every object of this image for "
               "export and go to the next image", "Objects"),
    ActionSpec("new_object", "New object", ("O",), "The next click, box or brush stroke starts a new object",
               "Objects", short="New object"),
    ActionSpec("delete_object", "Delete object", ("Delete",), "Delete the selected object(s) (a selected polygon "
               "vertex first, with the Polygon tool)", "Objects"),
    ActionSpec("keep_proposal", "Keep proposal", ("Y",), "Keep the selected proposal: asking again leaves it alone",
               "Objects"),
    ActionSpec("next_object", "Next object", ("J",), "Select the next object (drawing order, top first)", "Objects"),
    ActionSpec("prev_object", "Previous object", ("K",), "Select the previous object", "Objects"),
    ActionSpec("review_next", "Next object to review", ("Ctrl+J",), "Go to the object of the project that most "
               "needs a look (its review need: see the Objects panel), on whichever image it is", "Objects"),
    ActionSpec("pick_class", "Class…", ("L",), "Pick the selected object's class from the class list (type to "
               "search; a new name adds a class)", "Objects"),
    ActionSpec("classes", "Class list…", (), "Define the project's classes: add, rename, colours, or load a "
               "classes.txt, data.yaml or COCO file", "Objects"),
    *(ActionSpec(f"class_{k}", f"Class {k}", (str(k),), f"Give the selected object the class list's class {k}",
                 "Objects") for k in range(1, 10)),
    ActionSpec("fit", "Fit to window", ("F",), "Show the whole image", "View", short="Fit"),
    ActionSpec("zoom_in", "Zoom in", ("=", "+"), "", "View"),
    ActionSpec("zoom_out", "Zoom out", ("-",), "", "View"),
    ActionSpec("toggle_heat", "Heat map", ("H",), "Show the question's heat map", "View", checkable=True,
               checked=True, short="Heat"),
    ActionSpec("toggle_fused", "Fused map", ("U",), "Show the heat map fused with the mask (guides the captions)",
               "View", checkable=True, short="Fused"),
    ActionSpec("toggle_mask", "Mask", ("M",), "Show the mask", "View", checkable=True, checked=True, short="Mask"),
    ActionSpec("toggle_points", "Points", ("P",), "Show the prompt points", "View", checkable=True, checked=True),
    ActionSpec("next_colormap", "Next colour map", ("C",), "Cycle the heat map's colours", "View"),
    ActionSpec("more_opacity", "More heat opacity", ("}",), "", "View"),  # [ and ] size the brush
    ActionSpec("less_opacity", "Less heat opacity", ("{",), "", "View"),
    ActionSpec("load_models", "Load models", (), "Load the models again (after Esc stopped their loading, or a "
               "failed load); asking a question does it too", "Engine"),
    ActionSpec("models", "Models…", (), "See which models are installed, download or choose a folder", "Engine"),
    ActionSpec("encode_on_show", "Encode images when shown", (),
               "Run the vision encoders as soon as an image is shown, so that the question and the first "
               "click wait less (uses the CPU while you read; stops when you move on)", "Engine",
               checkable=True, checked=True),
    ActionSpec("help", "Keyboard shortcuts and help", ("F1",), "", "Help"),
)

MOUSE_GESTURES: tuple[tuple[str, str], ...] = (
    ("Left click (no object selected)", "start a new object there"),
    ("Left click", "add a positive point to the selected object (Points tool)"),
    ("Ctrl+click / Alt+click an object", "select it (or pick it in the Objects panel)"),
    ("Right click / Shift+click", "add a negative point"),
    ("Click on a point", "remove it"),
    ("Drag a point", "move it (the mask follows)"),
    ("Ctrl+drag / Box tool drag", "draw a box prompt"),
    ("Drag a polygon vertex (Polygon tool)", "move it; the mask follows on release"),
    ("Double-click a polygon edge", "add a vertex there"),
    ("Right click a polygon vertex", "delete it (a ring keeps 3)"),
    ("Drag with the Brush / Eraser tool", "paint / erase the mask (one undo step per stroke)"),
    ("Drag elsewhere", "pan"),
    ("Wheel", "zoom at the cursor"),
    ("Right drag", "zoom"),
    ("Hover a point", "number, kind and heat-map score"),
)


def spec(name: str) -> ActionSpec:
    for s in ACTIONS:
        if s.name == name:
            return s
    raise KeyError(name)


def create_actions(parent: QtWidgets.QWidget) -> dict[str, QtGui.QAction]:
    style = parent.style()
    actions: dict[str, QtGui.QAction] = {}
    for s in ACTIONS:
        action = QtGui.QAction(s.text, parent)
        action.setObjectName(f"action_{s.name}")
        if s.short:
            action.setIconText(s.short)
        if s.shortcuts:
            action.setShortcuts([QtGui.QKeySequence(k) for k in s.shortcuts])
        tip = s.tip or s.text
        if s.shortcuts:
            tip += f" ({' / '.join(s.shortcuts)})"
        action.setToolTip(tip)
        action.setStatusTip(s.tip)
        action.setCheckable(s.checkable)
        if s.checkable:
            action.setChecked(s.checked)
        if s.icon:
            action.setIcon(style.standardIcon(getattr(QtWidgets.QStyle.StandardPixmap, s.icon)))
        parent.addAction(action)  # shortcuts work wherever the focus is in the window
        actions[s.name] = action
    return actions
