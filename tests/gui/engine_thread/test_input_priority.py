"""gui.engine_thread.input_priority on real threads: the engine's step waits while the GUI thread works or
holds, serves a posted edit meanwhile, and always moves on (caps, blocked, disabled)."""

from __future__ import annotations

import threading
import time

from gui.engine_thread.input_priority import InputPriority

LONG = 30.0  # a hold or cap no test waits out: each test ends the wait itself


def run_step(priority: InputPriority, **kwargs) -> tuple[threading.Thread, list[float]]:
    """An 'engine' thread doing one give_way between two steps; its result lands in the list."""
    out: list[float] = []
    t = threading.Thread(target=lambda: out.append(priority.give_way(**kwargs)), daemon=True)
    t.start()
    return t, out


def wait_for(cond, seconds: float = 10.0) -> None:
    end = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.001)


def test_no_wait_when_the_gui_is_idle():
    p = InputPriority()
    assert not p.busy() and p.give_way() == 0.0 and p.waits == 0


def test_a_hold_keeps_the_step_waiting_and_serves_edits_meanwhile():
    p = InputPriority(max_wait_s=LONG, max_awake_wait_s=LONG)
    served, pending = [], []
    p.hold(LONG)

    def serve():
        while pending:
            served.append(pending.pop())

    t, out = run_step(p, serve=serve)
    wait_for(lambda: p.waiting)
    pending.append("edit")
    p.wake()  # as EngineWorker.post_segment does
    wait_for(lambda: served == ["edit"])
    assert p.waiting and t.is_alive()  # decoded, and still giving way
    p.enabled = False  # e.g. the client shutting down
    p.wake()
    t.join(10)
    assert not t.is_alive() and out[0] > 0 and p.waits == 1


def test_an_edit_that_needs_this_job_ends_the_wait():
    p = InputPriority(max_wait_s=LONG, max_awake_wait_s=LONG)
    p.hold(LONG)
    blocked = threading.Event()
    t, _ = run_step(p, blocked=blocked.is_set)
    wait_for(lambda: p.waiting)
    blocked.set()
    p.wake()
    t.join(10)
    assert not t.is_alive()


def test_the_step_waits_while_the_gui_thread_is_awake_and_goes_on_once_it_rests():
    p = InputPriority(max_wait_s=LONG, max_awake_wait_s=LONG)
    p.gui_awake()
    t, _ = run_step(p)
    wait_for(lambda: p.waiting)
    time.sleep(0.05)
    assert t.is_alive()
    p.gui_idle()  # the dispatcher's aboutToBlock
    t.join(10)
    assert not t.is_alive() and not p.waiting


def test_after_the_hold_cap_the_step_starts_when_the_gui_rests_but_never_waits_forever():
    p = InputPriority(max_wait_s=0.01, max_awake_wait_s=LONG)
    p.hold(LONG)
    p.gui_awake()
    t, _ = run_step(p)
    time.sleep(0.1)
    assert t.is_alive()  # the hold's cap has passed, but the GUI thread is working
    p.gui_idle()
    t.join(10)
    assert not t.is_alive()
    q = InputPriority(max_wait_s=0.01, max_awake_wait_s=0.05)
    q.gui_awake()  # a GUI thread that never rests
    t, _ = run_step(q)
    t.join(10)
    assert not t.is_alive()


def test_touch_marks_input_as_recent_and_holds():
    p = InputPriority()
    assert not p.recent(10.0)
    p.touch(hold_s=LONG)
    assert p.recent(10.0) and p.busy()
    p.enabled = False
    assert not p.busy()
