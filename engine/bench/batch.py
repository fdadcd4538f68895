"""``qmask bench batch``: images/s of ``qmask batch --ray`` per worker count, against the local batch.

On N synthetic images (128 x 96 PNG, a bright rectangle on grey) in a temporary folder, with the
models of ``--models DIR``, or tiny random models made in the temporary folder when it is not
given (the output says so: such figures measure QMask and Ray's overhead, not a real chain):

- the local batch (``run_batch`` in this process, torch limited to ``--cpus-per-worker``
  threads, as each Ray worker is): seconds per image;
- for each count in ``--workers``: ``run_batch`` on a pool of that many Ray workers (a local
  Ray instance, or ``--ray ADDRESS``), into a new project each time.

Rates are steady-state: from the moment every worker has delivered its first image to the last
image (start-up, i.e. Ray, the worker processes and the models loading, is printed apart).
Printed: images/s per worker count, the speed-up and scaling efficiency against one worker, and
the per-image overhead of one Ray worker against the local batch. Goals (issue 17, on the 2-core
reference CPU with tiny models) are printed as met or missed, never asserted: 2 workers give at
least 1.8x the images/s of 1 worker; Ray's overhead per image is at most 10% of the local batch.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import InputError

QUESTION = "what is bright?"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=int, default=48, metavar="N", help="images per run (default 48)")
    parser.add_argument("--workers", default="1,2", help="worker counts to time, comma-separated (default 1,2)")
    parser.add_argument("--ray", metavar="ADDRESS", default=None,
                        help="a running cluster ('auto', 'ray://HOST:10001'); default: a local Ray instance")
    parser.add_argument("--models", help="models folder (default: tiny random models made for the run)")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0,
                        help="CPUs (torch threads) per worker and for the local batch (default 1)")
    parser.add_argument("--gpus-per-worker", type=float, default=None, help="GPUs per worker (default: Ray's plan)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--num-captions", type=int, default=3, help="captions per image (default 3)")


def _images(folder: Path, n: int) -> Path:
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        a = np.full((96, 128, 3), 40, np.uint8)
        y, x = rng.integers(0, 60, 2)
        a[y:y + 30, x:x + 40] = rng.integers(120, 255, 3)
        Image.fromarray(a).save(folder / f"img_{i:04d}.png")
    return folder


def _timed(run, n: int, workers: int) -> tuple[float, float, float]:
    """(seconds per image in steady state, images/s, seconds until every worker delivered)."""
    stamps: list[float] = []
    t0 = time.perf_counter()
    report = run(lambda *a: stamps.append(time.perf_counter()))
    if report.processed != n or report.failed:
        raise InputError(f"The benchmark batch did not process every image: {report}")
    first = min(workers, n - 1)  # each worker has delivered at least once by then (or nearly)
    span = stamps[-1] - stamps[first - 1]
    per_image = span / (n - first)
    return per_image, 1.0 / per_image, stamps[first - 1] - t0


def _load() -> str:
    try:
        return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    except OSError:  # not on this system
        return "load average unknown"


def main(args: argparse.Namespace) -> int:
    import torch

    from ..annotation.batch import run_batch
    from ..annotation.batch_ray import ClusterOptions, connect, import_ray
    from ..annotation.settings import PipelineSettings

    ray = import_ray()
    try:
        counts = sorted({int(w) for w in str(args.workers).split(",") if w.strip()})
    except ValueError:
        counts = []
    n = int(args.images)
    if not counts or min(counts) < 1:
        raise InputError(f"--workers takes worker counts such as 1,2,4, not {args.workers!r}.")
    if n < 2 * max(counts) + 2:
        raise InputError(f"--images must be at least {2 * max(counts) + 2} for {max(counts)} workers.")
    tmp = Path(tempfile.mkdtemp(prefix="qmask-bench-batch-"))
    p = print
    owns = False
    try:
        models = args.models
        tiny = models is None
        if tiny:
            from ..models.random_models import make_random_models

            models = tmp / "tiny-models"
            make_random_models(models, size="tiny", seed=0)
        folder = _images(tmp / "images", n)
        threads = max(1, round(args.cpus_per_worker))

        def settings() -> PipelineSettings:
            return PipelineSettings(device=args.device, num_captions=args.num_captions, seed=0)

        p(f"qmask bench batch: {n} images ({QUESTION!r}, {args.num_captions} captions), "
          + (f"tiny random models made in {models} (figures for QMask and Ray, not a real chain)" if tiny
             else f"models in {models}") + f"; {os.cpu_count()} CPU(s) here, {_load()}")
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            local, local_rate, local_start = _timed(
                lambda done: run_batch(folder, [QUESTION], tmp / "local.qmask", settings=settings(),
                                       models_dir=models, show_progress=False, on_image_done=done), n, 1)
        finally:
            torch.set_num_threads(before)
        p(f"local batch ({threads} torch thread(s)): {local * 1000:.0f} ms per image, {local_rate:.2f} images/s "
          f"(first image after {local_start:.1f} s)")

        t = time.perf_counter()
        owns = connect(ray, args.ray)
        p(f"Ray: {'joined ' + args.ray if args.ray else 'local instance started'} in {time.perf_counter() - t:.1f} s; "
          f"cluster resources {ray.cluster_resources().get('CPU', 0):g} CPU, {ray.cluster_resources().get('GPU', 0):g} GPU")
        rates: dict[int, float] = {}
        per: dict[int, float] = {}
        for w in counts:
            cluster = ClusterOptions(address=args.ray, workers=w, cpus_per_worker=args.cpus_per_worker,
                                     gpus_per_worker=args.gpus_per_worker)
            per[w], rates[w], start = _timed(
                lambda done, w=w, cluster=cluster: run_batch(
                    folder, [QUESTION], tmp / f"ray-{w}.qmask", settings=settings(), models_dir=models,
                    show_progress=False, on_image_done=done, cluster=cluster), n, w)
            line = (f"ray, {w} worker(s): {rates[w]:.2f} images/s ({per[w] * 1000:.0f} ms per image; every worker "
                    f"delivering after {start:.1f} s)")
            if w != counts[0]:
                speedup = rates[w] / rates[counts[0]]
                line += f"; {speedup:.2f}x {counts[0]} worker(s), scaling efficiency {speedup * counts[0] / w:.0%}"
            p(line)
        if 1 in per:
            overhead = per[1] / local - 1
            p(f"Ray overhead per image, 1 worker against the local batch: {(per[1] - local) * 1000:+.1f} ms "
              f"({overhead:+.1%})")
        p(f"{_load()} at the end: other work on this machine slows every figure, the scaling most")
        p("Goals (issue 17; the 2-core reference CPU, tiny models):")
        if 1 in rates and 2 in rates:
            ratio = rates[2] / rates[1]
            p(f"  2 workers >= 1.8x the images/s of 1: {ratio:.2f}x: {'met' if ratio >= 1.8 else 'missed'}")
        if 1 in per:
            p(f"  Ray overhead per image <= 10% of the local batch: {overhead:+.1%}: "
              f"{'met' if overhead <= 0.10 else 'missed'}")
        if not tiny or (os.cpu_count() or 0) != 2:
            p("  (this run is not the reference setting: compare with care)")
        sys.stdout.flush()
    finally:
        if owns:
            ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0
