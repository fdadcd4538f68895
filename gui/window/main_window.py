"""The main window: composition only (widgets, docks, toolbar, menus). Behaviour lives in the
controller (``gui.control.controller``) and the presenter (``gui.control.presenter``).

Layout: the canvas fills the centre, a message banner floating over its top edge; the image list is docked left;
question, answer and mask candidates are docked right; files, tools, undo and export in the
first tool bar row, what the canvas shows in the second; engine state and progress with Cancel
in the status bar.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from gui.canvas.canvas import Canvas
from gui.canvas.layers import HEATMAP_COLORMAPS
from gui.canvas.polygon_editor import DEFAULT_TOLERANCE_PX
from gui.window.actions import create_actions
from gui.window.brush_commands import add_brush_commands
from gui.window.message_area import MessageArea
from gui.window.panels.answer_panel import AnswerPanel
from gui.window.panels.candidates_panel import CandidatesPanel
from gui.window.panels.image_list import ImageListPanel
from gui.window.panels.objects_panel import ObjectsPanel
from gui.window.panels.question_panel import QuestionPanel
from gui.window.status_bar import EngineStatusBar

DEFAULT_SIZE = (1440, 900)  # before the preferences' layout applies

STYLE = """
QMainWindow, QDockWidget { font-size: 10pt; }
QDockWidget::title { padding: 4px 6px; background: #e4e7eb; color: #30343a; font-weight: bold; }
#answerLabel { color: #1d6fd6; padding: 2px 0; }
#staleLabel { color: #b8860b; }
#previousAnswer { color: #6b7078; }
#sectionLabel { color: #6b7078; font-weight: bold; margin-top: 6px; }
#askButton { font-weight: bold; padding: 4px 14px; }
#tokenButton { padding: 2px 8px; border: 1px solid #b9bec6; border-radius: 9px; background: #f3f5f8; }
#tokenButton:checked { background: #1d6fd6; color: white; border-color: #1d6fd6; }
#candidateButton:checked { border: 2px solid #00bef0; border-radius: 4px; background: #e3f6fc; }
QToolBar { spacing: 3px; }
"""


class MainWindow(QtWidgets.QMainWindow):
    """Widgets only; ``closing`` lets the app stop the engine thread before the window goes."""

    closing = QtCore.Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("QMask")
        self.setObjectName("qmaskMainWindow")
        self.setStyleSheet(STYLE)
        self.resize(*DEFAULT_SIZE)
        self.setDockOptions(QtWidgets.QMainWindow.DockOption.AnimatedDocks
                            | QtWidgets.QMainWindow.DockOption.AllowTabbedDocks)

        # centre: the message banner floats over the canvas's top edge (one grid cell for both), so
        # a message coming or going never resizes the canvas: the image stays put under the cursor
        self.canvas = Canvas()
        self.messages = MessageArea()
        centre = QtWidgets.QWidget()
        centre_layout = QtWidgets.QGridLayout(centre)
        centre_layout.setContentsMargins(0, 0, 0, 0)
        centre_layout.addWidget(self.canvas, 0, 0)
        centre_layout.addWidget(self.messages, 0, 0, QtCore.Qt.AlignmentFlag.AlignTop)
        self.messages.raise_()
        self.setCentralWidget(centre)

        # docks
        self.image_list = ImageListPanel()
        self.question_panel = QuestionPanel()
        self.answer_panel = AnswerPanel()
        self.candidates_panel = CandidatesPanel()
        self.objects_panel = ObjectsPanel()
        self.images_dock = self._dock("Images", self.image_list, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea)
        self.objects_dock = self._dock("Objects", self.objects_panel, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea)
        self.question_dock = self._dock("Question", self.question_panel, QtCore.Qt.DockWidgetArea.RightDockWidgetArea)
        self.candidates_dock = self._dock("Mask", _scrolling(self.candidates_panel),
                                          QtCore.Qt.DockWidgetArea.RightDockWidgetArea)
        self.answer_dock = self._dock("Answer", self.answer_panel, QtCore.Qt.DockWidgetArea.RightDockWidgetArea)
        self.resizeDocks([self.images_dock], [260], QtCore.Qt.Orientation.Horizontal)
        self.resizeDocks([self.images_dock, self.objects_dock], [380, 420], QtCore.Qt.Orientation.Vertical)
        self.resizeDocks([self.question_dock], [380], QtCore.Qt.Orientation.Horizontal)
        self.resizeDocks([self.question_dock, self.candidates_dock, self.answer_dock], [80, 320, 430],
                         QtCore.Qt.Orientation.Vertical)

        self.status = EngineStatusBar()
        self.setStatusBar(self.status)

        self.action_map = create_actions(self)
        self._tool_group = QtGui.QActionGroup(self)
        for name in ("tool_points", "tool_box", "tool_pan", "tool_polygon"):
            self._tool_group.addAction(self.action_map[name])
        self.tolerance_box = QtWidgets.QDoubleSpinBox()  # the Polygon tool's simplification
        self.tolerance_box.setObjectName("toleranceBox")
        self.tolerance_box.setRange(0.0, 50.0)
        self.tolerance_box.setSingleStep(0.5)
        self.tolerance_box.setDecimals(1)
        self.tolerance_box.setValue(DEFAULT_TOLERANCE_PX)
        self.tolerance_box.setSuffix(" px")
        self.tolerance_box.setPrefix("simplify ")
        self.tolerance_box.setToolTip("Polygon tolerance: how far (image pixels) a simplified ring may stray from "
                                      "the mask's edge; 0 keeps every pixel corner")
        self.opacity_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.opacity_slider.setObjectName("opacitySlider")
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(60)
        self.opacity_slider.setFixedWidth(110)
        self.opacity_slider.setToolTip("Heat-map opacity ({ and })")
        self.colormap_box = QtWidgets.QComboBox()
        self.colormap_box.setObjectName("colormapBox")
        self.colormap_box.addItems(list(HEATMAP_COLORMAPS))
        self.colormap_box.setToolTip("Heat-map colours (C)")
        self._build_toolbar()
        self._build_menus()
        add_brush_commands(self)

    def _dock(self, title: str, widget: QtWidgets.QWidget, area) -> QtWidgets.QDockWidget:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower()}")
        dock.setWidget(widget)
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _build_toolbar(self) -> None:
        a = self.action_map
        bar = self.addToolBar("Tools")
        bar.setObjectName("toolsToolbar")
        bar.setMovable(False)
        bar.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for name in ("open_images", "prev_image", "next_image"):
            bar.addAction(a[name])
        bar.addSeparator()
        for name in ("tool_points", "tool_box", "tool_pan", "tool_polygon"):
            bar.addAction(a[name])
        self.tolerance_action = bar.addWidget(self.tolerance_box)
        for name in ("clear_points", "reset_points"):
            bar.addAction(a[name])
        bar.addSeparator()
        for name in ("undo", "redo"):
            bar.addAction(a[name])
        bar.addSeparator()
        for name in ("new_object", "accept"):
            bar.addAction(a[name])
        bar.addSeparator()
        bar.addAction(a["export"])
        self.toolbar = bar
        # What is shown, on a row of its own: in one row everything took ~1490 px with the Polygon
        # tool's tolerance, and the last controls went into the overflow menu on a 1300 px window.
        self.addToolBarBreak()
        view = self.addToolBar("View")
        view.setObjectName("viewToolbar")
        view.setMovable(False)
        view.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for name in ("fit", "toggle_heat", "toggle_fused", "toggle_mask"):
            view.addAction(a[name])
        view.addWidget(QtWidgets.QLabel(" heat opacity "))
        view.addWidget(self.opacity_slider)
        view.addWidget(self.colormap_box)
        self.view_toolbar = view

    def _build_menus(self) -> None:
        a = self.action_map
        menus = {
            "&File": ["open_images", "open_folder", "open_project", None, "save", "export", None, "quit"],
            "&Edit": ["undo", "redo", None, "tool_points", "tool_box", "tool_pan", "tool_polygon", None, "clear_points",
                      "reset_points"],
            "&Objects": ["new_object", "delete_object", "keep_proposal", None, "accept", "accept_all", "accept_all_next",
                         None, "next_object", "prev_object", "review_next", None, "pick_class", "classes",
                         *(f"class_{k}" for k in range(1, 10))],
            "&View": ["fit", "zoom_in", "zoom_out", None, "toggle_heat", "toggle_fused", "toggle_mask",
                      "toggle_points", "next_colormap", "more_opacity", "less_opacity"],
            "&Image": ["prev_image", "next_image", None, "focus_question", "ask", "rerun_answer", "cancel"],
            "E&ngine": ["load_models", "models", None, "encode_on_show"],
            "&Help": ["help"],
        }
        self.menus: dict[str, QtWidgets.QMenu] = {}  # by title, for modules that add to them
        for title, names in menus.items():
            menu = self.menus[title] = self.menuBar().addMenu(title)
            for name in names:
                if name is None:
                    menu.addSeparator()
                else:
                    menu.addAction(a[name])

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 - Qt override
        for dialog in self.findChildren(QtWidgets.QDialog):
            dialog.close()  # their background tasks stop with them (see the dialogs' done())
        self.closing.emit()
        super().closeEvent(event)


def _scrolling(panel: QtWidgets.QWidget) -> QtWidgets.QScrollArea:
    """``panel`` in a scroll area. A dock area does not lay a panel out at the height its wrapped
    text needs at the dock's width: the Mask panel's summary was cut mid-sentence and its
    candidates' IoU labels were pushed out of their buttons. A scroll area does (it scrolls when
    the dock is shorter), and the window's minimum height does not grow with that text."""
    area = QtWidgets.QScrollArea()
    area.setWidget(panel)
    area.setWidgetResizable(True)
    area.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
    area.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)  # Tab goes to the panel's controls, not the frame
    area.setMinimumWidth(panel.minimumSizeHint().width())  # as narrow as the panel's controls allow, no less
    return area
