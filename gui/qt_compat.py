"""Checks of the Qt binding the app runs on.

PySide6 6.12.0 on Python 3.11 drops a reference to ``True`` on every ``Signal.emit`` (seen here:
300 emits -> ``sys.getrefcount(True)`` 300 lower; 6.11.3 is fine; Python 3.12+ makes ``True``
immortal, so it cannot crash there). A long session then dies with "bool_dealloc: deallocating
True or False". The app measures this at start and says what to install instead.
"""

from __future__ import annotations

import sys

from PySide6 import QtCore


class _Probe(QtCore.QObject):
    ping = QtCore.Signal(int)


def emit_leaks_references(n: int = 64) -> bool:
    """True when emitting a signal loses references to ``True`` (the PySide6 6.12.0 defect)."""
    probe = _Probe()
    probe.ping.connect(lambda _v: None)
    before = sys.getrefcount(True)
    for i in range(n):
        probe.ping.emit(i)
    lost = before - sys.getrefcount(True)
    probe.deleteLater()
    return lost >= n // 2


def binding_warning() -> str:
    """A user-facing sentence when the installed PySide6 is known to crash long sessions, else ''."""
    if not emit_leaks_references():
        return ""
    import PySide6

    return (f"PySide6 {PySide6.__version__} on Python {sys.version_info.major}.{sys.version_info.minor} has a "
            "defect that crashes long sessions. Install another version: "
            "pip install \"PySide6-Essentials>=6.6,!=6.12.0\" (or use Python 3.12 or newer).")
