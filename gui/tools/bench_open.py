"""``python -m gui.tools.bench_open``: how long the app takes to open a large project, or a folder.

Times what the user waits for: the window built on the project (``QMaskApp``), the image list
filled and the first image shown (``start``), and the events after it, until the window is
idle. The project is ``--project FILE``, or one of ``--images N`` light image rows (default
100,000) made in a temporary folder (their files are not there: they show as missing, as a
project copied without its images does). The models are not loaded (only the opening is timed).
Prints the seconds and what was read from the project (records, list rows, paths).

``--folder N``: instead, File > Open folder… on a folder of N small JPEGs, in a window showing
one photo; prints the GUI thread's worst stall (the longest gap between ticks of a 5 ms timer)
from the menu command until the watch for other processes' changes has looked twice after it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from gui.tools.bench_support import bench_folder


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


def open_folder_stall(work: Path, n: int) -> tuple[float, int]:
    """(worst GUI-thread stall in ms, images listed): File > Open folder… on ``n`` small JPEGs."""
    import numpy as np
    from PIL import Image
    from PySide6 import QtCore, QtWidgets

    from engine.annotation.settings import PipelineSettings
    from gui.app import AppOptions, QMaskApp, ensure_qapp

    from gui.tools.bench_support import wait, wait_idle

    folder = work / "folder"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(folder / f"img{i:05d}.jpg")
    photo = work / "photo.jpg"
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(photo)
    qapp = ensure_qapp()
    app = QMaskApp(AppOptions(images=[str(photo)], project=str(work / "folder.qmask"),
                              models_dir=str(work / "no-models"), settings=PipelineSettings(device="cpu")))
    app.window.resize(1200, 800)
    app.window.show()
    app.start(check_models=False)
    wait_idle(qapp, 1.0)
    gaps, last = [0.0], [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1000)
        last[0] = now

    probe = QtCore.QTimer()
    probe.setInterval(5)
    probe.timeout.connect(tick)
    QtWidgets.QFileDialog.getExistingDirectory = staticmethod(lambda *args, **kwargs: str(folder))
    last[0] = time.perf_counter()
    probe.start()
    app.window.action_map["open_folder"].trigger()
    wait(qapp, lambda: len(app.workspace.ids) > n and app.workspace.current.name == "img00000.jpg", 600, 5)
    looks = app.workspace.watch.looks
    wait(qapp, lambda: app.workspace.watch.looks >= looks + 2, 600, 5)
    probe.stop()
    listed = len(app.workspace.ids)
    app.shutdown()
    app.window.close()
    qapp.processEvents()
    return max(gaps), listed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gui.tools.bench_open", description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", help="time this project (default: a new one of --images light rows)")
    parser.add_argument("--images", type=int, default=100_000, help="images in the made project (default 100,000)")
    parser.add_argument("--rounds", type=int, default=3, help="openings timed (default 3; the median is printed)")
    parser.add_argument("--folder", type=int, metavar="N",
                        help="instead: File > Open folder… on N small JPEGs, the GUI thread's worst stall")
    args = parser.parse_args(argv)
    work = bench_folder("open")
    if args.folder:
        stall, listed = open_folder_stall(work, args.folder)
        print(f"File > Open folder… on {args.folder:,} JPEGs ({listed:,} images listed): worst GUI-thread stall "
              f"{stall:.0f} ms")
        return 0
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
