"""engine.runtime.cpu_tuning: the allocator setting, observed through glibc's own statistics, and how idle
OpenMP threads wait."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.commands import cli
from engine.runtime.cpu_tuning import GOMP_SPIN_COUNT, configure_openmp_wait, keep_freed_memory, openmp_wait_description

# Runs in a fresh interpreter: the setting is process-wide and must be seen from its start.
PROBE = textwrap.dedent("""
    import ctypes, sys
    libc = ctypes.CDLL("libc.so.6")

    class Info(ctypes.Structure):  # struct mallinfo2
        _fields_ = [(n, ctypes.c_size_t) for n in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")]
    try:
        libc.mallinfo2.restype = Info
    except AttributeError:
        print("no-mallinfo2"); sys.exit(0)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = (ctypes.c_void_p,)

    def freed_block_kept():
        mmapped_before = libc.mallinfo2().hblkhd
        p = libc.malloc(8 << 20)  # a click's upscaling buffer
        ctypes.memset(p, 1, 8 << 20)
        mmapped = libc.mallinfo2().hblkhd - mmapped_before
        libc.free(p)
        return mmapped == 0 and libc.mallinfo2().fordblks >= 8 << 20

    def freed_chain_kept():
        # A chain's worth of 8 MB blocks alive at once (UnifiedQA's cross-attention keys and
        # values for 100 captions alone take 214 MB), all freed: does the heap keep them?
        blocks = [libc.malloc(8 << 20) for _ in range(40)]
        for p in blocks:
            ctypes.memset(p, 1, 8 << 20)
        for p in reversed(blocks):
            libc.free(p)
        return libc.mallinfo2().arena >= 40 * (8 << 20)

    before = freed_block_kept()
    from engine.runtime.cpu_tuning import keep_freed_memory
    tuned = keep_freed_memory()
    print(before, tuned, freed_block_kept(), freed_chain_kept())
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator only")
def test_freed_upscaling_buffers_stay_in_the_process():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split()
    if out == ["no-mallinfo2"]:
        pytest.skip("glibc older than 2.33 (no mallinfo2)")
    # Untuned, glibc maps an 8 MB block on its own and unmaps it on free; tuned, it stays, and
    # 320 MB freed at once stay too.
    assert out == ["False", "True", "True", "True"]


def test_tuning_is_idempotent():
    first = keep_freed_memory()
    assert keep_freed_memory() is first
    assert first is sys.platform.startswith("linux")


def test_headless_commands_tune_the_allocator(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append(1) or True)
    assert cli.main(["models", "list"]) in (0, 1)  # 1: no models installed here
    assert calls == [1]


# --- how idle OpenMP threads wait ------------------------------------------------------------

def test_openmp_wait_spins_briefly_on_linux_and_sleeps_elsewhere():
    env: dict[str, str] = {}
    configure_openmp_wait(env, platform="linux")
    assert env == {"GOMP_SPINCOUNT": str(GOMP_SPIN_COUNT)}
    assert openmp_wait_description(env) == f"GOMP_SPINCOUNT={GOMP_SPIN_COUNT}"
    env = {}
    configure_openmp_wait(env, platform="darwin")
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}


@pytest.mark.parametrize("user", [{"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "0"}])
def test_openmp_wait_leaves_the_users_setting_alone(user):
    env = dict(user)
    configure_openmp_wait(env, platform="linux")
    assert env == user
    assert openmp_wait_description({}) == "OpenMP waits: runtime default"


@pytest.mark.parametrize("front_door", ["engine.commands.cli", "gui.main"])
def test_front_doors_set_the_wait_before_torch_loads(front_door):
    # A fresh interpreter: libgomp reads the variables once, when torch loads it.
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    code = (f"import os, sys; import {front_door}; "
            "print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[3]).stdout.split()
    expected = [str(GOMP_SPIN_COUNT), "None"] if sys.platform.startswith("linux") else ["None", "PASSIVE"]
    assert out == [*expected, "False"]
