"""GUI-thread time per click while the engine writes captions: ``python -m gui.tools.bench_clicks``.

Opens the real window (offscreen unless a display is set) on a photo with tiny random models
(made in a temporary folder) or ``--models DIR``, asks a question with many captions to write,
and while the engine thread writes them, sends ``--clicks`` real mouse clicks (alternately a
new positive point, then a click on it, which removes it) to the canvas, each once the mask of
the one before is shown. ``--size 4000x3000``
makes the photo 12 megapixels (issue 16). Two figures, each the median and the worst:

- *click*: the synchronous handling of the click (event dispatch, the edit, a cached mask
  shown at once);
- *per click*: that plus what the GUI thread spends, until the next click, on the decoder's
  reply (``LiveSegmenter._on_reply``: the new mask into the session, panels and layers) and on
  painting the canvas. The goal (issue 15 and 16) is at most 25 ms.

Each as wall time (what the user waits) and as the GUI thread's own CPU time (the work itself:
the difference is time waiting for the GIL, which the engine thread holds, or for a CPU that
other processes use; on a shared machine, read the CPU figure beside ``uptime``'s load).

Other GUI-thread work while captions run (their progress, the answer panel) is not counted.

Then, under the same load, the worst GUI-thread stall of each of opening a 3,000-image folder,
opening a 100,000-image project, switching images, a 12 MP brush release, the Polygon tool on a
noisy 12 MP mask and an export, in a table with the goals (:mod:`gui.tools.bench_stalls`).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from gui.tools import bench_stalls

GOAL_MS = 25.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gui.tools.bench_clicks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clicks", type=int, help="clicks timed (default 100; 20 with --quick)")
    parser.add_argument("--models", help="models folder (default: tiny random models, made now)")
    parser.add_argument("--size", default="1024x768", help="photo size WxH (default 1024x768)")
    parser.add_argument("--photo", help="a photo to click on (default: random noise of --size: ragged masks, "
                                        "the hardest case to draw)")
    parser.add_argument("--profile", action="store_true", help="also print where the GUI thread's click time goes")
    parser.add_argument("--pause", type=int, default=30, metavar="MS",
                        help="after each click's mask is shown, wait this long before the next (default 30)")
    parser.add_argument("--zoom-steps", type=int, default=20, metavar="N",
                        help="after the clicks, time N wheel zoom steps with their repaint (default 20; 0: none)")
    parser.add_argument("--switches", type=int, default=5, metavar="N",
                        help="then show N new photos of the same size on the canvas, timed (default 5; 0: none)")
    parser.add_argument("--no-input-priority", action="store_true",
                        help="the engine does not give way to the GUI thread (gui.engine_thread.input_priority), to compare")
    parser.add_argument("--switch-interval", type=float, help="Python's GIL switch interval in ms for this run "
                                                               "(default: the app's)")
    bench_stalls.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.clicks is None:
        args.clicks = 20 if args.quick else 100
    from gui.tools.bench_support import front_door_settings

    front_door_settings()  # before torch loads, as qmask does
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    work = Path(tempfile.mkdtemp(prefix="qmask-bench-clicks-"))
    os.environ.setdefault("QMASK_DATA_DIR", str(work / "data"))

    import numpy as np
    from PIL import Image
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    from engine.annotation.settings import PipelineSettings
    from gui.app import AppOptions, QMaskApp, ensure_qapp
    from gui.canvas.canvas import Canvas
    from gui.control.live_segmentation import LiveSegmenter

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    # What the GUI thread spends on replies and canvas paints goes to the click before it
    # (nothing is counted before the first click).
    after_click: list[list[float]] = []  # per click: [wall ms, GUI-thread CPU ms]

    def timed(method):
        def wrapper(self, *a):
            start, cpu = time.perf_counter(), time.thread_time()
            if profiler is not None and after_click:
                profiler.enable()
            try:
                return method(self, *a)
            finally:
                if profiler is not None and after_click:
                    profiler.disable()
                if after_click:
                    after_click[-1][0] += (time.perf_counter() - start) * 1000
                    after_click[-1][1] += (time.thread_time() - cpu) * 1000
        return wrapper

    replies = []
    on_reply = timed(LiveSegmenter._on_reply)
    LiveSegmenter._on_reply = lambda self, reply: (replies.append(1), on_reply(self, reply))
    Canvas.paintEvent = timed(Canvas.paintEvent)

    models = args.models
    if models is None:
        from engine.models.random_models import make_random_models

        models = str(work / "models")
        make_random_models(models, size="tiny", seed=0)
        print(f"tiny random models in {models} (their answers mean nothing; timings do)")
    if args.photo:
        photo = Path(args.photo)
        with Image.open(photo) as im:
            w, h = im.size
    else:
        w, h = (int(v) for v in args.size.lower().split("x"))
        photo = work / "photo.png"
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(photo)
    qapp = ensure_qapp()
    settings = PipelineSettings(device="cpu", num_captions=400, max_caption_rounds=200, caption_batch_size=2)
    app = QMaskApp(AppOptions(images=[str(photo)], models_dir=models, settings=settings,
                              project=str(work / "p.qmask")))
    app.window.resize(1200, 800)
    app.window.show()
    ready = []
    app.controller.models_ready.connect(lambda _m: ready.append(1))
    app.start(check_models=False)
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval / 1000)
    print(f"GIL switch interval: {sys.getswitchinterval() * 1000:g} ms")
    priority = app.client.priority
    priority.enabled = not args.no_input_priority
    print(f"the engine gives way to the GUI thread (gui.engine_thread.input_priority): {'yes' if priority.enabled else 'no'}")

    failures: list[str] = []
    stages: list[str] = []
    begun = time.monotonic()

    def idle(ms: int) -> None:
        """Wait in Qt's event loop, as the app does between events (QTest.qWait polls instead:
        the GUI thread would look busy to the engine, gui.engine_thread.input_priority, the whole time)."""
        loop = QtCore.QEventLoop()
        QtCore.QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def wait(cond, seconds: float = 600.0, give_up: bool = False) -> None:
        end = time.monotonic() + seconds
        while not cond():
            if failures:
                raise RuntimeError(f"the engine failed: {failures[0]}")
            if time.monotonic() > end:
                if give_up:
                    return
                raise TimeoutError(f"the app did not get there in {seconds:.0f} s (stages so far: {stages})")
            # Idle as the app is between clicks: in Qt's event loop (each event handled as it
            # comes, the GIL free meanwhile), looking at the condition every 5 ms. A loop of
            # processEvents calls would keep the GUI thread busy and starve the engine thread.
            idle(5)

    def on_progress(p) -> None:
        if not stages or stages[-1] != p.stage:
            print(f"  {time.monotonic() - begun:6.1f} s  engine: {p.stage}", flush=True)
        stages.append(p.stage)

    app.client.failed.connect(lambda f: failures.append(f.message))

    wait(lambda: ready and app.workspace.current is not None and app.workspace.current.image is not None)
    app.client.progress.connect(on_progress)
    app.controller.ask("what is in the picture?")
    wait(lambda: "captions" in stages and app.workspace.current.segmentation is not None)
    canvas = app.window.canvas
    times = []
    idle(200)
    gc_pauses: list[float] = []  # collections on the GUI thread during the clicks (gui.engine_thread.gui_thread_gc), ms
    gui_thread, gc_start = threading.get_ident(), [0.0]

    def on_gc(phase: str, _info: dict) -> None:
        if threading.get_ident() == gui_thread:
            if phase == "start":
                gc_start[0] = time.perf_counter()
            else:
                gc_pauses.append((time.perf_counter() - gc_start[0]) * 1000)

    gc.callbacks.append(on_gc)
    waited_before, clicking_since = app.client.worker.gave_way_s, time.perf_counter()
    for i in range(args.clicks):
        after_click.append([0.0, 0.0])
        k = i // 2  # click k's spot twice: a new point, then the same point again, which removes it
        x, y = w * (0.2 + 0.6 * ((k * 37) % 100) / 100), h * (0.3 + 0.4 * ((k * 53) % 100) / 100)
        pos = canvas.image_to_viewport(x, y)
        start, cpu = time.perf_counter(), time.thread_time()
        if profiler is not None:
            profiler.enable()
        QTest.mouseClick(canvas.viewport(), QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier,
                         pos)
        if profiler is not None:
            profiler.disable()
        times.append(((time.perf_counter() - start) * 1000, (time.thread_time() - cpu) * 1000))
        # a person's pace: the mask of the new point is shown (or 2 s pass) before the next click
        wait(lambda: not app.workspace.current.needs_segmentation(), seconds=2.0, give_up=True)
        idle(args.pause)
    gc.callbacks.remove(on_gc)
    still_writing = app.workspace.current.answer is None
    print(f"{args.clicks} clicks on a {w}x{h} photo while the engine wrote captions"
          f"{'' if still_writing else ' (the answer came before the last click)'}:")
    print("load average (1, 5, 15 min): " + ", ".join(f"{v:.1f}" for v in os.getloadavg())
          + f" on {os.cpu_count()} CPUs")
    print(f"decoder replies: {len(replies)} (each new point's mask is shown before the next click, "
          f"unless 2 s pass)")
    if priority.enabled:
        clicking = time.perf_counter() - clicking_since
        waited = app.client.worker.gave_way_s - waited_before
        print(f"the engine gave way to the GUI {waited:.1f} s of the {clicking:.1f} s of clicking "
              f"({100 * waited / clicking:.0f}%: its captions wait meanwhile)")
    if gc_pauses:
        print(f"garbage collections on the GUI thread meanwhile: {len(gc_pauses)}, worst {max(gc_pauses):.1f} ms, "
              f"in all {sum(gc_pauses):.0f} ms")
    totals = [(t[0] + a[0], t[1] + a[1]) for t, a in zip(times, after_click, strict=True)]
    for name, pairs in (("click", times), ("per click (with its reply and paints)", totals)):
        for kind, values in (("wall", [p[0] for p in pairs]), ("its CPU", [p[1] for p in pairs])):
            print(f"GUI-thread time, {name}, {kind}: median {statistics.median(values):.1f} ms, "
                  f"worst {max(values):.1f} ms, 90th percentile {sorted(values)[int(0.9 * len(values)) - 1]:.1f} ms")
    totals = [t[0] for t in totals]
    verdict = "met" if max(totals) <= GOAL_MS else "missed"
    print(f"goal: at most {GOAL_MS:.0f} ms of GUI-thread work per click: {verdict} (worst {max(totals):.1f} ms)")
    if args.zoom_steps:
        zoom = _wheel_zoom(canvas, idle, args.zoom_steps)
        print(f"{args.zoom_steps} wheel zoom steps (in, then out), each with its repaint, the engine writing "
              f"captions: wall median {statistics.median(z[0] for z in zoom):.1f} ms, worst "
              f"{max(z[0] for z in zoom):.1f} ms; its CPU median {statistics.median(z[1] for z in zoom):.1f} ms, "
              f"worst {max(z[1] for z in zoom):.1f} ms")
    if args.switches:
        shows = _image_shows(canvas, idle, args.switches, (h, w))
        print(f"{args.switches} new {w}x{h} photos shown on the canvas (set, fitted, repainted; the file is read on "
              f"a thread of its own), the engine writing captions: wall median {statistics.median(shows):.1f} ms, "
              f"worst {max(shows):.1f} ms")
    if not args.no_stalls:
        app.client.progress.disconnect(on_progress)  # the stalls' table, not each ask's stages
        bench_stalls.run(app, work, bench_stalls.sizes_from(args), statistics.median(totals))
    if profiler is not None:
        import pstats

        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(15)
    app.client.cancel()
    app.shutdown()
    app.window.close()
    return 0


def _image_shows(canvas, idle, n: int, shape: tuple[int, int]) -> list[float]:
    """The canvas' part of switching images: a new photo set, fitted and repainted (wall ms each)."""
    import numpy as np

    photos = [np.random.default_rng(100 + i).integers(0, 256, (*shape, 3), dtype=np.uint8) for i in range(n)]
    out = []
    for rgb in photos:
        start = time.perf_counter()
        canvas.set_image(rgb)
        canvas.fit()
        canvas.viewport().repaint()
        out.append((time.perf_counter() - start) * 1000)
        idle(30)
    return out


def _wheel_zoom(canvas, idle, steps: int) -> list[tuple[float, float]]:
    """Real wheel events at the view's centre (half zooming in, half out), each handled and
    the view repainted at once: [(wall ms, GUI-thread CPU ms)]."""
    from PySide6 import QtCore, QtGui, QtWidgets

    vp = canvas.viewport()
    centre = QtCore.QPointF(vp.width() / 2, vp.height() / 2)
    out = []
    before = canvas.vb.viewRange()
    for i in range(steps):
        delta = 120 if i < steps // 2 else -120
        event = QtGui.QWheelEvent(centre, QtCore.QPointF(vp.mapToGlobal(centre.toPoint())), QtCore.QPoint(0, 0),
                                  QtCore.QPoint(0, delta), QtCore.Qt.MouseButton.NoButton,
                                  QtCore.Qt.KeyboardModifier.NoModifier, QtCore.Qt.ScrollPhase.NoScrollPhase, False)
        start, cpu = time.perf_counter(), time.thread_time()
        QtWidgets.QApplication.sendEvent(vp, event)
        vp.repaint()
        out.append(((time.perf_counter() - start) * 1000, (time.thread_time() - cpu) * 1000))
        idle(30)
        if i == steps // 2 - 1 and canvas.vb.viewRange() == before:
            raise RuntimeError("the wheel events did not zoom the view")
    return out


if __name__ == "__main__":
    sys.exit(main())
