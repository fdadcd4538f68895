"""The objects panel (gui/window/panels/objects_panel.py): rows shown top of the drawing order first,
real clicks on the eye and check columns, keys and buttons emitting requests, and updates that
change only the rows that differ (no model reset; the selection stays with its objects), checked
with 1,000 rows and with Qt's own model tester."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from PySide6 import QtCore, QtTest, QtWidgets
from PySide6.QtTest import QTest

from gui.window.panels.objects_model import COL_ACCEPT, COL_CLASS, COL_EYE, COL_REVIEW, COL_SOURCE, UID_ROLE
from gui.window.panels.objects_panel import ObjectRow, ObjectsPanel
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse

Role = QtCore.Qt.ItemDataRole
CTRL = QtCore.Qt.KeyboardModifier.ControlModifier
LEFT = QtCore.Qt.MouseButton.LeftButton


def make_rows(n: int) -> list[ObjectRow]:
    """``n`` rows, drawing order bottom first; every third a proposal from a question."""
    return [ObjectRow(uid=f"u{i}", number=i + 1, category=None if i % 5 == 4 else f"class{i % 3}",
                      colour=(40 * (i % 6), 120, 200), source="question" if i % 3 == 0 else "manual",
                      question="what is on the table?" if i % 3 == 0 else None, accepted=i % 4 == 1,
                      proposal=i % 3 == 0, hidden=False, review=(i % 10) / 10,
                      reasons=("mask leaves the heat map", "low mask score") if i % 10 > 5 else ())
            for i in range(n)]


@pytest.fixture
def panel(qtbot):
    p = ObjectsPanel()
    qtbot.addWidget(p)
    p.resize(420, 500)
    p.show()
    qtbot.waitExposed(p)
    return p


def cell(panel: ObjectsPanel, uid: str, column: int) -> QtCore.QPoint:
    """The centre of ``uid``'s cell in ``column``, in viewport coordinates."""
    index = panel.model.index(panel.model.row_of(uid), column)
    panel.view.scrollTo(index)
    return panel.view.visualRect(index).center()


def click(panel: ObjectsPanel, uid: str, column: int, modifiers=QtCore.Qt.KeyboardModifier.NoModifier) -> None:
    QTest.mouseClick(panel.view.viewport(), LEFT, modifiers, cell(panel, uid, column))


def test_rows_are_shown_top_of_the_drawing_order_first(panel):
    rows = make_rows(6)
    panel.set_rows(rows)
    m = panel.model
    assert [m.index(r, COL_CLASS).data(UID_ROLE) for r in range(6)] == ["u5", "u4", "u3", "u2", "u1", "u0"]
    assert m.index(0, COL_CLASS).data() == "#6 class2" and m.index(1, COL_CLASS).data() == "#5 unlabelled"
    assert m.index(5, COL_SOURCE).data() == "question"
    assert "what is on the table?" in m.index(5, COL_SOURCE).data(Role.ToolTipRole)
    assert m.index(5, COL_REVIEW).data() == "0.00"
    assert panel.summary.text() == "6 objects, 2 accepted, 2 proposals"
    panel.update_rows(rows + [replace(rows[0], uid="u9", number=10, review=0.7, reasons=("low mask score",))])
    assert m.index(0, COL_REVIEW).data() == "0.70" and "low mask score" in m.index(0, COL_REVIEW).data(Role.ToolTipRole)
    panel.set_rows([])
    assert panel.summary.text() == "No objects"


def test_clicks_on_the_eye_and_check_toggle_without_selecting(panel, qtbot):
    rows = make_rows(5)
    rows[2] = replace(rows[2], hidden=True)
    panel.set_rows(rows)
    panel.set_current("u4")
    hidden, accepted, current = [], [], []
    panel.hidden_toggled.connect(lambda uid, h: hidden.append((uid, h)))
    panel.accept_toggled.connect(lambda uid, a: accepted.append((uid, a)))
    panel.current_changed.connect(current.append)
    click(panel, "u1", COL_EYE)
    click(panel, "u2", COL_EYE)
    click(panel, "u1", COL_ACCEPT)  # accepted: take it back
    click(panel, "u3", COL_ACCEPT)
    assert hidden == [("u1", True), ("u2", False)] and accepted == [("u1", False), ("u3", True)]
    assert current == [] and panel.current() == "u4" and panel.selected_uids() == ["u4"]
    click(panel, "u1", COL_CLASS)  # elsewhere a click selects
    assert current == ["u1"] and panel.selected_uids() == ["u1"]


def test_selection_keys_and_buttons_emit_requests(panel, qtbot):
    panel.set_rows(make_rows(6))
    got: dict[str, list] = {k: [] for k in ("delete", "keep", "merge", "order", "class", "new")}
    panel.delete_requested.connect(got["delete"].append)
    panel.keep_requested.connect(got["keep"].append)
    panel.merge_requested.connect(got["merge"].append)
    panel.order_requested.connect(lambda uid, step: got["order"].append((uid, step)))
    panel.class_requested.connect(got["class"].append)
    panel.new_object_requested.connect(lambda: got["new"].append(True))
    click(panel, "u4", COL_CLASS)
    assert not panel.merge_button.isEnabled() and not panel.keep_button.isEnabled()  # u4 is no proposal
    click(panel, "u3", COL_CLASS, CTRL)
    assert panel.selected_uids() == ["u4", "u3"] and panel.current() == "u3"
    assert panel.merge_button.isEnabled() and panel.keep_button.isEnabled()
    for b in (panel.merge_button, panel.keep_button, panel.class_button, panel.new_button):
        QTest.mouseClick(b, LEFT)
    QTest.mouseClick(panel.forward_button, LEFT)
    QTest.mouseClick(panel.backward_button, LEFT)
    panel.view.setFocus()
    QTest.keyClick(panel.view, QtCore.Qt.Key.Key_Delete)
    assert got["merge"] == [["u4", "u3"]] and got["keep"] == [["u4", "u3"]] and got["class"] == [["u4", "u3"]]
    assert got["new"] == [True] and got["order"] == [("u3", 1), ("u3", -1)] and got["delete"] == [["u4", "u3"]]
    # a double-click on a class (its first click selects the row alone, as Qt does)
    for uid in ("u3", "u1"):
        click(panel, uid, COL_CLASS)
        QTest.mouseDClick(panel.view.viewport(), LEFT, QtCore.Qt.KeyboardModifier.NoModifier,
                          cell(panel, uid, COL_CLASS))
        assert got["class"][-1] == [uid]
    assert len(got["class"]) == 3
    panel.set_current("u5")  # the top: no forward
    assert not panel.forward_button.isEnabled() and panel.backward_button.isEnabled()
    panel.set_current("u0")
    assert panel.forward_button.isEnabled() and not panel.backward_button.isEnabled()


def test_set_current_emits_nothing(panel):
    panel.set_rows(make_rows(4))
    current = []
    panel.current_changed.connect(current.append)
    panel.set_current("u2")
    assert panel.current() == "u2" and panel.selected_uids() == ["u2"]
    panel.set_current(None)
    assert panel.current() is None and panel.selected_uids() == [] and current == []


def test_one_row_updated_among_1000_keeps_the_selection_and_resets_nothing(panel, qtbot):
    rows = make_rows(1000)
    panel.set_rows(rows)
    click(panel, "u500", COL_CLASS)
    click(panel, "u10", COL_CLASS, CTRL)
    scroll = panel.view.verticalScrollBar().value()
    counts = {"reset": 0, "changed": 0, "moved": 0, "inserted": 0, "removed": 0}
    m = panel.model
    m.modelReset.connect(lambda: counts.__setitem__("reset", counts["reset"] + 1))
    m.dataChanged.connect(lambda *a: counts.__setitem__("changed", counts["changed"] + 1))
    m.rowsMoved.connect(lambda *a: counts.__setitem__("moved", counts["moved"] + 1))
    m.rowsInserted.connect(lambda *a: counts.__setitem__("inserted", counts["inserted"] + 1))
    m.rowsRemoved.connect(lambda *a: counts.__setitem__("removed", counts["removed"] + 1))
    current = []
    panel.current_changed.connect(current.append)
    rows[500] = replace(rows[500], category="dog", accepted=True)
    panel.update_rows(rows)
    assert counts == {"reset": 0, "changed": 1, "moved": 0, "inserted": 0, "removed": 0}
    assert m.index(m.row_of("u500"), COL_CLASS).data() == "#501 dog"
    assert panel.selected_uids() == ["u500", "u10"] and panel.current() == "u10" and current == []
    assert panel.view.verticalScrollBar().value() == scroll
    panel.update_row(replace(rows[10], hidden=True))
    assert counts["changed"] == 2 and counts["reset"] == 0
    # one object brought forward, one deleted, one added on top: the selection follows its objects
    rows[10], rows[11] = rows[11], rows[10]
    del rows[300]
    rows.append(replace(rows[0], uid="new", number=1001))
    panel.update_rows(rows)
    assert counts["reset"] == 0 and counts["moved"] == 1 and counts["inserted"] == 1 and counts["removed"] == 1
    assert [r.uid for r in m.rows] == [r.uid for r in reversed(rows)]
    assert panel.selected_uids() == ["u500", "u10"] and panel.current() == "u10" and current == []
    assert panel.summary.text().startswith("1000 objects")


@pytest.mark.parametrize("seed", range(8))
def test_random_updates_give_the_rows_asked_for(qtbot, seed):
    """Random removals, insertions, moves and changes, under Qt's model tester (which fails on
    any inconsistent signal); the selection keeps the objects still there."""
    rng = random.Random(seed)
    panel = ObjectsPanel()
    qtbot.addWidget(panel)
    tester = QtTest.QAbstractItemModelTester(  # noqa: F841 - checks the model while it lives
        panel.model, QtTest.QAbstractItemModelTester.FailureReportingMode.Fatal)
    rows = make_rows(rng.randint(0, 30))
    panel.set_rows(rows)
    fresh = iter(range(100, 10_000))
    for _ in range(6):
        chosen = {r.uid for r in rows if rng.random() < 0.3}
        sm = panel.view.selectionModel()
        sm.clearSelection()
        for uid in chosen:
            sm.select(panel.model.index(panel.model.row_of(uid), 0),
                      QtCore.QItemSelectionModel.SelectionFlag.Select | QtCore.QItemSelectionModel.SelectionFlag.Rows)
        rows = [r for r in rows if rng.random() > 0.2]
        rows = [replace(r, accepted=not r.accepted) if rng.random() < 0.2 else r for r in rows]
        for _ in range(rng.randint(0, 5)):
            i = next(fresh)
            rows.insert(rng.randint(0, len(rows)), replace(make_rows(1)[0], uid=f"n{i}", number=i))
        if rows and rng.random() < 0.5:
            rows.insert(rng.randint(0, len(rows) - 1), rows.pop(rng.randrange(len(rows))))
        panel.update_rows(rows)
        assert panel.model.rows == list(reversed(rows))
        assert set(panel.selected_uids()) == chosen & {r.uid for r in rows}
    panel.set_rows([])
    assert panel.model.rowCount() == 0


def test_the_panel_renders(panel, tmp_path):
    rows = make_rows(12)
    rows[3] = replace(rows[3], hidden=True)
    panel.set_rows(rows)
    panel.set_current("u7")
    shot = panel.grab()
    assert not shot.isNull() and shot.save(str(tmp_path / "objects_panel.png"))
    assert isinstance(panel.view, QtWidgets.QTableView)
