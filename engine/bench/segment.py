"""``qmask bench segment``: EfficientSAM encoder time and click-to-mask latency.

Builds the published EfficientSAM-Ti / -S architectures with *random weights* (no download
needed; timings do not depend on the weights, masks are meaningless) and measures, per
device and variant:

- encoder: ``Segmenter.set_image`` on a new image of each size (preprocessing included);
- click-to-mask: ``Segmenter.predict`` with two points (one positive, one negative), full-size
  masks of all three candidates included, on an image already encoded, back to back;
- click after idle: the same, each click after ``--idle-ms`` of idle time (as a user clicks),
  which includes waking idle cores (costly on some virtual machines).

Each figure is the median of ``repeats`` runs after ``warmup`` runs, with min and max.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import InputError

DEFAULT_SIZES = ("1024x768", "4000x3000")
DEFAULT_VARIANTS = ("vitt", "vits")
VARIANT_NAMES = {"vitt": "EfficientSAM-Ti", "vits": "EfficientSAM-S", "tiny": "tiny test model"}
# Goals for click-to-mask on a 2-core CPU, by image size (ms).
CPU_CLICK_GOALS_MS = {"1024x768": 30.0, "4000x3000": 60.0}
DEFAULT_IDLE_MS = 50.0
IDLE_CLICK = "click after idle"


@dataclass(frozen=True)
class Timing:
    device: str
    variant: str
    dtype: str
    what: str  # "encoder" | "click-to-mask"
    size: str  # "WxH"
    seconds: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000

    @property
    def min_ms(self) -> float:
        return min(self.seconds) * 1000

    @property
    def max_ms(self) -> float:
        return max(self.seconds) * 1000


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` -> (W, H)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"Image sizes are written WxH, e.g. 1024x768, not {text!r}.") from None
    if w < 1 or h < 1:
        raise InputError(f"Image size {text!r} must be positive.")
    return w, h


def _devices(spec: str | Sequence[str]) -> list[str]:
    import torch

    items = [spec] if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for item in items:
        if item == "auto":
            out += ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        else:
            out.append(item)
    return list(dict.fromkeys(out))


def _timed(fn: Callable[[int], object], repeats: int, warmup: int, idle_s: float = 0.0) -> tuple[float, ...]:
    """Seconds of each of ``repeats`` calls (after ``warmup``), each after ``idle_s`` of sleep."""
    for i in range(warmup):
        fn(-1 - i)
    times = []
    for i in range(repeats):
        if idle_s > 0:
            time.sleep(idle_s)  # not timed
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return tuple(times)


def run_benchmark(sizes: Sequence[str] = DEFAULT_SIZES, variants: Sequence[str] = DEFAULT_VARIANTS,
                  devices: str | Sequence[str] = "auto", repeats: int = 5, warmup: int = 1,
                  dtype: str | None = None, report: Callable[[str], None] = print,
                  idle_ms: float = DEFAULT_IDLE_MS) -> list[Timing]:
    """Encoder and click-to-mask timings. With ``idle_ms`` > 0, clicks are also timed after that
    much idle time each ("click after idle"): a user clicks now and then, and on some machines
    waking idle cores costs more than back-to-back clicks show."""
    import numpy as np
    import torch

    from ..runtime.devices import describe_device, resolve_device
    from ..sam.model import EfficientSamConfig, build_efficient_sam
    from ..prompts import Point
    from ..sam.segmenter import Segmenter

    if repeats < 1 or warmup < 0 or idle_ms < 0:
        raise InputError("repeats must be at least 1, and warmup and idle-ms at least 0.")
    parsed = [(s, *parse_size(s)) for s in sizes]
    for v in variants:
        if v not in VARIANT_NAMES:
            raise InputError(f"Unknown variant {v!r}; choose from {', '.join(VARIANT_NAMES)}.")
    rng = np.random.default_rng(0)
    images = {s: rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for s, w, h in parsed}
    results: list[Timing] = []
    for dev_spec in _devices(devices):
        device = resolve_device(dev_spec)
        for variant in variants:
            config = EfficientSamConfig.tiny() if variant == "tiny" else EfficientSamConfig.preset(variant)
            torch.manual_seed(0)
            model = build_efficient_sam(config)
            params = sum(p.numel() for p in model.parameters()) / 1e6
            seg = Segmenter(model, device=device, dtype=dtype, cache_size=2)
            report(f"\n{VARIANT_NAMES[variant]} ({variant}, {params:.1f}M parameters, random weights) on "
                   f"{describe_device(device)}, {str(seg.dtype).replace('torch.', '')}")
            for label, w, h in parsed:
                img = images[label]

                def encode(i: int, img=img, label=label) -> None:
                    seg.set_image(img, f"{label}-{i}")  # a new id each time: always encodes

                results.append(Timing(str(device), variant, str(seg.dtype), "encoder", label,
                                      _timed(encode, repeats, warmup)))
                _print(results[-1], report)
            for label, w, h in parsed:
                seg.set_image(images[label], f"{label}-click")

                def click(i: int, w=w, h=h) -> None:
                    # Slightly different clicks each time, as when a user drags a point.
                    dx = (i % 7) * 0.01 * w
                    seg.predict([Point(0.35 * w + dx, 0.45 * h), Point(0.7 * w, 0.6 * h - dx, label=0)])

                results.append(Timing(str(device), variant, str(seg.dtype), "click-to-mask", label,
                                      _timed(click, repeats, warmup)))
                _print(results[-1], report)
                if idle_ms > 0:
                    results.append(Timing(str(device), variant, str(seg.dtype), IDLE_CLICK, label,
                                          _timed(click, repeats, 0, idle_ms / 1000)))
                    _print(results[-1], report)
            del seg, model
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return results


def _print(t: Timing, report: Callable[[str], None]) -> None:
    goal = ""
    # The goal holds for both kinds of click: a user's clicks come after idle time.
    if t.what in ("click-to-mask", IDLE_CLICK) and t.device == "cpu" and t.size in CPU_CLICK_GOALS_MS:
        target = CPU_CLICK_GOALS_MS[t.size]
        goal = f"  [goal <= {target:.0f} ms on 2 CPU cores: {'met' if t.median_ms <= target else 'not met'}]"
    report(f"  {t.what:<16} {t.size:>10}  median {t.median_ms:9.1f} ms  (min {t.min_ms:.1f}, max {t.max_ms:.1f}, "
           f"n={len(t.seconds)}){goal}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", nargs="+", default=list(DEFAULT_SIZES), metavar="WxH",
                        help="image sizes (default: %(default)s)")
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), choices=list(VARIANT_NAMES),
                        help="EfficientSAM variants (default: %(default)s; 'tiny' is for tests)")
    parser.add_argument("--devices", nargs="+", default=["auto"],
                        help="cpu, cuda, cuda:N, or auto = cpu and cuda if present (default: auto)")
    parser.add_argument("--dtype", default=None,
                        help="float32 (default), float16 / bfloat16 (CUDA), or auto")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure (default: 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (default: 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--idle-ms", type=float, default=DEFAULT_IDLE_MS,
                        help="also time clicks that each follow this much idle time, as when a user "
                             "clicks now and then (default: %(default)s; 0 skips)")


def main(args: argparse.Namespace) -> int:
    """Run the benchmark with ``args`` (see :func:`add_arguments`; missing fields take defaults)."""
    import torch

    from .pipeline import cpu_gemm_gflops
    from ..runtime.cpu_linear import packing_enabled
    from ..runtime.cpu_tuning import keep_freed_memory, openmp_wait_description

    tuned = keep_freed_memory()  # the front door did this already; `python -m` callers too
    threads = getattr(args, "threads", None)
    if threads:
        torch.set_num_threads(threads)
    print("EfficientSAM segmentation benchmark: RANDOM WEIGHTS (timings only; the masks are meaningless).")
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} CPU threads, {openmp_wait_description()}, "
          f"allocator keeps freed memory: {'yes' if tuned else 'no'}, "
          f"CPU Linear layers: {'oneDNN, packed' if packing_enabled() else 'plain PyTorch'}. "
          "On a shared machine, spread reflects other load.")
    devices = getattr(args, "devices", "auto")
    on_cpu = "cpu" in _devices(devices)
    before = cpu_gemm_gflops() if on_cpu else None
    run_benchmark(sizes=getattr(args, "sizes", DEFAULT_SIZES), variants=getattr(args, "variants", DEFAULT_VARIANTS),
                  devices=devices, repeats=getattr(args, "repeats", 5),
                  warmup=getattr(args, "warmup", 1), dtype=getattr(args, "dtype", None),
                  idle_ms=getattr(args, "idle_ms", DEFAULT_IDLE_MS))
    if before is not None:  # a slow stretch of a shared machine shows here (see cpu_gemm_gflops)
        print(f"\nCPU speed check (fp32 GEMM 4096x256x256): {before:.0f} GFLOPS before the figures, "
              f"{cpu_gemm_gflops():.0f} after")
    return 0
