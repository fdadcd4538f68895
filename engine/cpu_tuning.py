"""The C allocator setting that decides whether a click-to-mask pays for page faults.

Each click allocates and frees a few 4-8 MB buffers (the mask upscaling works on 16k-65k
rows). By default glibc hands such blocks back to the kernel when they are freed (blocks
over the mmap threshold, and free memory at the heap top over the trim threshold), so the
next click gets fresh pages and takes a page fault per 4 KiB on first touch: on the 2-core
benchmark machine that was about 6 of 34 ms per click. :func:`keep_freed_memory` raises both
thresholds so that freed memory stays in the process and is reused.

It is process-wide, so the front doors (``qmask`` and its headless commands) call it once at
start-up, as they set ``OMP_WAIT_POLICY``; the engine itself never does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 2**20  # glibc's maximum; larger blocks (weights, photos) still use mmap
TRIM_THRESHOLD_BYTES = 256 * 2**20  # free memory kept at the heap top before it is returned

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


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks of up to 32 MB in the process (see the module notes).

    Returns True when the allocator was tuned (Linux with glibc), False elsewhere (macOS,
    Windows, musl: nothing to do or no such knob). Safe to call more than once. The cost is
    that up to ``TRIM_THRESHOLD_BYTES`` of freed memory stays mapped between clicks.
    """
    global _allocator_tuned
    if _allocator_tuned is not None:
        return _allocator_tuned
    _allocator_tuned = False
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


__all__ = ["keep_freed_memory", "libc", "MMAP_THRESHOLD_BYTES", "TRIM_THRESHOLD_BYTES"]
