"""``qmask bench segment`` runs end to end (tiny model, small image) and says it uses random weights."""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.bench.segment import Timing, _print, parse_size, run_benchmark
from engine.commands import bench
from engine.errors import InputError

ROOT = Path(__file__).resolve().parents[3]


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="qmask bench")
    bench.add_arguments(parser)
    return parser.parse_args(argv)


def test_bench_segment_command(capsys):
    args = _parse(["segment", "--sizes", "64x48", "--variants", "tiny", "--devices", "cpu",
                   "--repeats", "2", "--warmup", "0"])
    assert bench.run(args) == 0
    out = capsys.readouterr().out
    assert "RANDOM WEIGHTS" in out and "random weights" in out
    assert "encoder" in out and "click-to-mask" in out and "64x48" in out and "median" in out
    speed = re.findall(r"^CPU speed check \(fp32 GEMM 4096x256x256\): (\d+) GFLOPS before the figures, (\d+) after$",
                       out, flags=re.MULTILINE)
    assert len(speed) == 1 and all(int(v) > 0 for v in speed[0])


FIGURE = re.compile(r"^  (encoder|click-to-mask|click after idle) +(\d+x\d+)  median +(\d+\.\d) ms  "
                    r"\(min (\d+\.\d), max (\d+\.\d), n=(\d+)\)")


def test_run_benchmark_figures():
    # The figures are printed, one well-formed line per measurement; their size is not a test's
    # business (a busy machine is slow), so no time is compared with a limit here.
    lines: list[str] = []
    timings = run_benchmark(sizes=["40x30", "30x40"], variants=["tiny"], devices="cpu", repeats=2, warmup=1,
                            report=lines.append, idle_ms=50)
    assert [(t.what, t.size) for t in timings] == [
        ("encoder", "40x30"), ("encoder", "30x40"), ("click-to-mask", "40x30"), ("click after idle", "40x30"),
        ("click-to-mask", "30x40"), ("click after idle", "30x40")]
    figures = [m.groups() for m in map(FIGURE.match, lines) if m]
    assert [(what, size) for what, size, *_ in figures] == [(t.what, t.size) for t in timings]
    for (_, _, median, low, high, n), t in zip(figures, timings):
        assert len(t.seconds) == 2 and int(n) == 2
        assert all(math.isfinite(s) and s >= 0 for s in t.seconds)
        assert [float(low), float(median), float(high)] == [round(v, 1) for v in (t.min_ms, t.median_ms, t.max_ms)]
    no_idle = run_benchmark(sizes=["40x30"], variants=["tiny"], devices="cpu", repeats=1, warmup=0,
                            report=lines.append, idle_ms=0)
    assert [t.what for t in no_idle] == ["encoder", "click-to-mask"]


class FakeClock:
    """``time`` for engine.bench.segment: ``sleep`` moves the clock on, work moves it by hand."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_idle_time_before_a_click_is_not_in_its_timing(monkeypatch):
    import engine.bench.segment as bench_segment

    clock = FakeClock()
    monkeypatch.setattr(bench_segment, "time", clock)
    calls: list[int] = []

    def click(i: int) -> None:
        calls.append(i)
        clock.now += 0.004 + 0.001 * i  # what the call itself costs

    times = bench_segment._timed(click, repeats=3, warmup=1, idle_s=0.05)
    assert calls == [-1, 0, 1, 2]  # warm-up first, untimed
    assert clock.sleeps == [0.05] * 3  # one idle pause before each timed click
    assert times == pytest.approx((0.004, 0.005, 0.006))  # the pauses are not in the figures
    assert bench_segment._timed(click, repeats=2, warmup=0) == pytest.approx((0.004, 0.005))
    assert clock.sleeps == [0.05] * 3  # no idle time asked: no pause


@pytest.mark.parametrize("what", ["click-to-mask", "click after idle"])
def test_click_goal_verdicts(what):
    lines: list[str] = []
    for seconds in ((0.029, 0.030, 0.031), (0.030, 0.031, 0.032)):
        _print(Timing("cpu", "vitt", "torch.float32", what, "1024x768", seconds), lines.append)
    _print(Timing("cuda:0", "vitt", "torch.float32", what, "1024x768", (0.05,)), lines.append)
    assert lines[0].endswith("[goal <= 30 ms on 2 CPU cores: met]")
    assert lines[1].endswith("[goal <= 30 ms on 2 CPU cores: not met]")
    assert "goal" not in lines[2]  # the goals are for the CPU


def test_pipeline_options_parse():
    args = _parse(["pipeline", "--size", "tiny", "--num-captions", "5", "--device", "cpu"])
    assert (args.bench_command, args.size, args.num_captions, args.preset, args.repeats) == \
        ("pipeline", "tiny", 5, "base", 3)
    assert bench.TARGETS["pipeline"] == "engine.bench.pipeline"


@pytest.mark.parametrize("text", ["1024", "axb", "0x10", "10x-1"])
def test_bad_sizes(text):
    with pytest.raises(InputError):
        parse_size(text)


def test_bench_help_needs_no_torch():
    code = ("import sys, argparse\nfrom engine.commands import bench\np = argparse.ArgumentParser()\n"
            "bench.add_arguments(p)\np.parse_args(['segment'])\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
