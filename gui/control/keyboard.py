"""Where the keyboard goes in the main window.

- A focused slider, spin box, combo box or list keeps the keys it moves with (PgUp/PgDn,
  Home/End, the arrows): the window's shortcuts on those keys (PgUp/PgDn: previous/next image)
  act only elsewhere. Without this, PgUp on the fusion slider switched the image instead of
  moving the slider.
- Asking a question (Enter or Ask) hands the keyboard back to the canvas, so Space, D and the
  other single-letter keys act on the image instead of typing into the question.
- ``/`` or Ctrl+L goes to the question box (its text selected: typing replaces it, Enter asks it
  again); Esc there goes back to the canvas, and Esc elsewhere cancels the running model call.
- Tab goes question box -> Ask -> objects choice -> canvas -> the panels, left, then right; a
  table does not keep Tab for moving between its cells (the Objects table held it for good).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6 import QtCore, QtWidgets

Key = QtCore.Qt.Key

# The keys these controls move with. A shortcut on one of them is refused while such a control
# has the focus (Qt asks the focus widget first with a ShortcutOverride event; accepting it
# sends the key to the widget instead).
CONTROL_KEYS = frozenset({Key.Key_PageUp, Key.Key_PageDown, Key.Key_Home, Key.Key_End,
                          Key.Key_Up, Key.Key_Down, Key.Key_Left, Key.Key_Right})
KEY_CONTROLS = (QtWidgets.QAbstractSlider, QtWidgets.QAbstractSpinBox, QtWidgets.QComboBox,
                QtWidgets.QAbstractItemView)


class ControlKeys(QtCore.QObject):
    """An event filter for the controls of :data:`KEY_CONTROLS`: keeps :data:`CONTROL_KEYS`
    (without Ctrl, Alt or Meta) for the control."""

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() == QtCore.QEvent.Type.ShortcutOverride and event.key() in CONTROL_KEYS:
            held = event.modifiers() & ~(QtCore.Qt.KeyboardModifier.KeypadModifier
                                         | QtCore.Qt.KeyboardModifier.ShiftModifier)
            if held == QtCore.Qt.KeyboardModifier.NoModifier:
                event.accept()
                return True
        return False


class KeyboardFocus(QtCore.QObject):
    """The keyboard paths above for ``window`` (a :class:`~gui.window.main_window.MainWindow`);
    ``cancel`` is what Esc does outside the question box."""

    def __init__(self, window, cancel: Callable[[], None]) -> None:
        super().__init__(window)
        self.window = window
        self.cancel = cancel
        self.control_keys = ControlKeys(self)
        for widget in window.findChildren(QtWidgets.QWidget):
            if isinstance(widget, KEY_CONTROLS):
                widget.installEventFilter(self.control_keys)
            if isinstance(widget, QtWidgets.QAbstractItemView):
                widget.setTabKeyNavigation(False)
        set_tab_order(window)
        window.canvas.setFocus(QtCore.Qt.FocusReason.OtherFocusReason)  # the window opens on the image

    def to_canvas(self) -> None:
        self.window.canvas.setFocus(QtCore.Qt.FocusReason.OtherFocusReason)

    def to_question(self) -> None:
        edit = self.window.question_panel.edit
        edit.setFocus(QtCore.Qt.FocusReason.ShortcutFocusReason)
        edit.selectAll()

    def escape(self) -> None:
        if QtWidgets.QApplication.focusWidget() is self.window.question_panel.edit:
            self.to_canvas()
        else:
            self.cancel()


def set_tab_order(window) -> None:
    """Question box, Ask, the objects choice, the canvas, then the docks: images, objects (left),
    mask, answer (right)."""
    q = window.question_panel
    chain = [q.edit, q.ask_button, q.instances_box, window.canvas]
    for panel in (window.image_list, window.objects_panel, window.candidates_panel, window.answer_panel):
        chain += [w for w in _focus_chain(panel) if w not in chain]
    for first, second in zip(chain, chain[1:]):
        QtWidgets.QWidget.setTabOrder(first, second)


def _focus_chain(panel: QtWidgets.QWidget) -> list[QtWidgets.QWidget]:
    """``panel``'s widgets that Tab can reach, in their current order."""
    out: list[QtWidgets.QWidget] = []
    widget = panel.nextInFocusChain()
    while widget is not panel and widget not in out:
        if panel.isAncestorOf(widget) and widget.focusPolicy() & QtCore.Qt.FocusPolicy.TabFocus:
            out.append(widget)
        widget = widget.nextInFocusChain()
    return out
