"""``python -m gui.bench_open``: how long the app takes to open a large project.

Times what the user waits for: the window built on the project (``QMaskApp``), the image list
filled and the first image shown (``start``), and the events after it, until the window is
idle. The project is ``--project FILE``, or one of ``--images N`` light image rows (default
100,000) made in a temporary folder (their files are not there: they show as missing, as a
project copied without its images does). The models are not loaded (only the opening is timed).
Prints the seconds and what was read from the project (records, list rows, paths).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from .bench_support import bench_folder


def light_project(path: Path, n: int) -> None:
    """A new project at ``path`` of ``n`` image rows without objects, whose files are not there."""
    from engine.project import ImageRecord, Project

    with Project.create(path, writer="bench") as p:
        for start in range(0, n, 10_000):
            p.import_records([ImageRecord(path=f"images/{i // 1000:03d}/img{i:06d}.jpg", width=1024, height=768,
                                          status="ok") for i in range(start, min(n, start + 10_000))])


def open_once(project: Path, work: Path) -> tuple[float, dict]:
    from engine.annotation.settings import PipelineSettings
    from gui.app import AppOptions, QMaskApp, ensure_qapp

    qapp = ensure_qapp()
    t0 = time.perf_counter()
    app = QMaskApp(AppOptions(project=str(project), models_dir=str(work / "no-models"),
                              settings=PipelineSettings(device="cpu")))
    app.window.resize(1200, 800)
    app.window.show()
    app.start(check_models=False)
    qapp.processEvents()
    seconds = time.perf_counter() - t0
    reads = dict(app.project.reads)
    app.shutdown()
    app.window.close()
    qapp.processEvents()
    return seconds, reads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gui.bench_open", description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", help="time this project (default: a new one of --images light rows)")
    parser.add_argument("--images", type=int, default=100_000, help="images in the made project (default 100,000)")
    parser.add_argument("--rounds", type=int, default=3, help="openings timed (default 3; the median is printed)")
    args = parser.parse_args(argv)
    work = bench_folder("open")
    project = Path(args.project) if args.project else work / "light.qmask"
    if not args.project:
        t0 = time.perf_counter()
        light_project(project, args.images)
        print(f"made {project} ({args.images:,} images) in {time.perf_counter() - t0:.1f} s")
    times = []
    for _ in range(args.rounds):
        seconds, reads = open_once(project, work)
        times.append(seconds)
        print(f"  opened in {seconds:.2f} s; read {reads}")
    print(f"app open, window to first image shown: median {statistics.median(times):.2f} s "
          f"over {len(times)} openings")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
