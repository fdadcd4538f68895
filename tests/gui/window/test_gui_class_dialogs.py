"""The class picker and the classes dialog (gui/window/dialogs/class_picker.py, classes_dialog.py),
driven non-modally with real key events: filter as you type, Enter, digits, Esc, a new class;
add, rename (refused when taken), recolour and load classes, reported as operations."""

from __future__ import annotations

import json

from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtTest import QTest

from engine.project.records import Category
from gui.window.dialogs.class_picker import ClassPicker
from gui.window.dialogs.classes_dialog import ClassChanges, ClassesDialog
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse

Key = QtCore.Qt.Key
CLASSES = [Category(3, "dog"), Category(1, "person"), Category(2, "hot dog", (10, 20, 30)), Category(4, "Cat")]


def picker(qtbot, current=None, classes=CLASSES) -> ClassPicker:
    dialog = ClassPicker(classes, current)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.activateWindow()
    dialog.filter_edit.setFocus()
    return dialog


def test_the_picker_lists_classes_by_id_numbered_and_enter_keeps_the_current(qtbot):
    d = picker(qtbot, current="dog")
    assert d.visible_names() == ["person", "hot dog", "dog", "Cat"]
    assert d.list.item(0).text().startswith("1") and d.list.item(3).text().startswith("4")
    QTest.keyClick(d.filter_edit, Key.Key_Return)
    assert d.result() == QtWidgets.QDialog.DialogCode.Accepted and d.picked() == "dog" and not d.is_new


def test_typing_narrows_the_list_and_enter_picks_the_first_match(qtbot):
    d = picker(qtbot)
    QTest.keyClicks(d.filter_edit, "DO")
    assert d.visible_names() == ["hot dog", "dog"]  # case-insensitive substring
    assert highlighted(d) == "hot dog" and not d.new_item.isHidden()  # the first match; "DO" is new
    QTest.keyClicks(d.filter_edit, "g")
    assert highlighted(d) == "dog" and d.new_item.isHidden()  # a class of that very name comes first
    QTest.keyClick(d.filter_edit, Key.Key_Backspace)
    QTest.keyClick(d.filter_edit, Key.Key_Return)
    assert d.picked() == "hot dog" and not d.is_new


def highlighted(d: ClassPicker) -> str | None:
    item = d.list.currentItem()
    return None if item is None else item.data(QtCore.Qt.ItemDataRole.UserRole)


def test_up_down_move_and_enter_picks_the_highlighted_one(qtbot):
    d = picker(qtbot)
    QTest.keyClicks(d.filter_edit, "o")
    assert d.visible_names() == ["person", "hot dog", "dog"] and highlighted(d) == "person"
    for key, expected in ((Key.Key_Down, "hot dog"), (Key.Key_Down, "dog"), (Key.Key_Down, "o"),
                          (Key.Key_Down, "o"), (Key.Key_Up, "dog"), (Key.Key_Up, "hot dog")):
        QTest.keyClick(d.filter_edit, key)
        assert highlighted(d) == expected  # down to the "New class" item, and no further
    QTest.keyClick(d.filter_edit, Key.Key_Enter)
    assert d.picked() == "hot dog"


def test_a_name_not_in_the_list_is_offered_as_a_new_class(qtbot):
    d = picker(qtbot)
    QTest.keyClicks(d.filter_edit, "  bicycle ")
    assert d.visible_names() == [] and not d.new_item.isHidden()
    assert d.new_item.text() == "New class “bicycle”"
    QTest.keyClick(d.filter_edit, Key.Key_Return)
    assert d.picked() == "bicycle" and d.is_new


def test_a_name_that_matches_a_class_in_another_case_offers_no_new_class(qtbot):
    d = picker(qtbot)
    QTest.keyClicks(d.filter_edit, "cat")
    assert d.new_item.isHidden()
    QTest.keyClick(d.filter_edit, Key.Key_Return)
    assert d.picked() == "Cat" and not d.is_new


def test_a_digit_in_the_empty_box_picks_that_class(qtbot):
    d = picker(qtbot)
    QTest.keyClicks(d.filter_edit, "2")
    assert d.picked() == "hot dog" and d.result() == QtWidgets.QDialog.DialogCode.Accepted
    d = picker(qtbot)
    QTest.keyClicks(d.filter_edit, "9")  # no ninth class: a digit like any other text
    assert d.picked() is None and d.filter_edit.text() == "9"


def test_esc_cancels_and_a_click_picks(qtbot):
    d = picker(qtbot)
    QTest.keyClicks(d.filter_edit, "per")
    QTest.keyClick(d.filter_edit, Key.Key_Escape)
    assert d.result() == QtWidgets.QDialog.DialogCode.Rejected and d.picked() is None
    d = picker(qtbot)
    rect = d.list.visualItemRect(d.list.item(2))
    QTest.mouseClick(d.list.viewport(), QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier,
                     rect.center())
    assert d.picked() == "dog"


def test_pick_returns_the_name_or_none(qtbot):
    def answer(keys: str, final: Key) -> None:
        d = QtWidgets.QApplication.activeModalWidget()
        QTest.keyClicks(d.filter_edit, keys)
        QTest.keyClick(d.filter_edit, final)

    QtCore.QTimer.singleShot(0, lambda: answer("pers", Key.Key_Return))
    assert ClassPicker.pick(None, CLASSES, None) == "person"
    QtCore.QTimer.singleShot(0, lambda: answer("pers", Key.Key_Escape))
    assert ClassPicker.pick(None, CLASSES, None) is None


# -- the classes dialog ------------------------------------------------------------------------

def classes_dialog(qtbot, classes=CLASSES) -> ClassesDialog:
    dialog = ClassesDialog(classes)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.activateWindow()
    return dialog


def editor_of(d: ClassesDialog) -> QtWidgets.QLineEdit | None:
    shown = [e for e in d.list.findChildren(QtWidgets.QLineEdit) if e.isVisible()]
    return shown[0] if d.list.state() == d.list.State.EditingState and shown else None


def type_into_editor(qtbot, d: ClassesDialog, text: str) -> None:
    """Type ``text`` into the open item editor (its old text selected) and press Enter."""
    qtbot.waitUntil(lambda: editor_of(d) is not None)
    editor = editor_of(d)
    editor.selectAll()
    QTest.keyClicks(editor, text)
    QTest.keyClick(editor, Key.Key_Return)
    qtbot.waitUntil(lambda: d.list.state() != d.list.State.EditingState)  # (committed from the event loop)


def test_the_classes_dialog_reports_adds_renames_and_colours(qtbot):
    d = classes_dialog(qtbot)
    assert d.names() == ["person", "hot dog", "dog", "Cat"] and not d.changes()
    QTest.mouseClick(d.add_button, QtCore.Qt.MouseButton.LeftButton)
    type_into_editor(qtbot, d, "  tree ")
    assert d.names()[-1] == "tree"
    d.list.setCurrentRow(2)  # dog
    d.list.setFocus()
    QTest.keyClick(d.list, Key.Key_F2)
    type_into_editor(qtbot, d, "puppy")
    QTest.mouseClick(d.rename_button, QtCore.Qt.MouseButton.LeftButton)
    type_into_editor(qtbot, d, "young dog")  # a second rename of the same class: one step
    d.choose_colour = lambda initial: QtGui.QColor(1, 2, 3)
    QTest.mouseClick(d.colour_button, QtCore.Qt.MouseButton.LeftButton)
    d.list.setCurrentRow(4)  # tree
    QTest.mouseClick(d.colour_button, QtCore.Qt.MouseButton.LeftButton)
    assert d.names() == ["person", "hot dog", "young dog", "Cat", "tree"]
    assert d.changes() == ClassChanges(added=("tree",), renames=(("dog", "young dog"),),
                                       colours=(("young dog", (1, 2, 3)), ("tree", (1, 2, 3))))
    QTest.keyClick(d, Key.Key_Return)  # Enter outside an editor: OK
    assert d.result() == QtWidgets.QDialog.DialogCode.Accepted


def test_a_rename_to_a_taken_or_empty_name_is_refused(qtbot):
    d = classes_dialog(qtbot)
    d.list.setCurrentRow(0)
    QTest.mouseClick(d.rename_button, QtCore.Qt.MouseButton.LeftButton)
    type_into_editor(qtbot, d, "dog")
    assert d.names()[0] == "person" and "already" in d.message.text()
    QTest.mouseClick(d.rename_button, QtCore.Qt.MouseButton.LeftButton)
    type_into_editor(qtbot, d, "   ")
    assert d.names()[0] == "person" and "needs a name" in d.message.text() and not d.changes()
    # a swap of two names through a third is kept as the three steps made, valid in order
    for row, name in ((0, "tmp"), (2, "person"), (0, "dog")):
        d.list.setCurrentRow(row)
        QTest.mouseClick(d.rename_button, QtCore.Qt.MouseButton.LeftButton)
        type_into_editor(qtbot, d, name)
    assert d.changes().renames == (("person", "tmp"), ("dog", "person"), ("tmp", "dog"))


def test_classes_load_from_a_file_and_cancel(qtbot, tmp_path):
    d = classes_dialog(qtbot)
    coco = tmp_path / "instances.json"
    coco.write_text(json.dumps({"categories": [{"id": 2, "name": "car"}, {"id": 1, "name": "dog"}]}))
    d.choose_file = lambda: str(coco)
    QTest.mouseClick(d.load_button, QtCore.Qt.MouseButton.LeftButton)
    assert d.names()[-1] == "car" and "1 class added" in d.message.text() and "1 already" in d.message.text()
    yaml_file = tmp_path / "data.yaml"
    yaml_file.write_text("names: [bus, train]\n")
    assert d.load_file(yaml_file) == 2 and d.changes().added == ("car", "bus", "train")
    assert d.load_file(tmp_path / "missing.txt") == 0 and "Cannot read" in d.message.text()
    QTest.keyClick(d, Key.Key_Escape)
    assert d.result() == QtWidgets.QDialog.DialogCode.Rejected


def test_an_empty_class_list(qtbot):
    d = classes_dialog(qtbot, classes=[])
    assert not d.rename_button.isEnabled()
    QTest.mouseClick(d.add_button, QtCore.Qt.MouseButton.LeftButton)
    type_into_editor(qtbot, d, "thing")
    assert d.changes() == ClassChanges(added=("thing",))
    p = picker(qtbot, classes=[])
    QTest.keyClicks(p.filter_edit, "1")
    assert p.picked() is None and not p.new_item.isHidden()
