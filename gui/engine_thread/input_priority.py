"""The GUI thread first: between their steps, the engine and the project store wait while the GUI
thread works.

Why: on a small machine (2 cores) a long engine job (captions, the answer, an encoder) keeps
both cores and, between its torch calls, Python's GIL. The GUI thread then waits for both
dozens of times per click (PySide lets the GIL go around Qt calls): a click whose own work was
10-20 ms of CPU took up to 54 ms of wall time (``python -m gui.tools.bench_clicks``).

How: the GUI thread says when it works: its event dispatcher's ``awake`` and ``aboutToBlock``
(:meth:`InputPriority.gui_awake`, :meth:`gui_idle`), and holds for the work an input event or a
mask reply brings in bursts over the next moment (:meth:`touch` from the canvas,
:meth:`hold` for a reply). The engine thread calls :meth:`give_way` between steps (every
decoding step of the captions, every block of an encoder or of the answer model), the store
thread before each write: each sleeps with the GIL released while the GUI has priority, the
engine waking at once to decode a pending mask edit (what the GUI is waiting for). A long job
still moves under continuous input: after ``max_wait_s`` it goes on as soon as the GUI thread
rests, and after ``max_awake_wait_s`` in any case. Qt-free (the GUI connects the dispatcher's
signals); only floats, a bool, counters under a lock and an Event cross threads.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

GRACE_S = 0.004  # after the GUI thread goes idle: the follow-up events it posted itself (a paint)
INPUT_HOLD_S = 0.1  # after an input event: its handling, the mask request (40 ms on) and its decode
REPLY_HOLD_S = 0.05  # after a mask reply arrives: showing it (session, panels, layers, paints)
MAX_WAIT_S = 0.4  # one step of a long job waits at most this long for holds to end...
MAX_AWAKE_WAIT_S = 1.0  # ...and then for the GUI thread to go idle: it starts while the GUI rests
POLL_S = 0.005  # a waiting step looks again at least this often


class InputPriority:
    """Shared by the GUI thread (:meth:`gui_awake`, :meth:`gui_idle`, :meth:`touch`, :meth:`wake`)
    and the threads that give way to it (:meth:`give_way`: the engine, the project store)."""

    def __init__(self, grace_s: float = GRACE_S, max_wait_s: float = MAX_WAIT_S,
                 max_awake_wait_s: float = MAX_AWAKE_WAIT_S) -> None:
        self.grace_s = grace_s
        self.max_wait_s = max_wait_s
        self.max_awake_wait_s = max_awake_wait_s
        self._lock = threading.Lock()  # the counters below: the engine and the store thread wait
        self._waiting = 0  # threads in give_way now
        self._hold_until = 0.0  # time.monotonic() until which an input or reply hold lasts
        self.enabled = True
        self._awake = False  # the GUI thread is handling events now
        self._idle_at = 0.0  # time.monotonic() when it last went idle
        self._last_input = float("-inf")  # time.monotonic() of the last input event (touch)
        self._wake = threading.Event()
        self.waited_s = 0.0  # engine time given to the GUI so far (diagnostics: the click bench)
        self.waits = 0

    # ------------------------------------------------------------------ GUI thread
    def gui_awake(self) -> None:
        self._awake = True

    def gui_idle(self) -> None:
        self._awake = False
        self._idle_at = time.monotonic()
        self._wake.set()  # a waiting step looks again (after the grace)

    def touch(self, hold_s: float = INPUT_HOLD_S) -> None:
        """An input event (a click, a drag step, a wheel turn) now: the GUI thread's work for it
        comes in bursts over the next ``hold_s`` (the event, the mask request, the mask)."""
        now = self._last_input = time.monotonic()
        self.hold(hold_s, now)

    def hold(self, seconds: float, now: float | None = None) -> None:
        """The GUI thread expects work for ``seconds`` (e.g. a mask reply to show: REPLY_HOLD_S)."""
        until = (time.monotonic() if now is None else now) + seconds
        if until > self._hold_until:
            self._hold_until = until

    def recent(self, seconds: float) -> bool:
        """An input event in the last ``seconds``."""
        return time.monotonic() - self._last_input < seconds

    # ------------------------------------------------------------------ any thread
    def wake(self) -> None:
        """There is work for the engine (a mask edit posted): a waiting step looks now."""
        self._wake.set()

    @property
    def waiting(self) -> bool:
        """A thread is giving way now (diagnostics, tests)."""
        return self._waiting > 0

    def busy(self) -> bool:
        """The GUI thread is working, was a moment ago, or expects work (a hold)."""
        return self.enabled and (time.monotonic() < self._hold_until or self._gui_working())

    def _gui_working(self) -> bool:
        """Handling events now, or it was within the grace."""
        return self._awake or time.monotonic() - self._idle_at < self.grace_s

    # ------------------------------------------------------------------ engine thread
    def give_way(self, serve: Callable[[], None] = lambda: None,
                 blocked: Callable[[], bool] = lambda: False) -> float:
        """Between two steps of a job: wait while the GUI thread is busy, calling ``serve()``
        whenever woken (decode the pending edit). Stops waiting when ``blocked()`` says the GUI
        waits for this very job (an edit that needs the encoder now running). Returns the
        seconds waited."""
        if not self.busy():
            return 0.0
        start = time.monotonic()
        limit, last = start + self.max_wait_s, start + self.max_awake_wait_s
        with self._lock:
            self._waiting += 1
        try:
            while True:
                serve()
                self._wake.clear()  # before looking: a wake-up from now on ends the wait below
                now = time.monotonic()
                if not self.enabled or blocked() or now >= last:
                    break
                if now >= limit:  # held long enough: go on, but at a moment the GUI thread rests
                    if not self._gui_working():
                        break
                elif not self.busy():
                    break
                self._wake.wait(POLL_S)  # or sooner: the GUI goes idle, an edit is posted
        finally:
            waited = time.monotonic() - start
            with self._lock:
                self._waiting -= 1
                self.waited_s += waited
                self.waits += 1
        return waited
