"""CPU seconds of this process and everything it started (a local Ray instance: GCS, raylet,
agents, workers), read from Linux's /proc: what a benchmark run cost each process, whatever
else the machine was doing meanwhile (wall-clock rates are not that).

    before = snapshot(); ...; after = snapshot()
    for role, seconds in by_role(before, after).items(): ...
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Proc", "snapshot", "by_role", "available"]

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    title: str  # the command line, or the title a Ray worker gives itself ("ray::MapWorker(...)")
    cpu: float  # user + system seconds since it started


def available() -> bool:
    return os.path.exists(f"/proc/{os.getpid()}/stat")


def _read(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            title = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:  # it ended meanwhile
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm)", which may hold spaces
    return Proc(pid, int(fields[1]), title, (int(fields[11]) + int(fields[12])) / _TICK)


def snapshot(root: int | None = None) -> dict[int, Proc]:
    """``root`` (default: this process) and all its descendants now alive."""
    root = os.getpid() if root is None else root
    procs = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            p = _read(int(name))
            if p is not None:
                procs[p.pid] = p
    children: dict[int, list[int]] = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p.pid)
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            out[pid] = procs[pid]
            todo.extend(children.get(pid, ()))
    return out


def role(proc: Proc, root: int) -> str:
    """A short name for what a process of a local Ray instance is."""
    if proc.pid == root:
        return "driver (this process)"
    t = proc.title
    if t.startswith("ray::"):
        name = t.split()[0][5:]
        return "Ray worker: chain" if "ChainWorker" in name else f"Ray worker: {name}"
    for key, name in (("gcs_server", "gcs_server"), ("raylet", "raylet"), ("dashboard/agent.py", "dashboard agent"),
                      ("runtime_env/agent", "runtime env agent"), ("log_monitor", "log monitor"),
                      ("monitor.py", "autoscaler monitor"), ("dashboard.py", "dashboard"),
                      ("default_worker.py", "Ray worker: idle")):
        if key in t:
            return name
    return t.split()[0].rsplit("/", 1)[-1] if t else f"pid {proc.pid}"


def by_role(before: dict[int, Proc], after: dict[int, Proc], root: int | None = None) -> dict[str, tuple[float, int]]:
    """CPU seconds spent between the two snapshots, summed per role, with the number of processes:
    a process that started meanwhile counts from 0; one that ended meanwhile is not counted."""
    root = os.getpid() if root is None else root
    out: dict[str, tuple[float, int]] = {}
    for pid, p in after.items():
        old = before.get(pid)
        spent = p.cpu - (old.cpu if old is not None and old.cpu <= p.cpu else 0.0)  # a Ray worker retitles itself
        seconds, count = out.get(role(p, root), (0.0, 0))
        out[role(p, root)] = (seconds + spent, count + 1)
    return out
