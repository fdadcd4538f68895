"""Process-wide CPU settings that decide how fast a click-to-mask is: how idle OpenMP threads
wait, and whether freed memory goes back to the kernel.

OpenMP threads (:func:`configure_openmp_wait`)
----------------------------------------------
A click runs a few dozen multi-threaded operations in ~25 ms, and each hands work to the other
thread, which must first wake up if it has gone to sleep. libgomp, PyTorch's OpenMP runtime on
Linux, spins 300,000 times (a few ms) by default before a waiting thread sleeps. We set
``GOMP_SPINCOUNT=10000`` instead (about 0.1 ms): long enough to bridge the gaps inside a click,
short enough to leave the core to other programs soon after. Measured on the 2-core benchmark
VM (EfficientSAM-Ti at 1024x768, medians of 15-21 clicks; back to back / each click after 50 ms
idle):

- quiet machine: 10,000 spins 22.3-24.7 / 23.4-25.2 ms; ``OMP_WAIT_POLICY=PASSIVE`` (sleep at
  once, our setting before) 25.3-26.5 / 37.9-38.9 ms, because waking a halted virtual CPU costs
  tens of microseconds and every operation pays it; libgomp's default 25.5-25.6 / 25.8-26.2 ms.
- beside a process that keeps one core busy (two rounds, an hour apart; they disagree): 10,000
  spins 56-83 / 56-114 ms, PASSIVE 39-92 / 39-76 ms, default (first round only) 48-53 / 97-111 ms.
  Only one core is left then, so no setting meets the 30 ms goal.

The spin count is read once, when torch loads libgomp, so the front doors call this before they
import torch. Other platforms' OpenMP runtimes ignore ``GOMP_SPINCOUNT``; there we keep
``OMP_WAIT_POLICY=PASSIVE``. A user's own setting of either variable is left alone.

Allocator (:func:`keep_freed_memory`)
-------------------------------------
Each click allocates and frees a few 4-8 MB buffers (the mask upscaling works on 16k-65k
rows). By default glibc hands such blocks back to the kernel when they are freed (blocks
over the mmap threshold, and free memory at the heap top over the trim threshold), so the
next click gets fresh pages and takes a page fault per 4 KiB on first touch: on the 2-core
benchmark machine that was about 6 of 34 ms per click. :func:`keep_freed_memory` raises both
thresholds so that freed memory stays in the process and is reused.

The trim threshold is sized for the whole chain, not only for clicks. UnifiedQA's
cross-attention keys and values for 100 captions take 214 MB, and the caption decoder's
buffers come on top. With the threshold at 256 MB, glibc still gave the heap top back after
every chain. The next chain then took 100,000-170,000 page faults, 0.5-0.8 s of system time
(base models, 100 captions). With 512 MB, a chain after the first two takes 700-2,200 faults and
0.02-0.04 s. The peak resident size was the same, 5.86-5.90 GB, since each chain reaches it
anyway. What changes is that this memory stays resident between chains.

Both settings are process-wide, so the front doors (``qmask`` and its headless commands) make
them once at start-up; the engine itself never does.

Off switches (environment variables, read when the setting is made)
-------------------------------------------------------------------
- ``QMASK_OPENMP_WAIT=default``: leave ``GOMP_SPINCOUNT`` / ``OMP_WAIT_POLICY`` unset (the
  OpenMP runtime's own waiting);
- ``QMASK_CPU_ALLOCATOR=default``: never call ``mallopt`` (glibc's own thresholds);
- ``QMASK_ACCELERATE=off``: both of the above, and every other CPU acceleration of
  ``engine.runtime.accelerate`` (packed oneDNN layers, the EfficientSAM decoder's fast path).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import MutableMapping

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 2**20  # glibc's maximum; larger blocks (weights, photos) still use mmap
TRIM_THRESHOLD_BYTES = 512 * 2**20  # free memory kept at the heap top before it is returned

# libgomp spins before a waiting thread sleeps (libgomp counts ~100,000 per millisecond).
GOMP_SPIN_COUNT = 10_000

ALL_SWITCH = "QMASK_ACCELERATE"  # "off": no acceleration and no process-wide setting at all
ALLOCATOR_SWITCH = "QMASK_CPU_ALLOCATOR"  # "default": glibc's own allocator thresholds
OPENMP_SWITCH = "QMASK_OPENMP_WAIT"  # "default": the OpenMP runtime's own waiting
_OFF_WORDS = {"default", "off", "0", "no", "false", "none", "plain"}

_allocator_tuned: bool | None = None
_libc_handle: list[ctypes.CDLL | None] = []


def libc() -> ctypes.CDLL | None:
    """The C library's handle on Linux (looked up once: ``find_library`` runs ldconfig), with
    ``errno`` kept; None elsewhere or when it cannot be loaded."""
    if not _libc_handle:
        handle = None
        if sys.platform.startswith("linux"):
            try:
                handle = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            except OSError:
                handle = None
        _libc_handle.append(handle)
    return _libc_handle[0]


def switched_off(name: str, environ: MutableMapping[str, str] | None = None) -> bool:
    """Whether the environment turns the setting ``name`` off (``default``/``off``), directly or
    with ``QMASK_ACCELERATE=off``."""
    env = os.environ if environ is None else environ
    return any(env.get(var, "").strip().lower() in _OFF_WORDS for var in (name, ALL_SWITCH))


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks of up to 32 MB in the process (see the module notes).

    Returns True when the allocator was tuned (Linux with glibc), False elsewhere (macOS,
    Windows, musl: nothing to do or no such knob) and where ``QMASK_CPU_ALLOCATOR=default`` or
    ``QMASK_ACCELERATE=off`` turns it off. Safe to call more than once. The cost is
    that up to ``TRIM_THRESHOLD_BYTES`` of freed memory stays mapped between clicks and runs.
    """
    global _allocator_tuned
    if _allocator_tuned is not None:
        return _allocator_tuned
    _allocator_tuned = False
    if switched_off(ALLOCATOR_SWITCH):
        return False
    handle = libc()
    mallopt = getattr(handle, "mallopt", None) if handle is not None else None
    if mallopt is None:  # not Linux, or not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1 and ok
    _allocator_tuned = ok
    return ok


def configure_openmp_wait(environ: MutableMapping[str, str] | None = None, platform: str | None = None) -> None:
    """How idle OpenMP threads wait (see the module notes); call before torch is imported.

    On Linux sets ``GOMP_SPINCOUNT`` to :data:`GOMP_SPIN_COUNT`; elsewhere sets
    ``OMP_WAIT_POLICY=PASSIVE``. Changes nothing if the user set either variable, or where
    ``QMASK_OPENMP_WAIT=default`` or ``QMASK_ACCELERATE=off`` turns it off.
    """
    env = os.environ if environ is None else environ
    if env.get("OMP_WAIT_POLICY") or env.get("GOMP_SPINCOUNT") or switched_off(OPENMP_SWITCH, env):
        return
    if (sys.platform if platform is None else platform).startswith("linux"):
        env["GOMP_SPINCOUNT"] = str(GOMP_SPIN_COUNT)
    else:
        env["OMP_WAIT_POLICY"] = "PASSIVE"


def openmp_wait_description(environ: MutableMapping[str, str] | None = None) -> str:
    """The OpenMP wait setting in force, for benchmark headers."""
    env = os.environ if environ is None else environ
    parts = [f"{name}={env[name]}" for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if env.get(name)]
    return ", ".join(parts) or "OpenMP waits: runtime default"


__all__ = ["switched_off", "ALL_SWITCH", "ALLOCATOR_SWITCH", "OPENMP_SWITCH", "configure_openmp_wait", "GOMP_SPIN_COUNT", "keep_freed_memory", "libc", "openmp_wait_description",
           "MMAP_THRESHOLD_BYTES", "TRIM_THRESHOLD_BYTES"]
