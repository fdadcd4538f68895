"""Cyclic garbage is collected on the GUI thread only while QMask's worker threads run
(gui.engine_thread.gui_thread_gc): a cycle dropped by the GUI is never freed by the engine thread."""

from __future__ import annotations

import gc
import threading
import weakref

from PySide6 import QtCore

from gui.engine_thread import gui_thread_gc


class Node:
    """A plain object in a reference cycle (only the cyclic collector can free it)."""

    def __init__(self) -> None:
        self.me = self


def drop_cycles(n: int, freed_in: list) -> None:
    for _ in range(n):
        node = Node()
        weakref.finalize(node, lambda: freed_in.append(threading.current_thread()))


def churn() -> None:
    """Allocate like model code does: many short-lived container objects, some in cycles."""
    for _ in range(200_000):
        Node()


def run_in_thread(target) -> threading.Thread:
    t = threading.Thread(target=target, name="churn")
    t.start()
    t.join()
    return t


def test_without_the_hold_a_worker_thread_frees_the_guis_cycles(qapp):
    # The hazard itself, on plain objects: an allocating thread runs the collection.
    gc.collect()
    assert gui_thread_gc.collector().holds == 0 and gc.isenabled()
    freed_in: list = []
    drop_cycles(20, freed_in)
    worker = run_in_thread(churn)
    assert freed_in and all(t is worker for t in freed_in)


def test_while_held_cycles_are_freed_on_the_gui_thread(qapp, qtbot):
    gc.collect()
    was = gui_thread_gc.collector().holds
    gui_thread_gc.hold()
    try:
        assert not gc.isenabled()
        freed_in: list = []
        drop_cycles(20, freed_in)
        run_in_thread(churn)
        assert freed_in == []  # the worker allocated plenty and collected nothing
        qtbot.waitUntil(lambda: len(freed_in) == 20, timeout=5000)  # the GUI thread's timer did
        assert all(t is threading.main_thread() for t in freed_in)
    finally:
        gui_thread_gc.release()
    assert gui_thread_gc.collector().holds == was


def test_an_explicit_collection_on_another_thread_leaves_the_freeing_to_the_gui_thread(qapp):
    # engine.models.manager calls gc.collect() in the engine thread when it releases a model: the Qt
    # objects in the cycles there must still be destroyed on the GUI thread.
    c = gui_thread_gc.collector()
    assert c.holds == 0
    destroyed_in: list[int] = []
    freed_in: list = []
    gc.collect()
    gui_thread_gc.hold()
    try:
        for _ in range(5):
            obj = QtCore.QObject()
            obj.me = obj  # a cycle
            obj.destroyed.connect(lambda *_: destroyed_in.append(threading.get_ident()),
                                  QtCore.Qt.ConnectionType.DirectConnection)
        del obj
        drop_cycles(5, freed_in)  # finalizers and weakref callbacks must not run there either
        before = c.neutralised
        run_in_thread(gc.collect)
        assert c.neutralised == before + 1
        assert destroyed_in == [] and freed_in == []
    finally:
        gui_thread_gc.release()  # the last release: a full collection, on this thread
    assert len(destroyed_in) == 5 and set(destroyed_in) == {threading.main_thread().ident}
    assert len(freed_in) == 5 and all(t is threading.main_thread() for t in freed_in)


def test_holds_nest_and_a_worker_can_release(qapp, qtbot):
    c = gui_thread_gc.collector()
    base = c.holds
    gui_thread_gc.hold()
    gui_thread_gc.hold()
    assert c.holds == base + 2
    run_in_thread(gui_thread_gc.release)  # queued to the GUI thread
    assert c.holds == base + 2
    qtbot.waitUntil(lambda: c.holds == base + 1, timeout=2000)
    freed_in: list = []
    drop_cycles(3, freed_in)
    gui_thread_gc.release()
    assert c.holds == base
    if base == 0:  # the last release collected at once, here, and automatic collection is back
        assert len(freed_in) == 3 and all(t is threading.main_thread() for t in freed_in)
        assert gc.isenabled()


def test_engine_client_and_background_task_hold_while_their_thread_runs(qapp, qtbot):
    from gui.engine_thread.background import BackgroundTask
    from gui.engine_thread.engine_client import EngineClient

    c = gui_thread_gc.collector()
    base = c.holds
    client = EngineClient()
    assert c.holds == base + 1
    gate = threading.Event()
    task = BackgroundTask(lambda _task: gate.wait(10))
    with qtbot.waitSignal(task.ended, timeout=10_000):
        task.start()
        assert c.holds == base + 2
        gate.set()
    qtbot.waitUntil(lambda: c.holds == base + 1, timeout=2000)
    assert client.shutdown(10_000)
    assert c.holds == base
    assert client.shutdown(10_000) and c.holds == base  # a second shutdown releases nothing more


def test_settling_freezes_the_heap_and_frees_its_garbage_at_the_next_settling(qapp, qtbot, monkeypatch):
    """Full collections on the GUI thread walk only what came after the settling (350 ms each in
    the app with its models otherwise); garbage among the frozen objects waits for the next
    settling, which runs when the user is quiet."""
    c = gui_thread_gc.collector()
    assert c.holds == 0
    gc.collect()
    gui_thread_gc.hold()
    try:
        old: list = []
        drop_cycles(3, old)  # garbage at the settling is freed by it
        kept = [Node() for _ in range(3)]  # alive at the settling: frozen
        early: list = []
        for node in kept:
            weakref.finalize(node, lambda: early.append(threading.current_thread()))
        gui_thread_gc.settle()
        assert c.settled and gc.get_freeze_count() > 0 and len(old) == 3
        del kept, node  # now garbage, but frozen
        late: list = []
        drop_cycles(3, late)  # garbage made after the settling: the GUI thread's timer frees it
        run_in_thread(churn)
        qtbot.waitUntil(lambda: len(late) == 3, timeout=5000)
        assert early == [] and c.settled
        c.quiet = lambda: False
        monkeypatch.setattr(gui_thread_gc, "RESETTLE_S", 0.0)
        c.collect_due()
        assert early == []  # the user is working: no settling now
        c.quiet = lambda: True
        c.collect_due()
        assert len(early) == 3 and all(t is threading.main_thread() for t in early)
        assert c.settled
    finally:
        c.quiet = lambda: True
        gui_thread_gc.release()
    assert c.holds == 0 and not c.settled and gc.get_freeze_count() == 0


def test_a_collection_on_another_thread_ends_the_settled_state_and_frees_nothing_there(qapp):
    c = gui_thread_gc.collector()
    assert c.holds == 0
    gc.collect()
    gui_thread_gc.hold()
    try:
        gui_thread_gc.settle()
        freed_in: list = []
        drop_cycles(4, freed_in)
        run_in_thread(gc.collect)
        assert freed_in == [] and not c.settled and gc.get_freeze_count() == 0
    finally:
        gui_thread_gc.release()
    assert len(freed_in) == 4 and all(t is threading.main_thread() for t in freed_in)
