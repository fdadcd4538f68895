"""GUI-thread time per action on an image holding many objects: ``python -m gui.tools.bench_objects``
(also run by ``qmask bench objects``).

Builds a project with one photo (``--size``, default 4000x3000: 12 megapixels) holding
``--objects`` objects (default 1,000: ellipses and rectangles of 20-200 pixels in 8 classes, the
way a crowded dataset image looks), opens it in the real window (offscreen unless a display is
set) with tiny random models, and times each action ``--repeats`` times, as the user does it:

- *select*: the J key (next object): the panel's current row, the selection drawn, the
  candidates and class box of the new object;
- *show/hide*: a click on an object's eye in the Objects panel;
- *relabel*: a digit key giving the selected object class 2 or 3;
- *select, from a whole-image mask*: J away from an object whose mask covers the image (the
  tiny random decoder's masks do): its box is the whole image, so every object under it is
  painted again into the label map;
- *point edit*: a click inside the selected object (a new positive point) until its new mask is
  shown: the click's own handling plus the decoder reply's (``LiveSegmenter._on_reply``: the
  mask into the session, panels, layers and the objects view), the decoder itself off the GUI
  thread.

Each figure is the GUI thread's wall time (until the window has handled the event and what it
posted, the repaint included) and its own CPU time, median and worst. Goal (issue 23): at most
25 ms each. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

GOAL_MS = 25.0


def build_project(path: Path, photo: Path, size: tuple[int, int], n: int, seed: int = 0) -> None:
    """A project of one image holding ``n`` objects (random ellipses and rectangles) in 8 classes."""
    import cv2
    import numpy as np

    from engine.imaging.masks import encode_rle
    from engine.project import ImageRecord, ObjectRecord, Project

    w, h = size
    rng = np.random.default_rng(seed)
    classes = ["person", "car", "dog", "cat", "bicycle", "bird", "bottle", "chair"]
    objects = []
    for k in range(n):
        bw, bh = (int(v) for v in rng.integers(20, 200, 2))
        x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
        crop = np.zeros((bh, bw), np.uint8)
        if k % 2:
            cv2.ellipse(crop, (bw // 2, bh // 2), (bw // 2 - 1, bh // 2 - 1), 0, 0, 360, 1, -1)
        else:
            crop[:] = 1
        mask = np.zeros((h, w), bool)
        mask[y0:y0 + bh, x0:x0 + bw] = crop.astype(bool)
        rle = encode_rle(mask)
        objects.append(ObjectRecord(category=classes[k % len(classes)], mask_rle=rle, auto_mask_rle=dict(rle),
                                    mask_source="import", source="import", order=k))
    with Project.create(path) as project:
        project.set_classes(classes)
        project.import_records([ImageRecord(path=project.rel_path(photo), width=w, height=h, status="ok",
                                            objects=objects)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gui.tools.bench_objects", description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--size", default="4000x3000", help="photo size WxH (default 4000x3000)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--models", help="models folder (default: tiny random models, made now)")
    parser.add_argument("--profile", action="store_true", help="also print where each action's GUI-thread time goes")
    args = parser.parse_args(argv)
    from gui.tools.bench_support import bench_folder, models_folder, open_app, wait, wait_idle

    work = bench_folder("objects")
    import numpy as np
    from PIL import Image
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    from gui.control.live_segmentation import LiveSegmenter

    w, h = (int(v) for v in args.size.lower().split("x"))
    photo = work / "photo.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(photo)
    print(f"building a project: one {w}x{h} image holding {args.objects:,} objects ...", flush=True)
    build_project(work / "p.qmask", photo, (w, h), args.objects)
    models = models_folder(work, args.models)

    replies: list[tuple[float, float]] = []
    on_reply = LiveSegmenter._on_reply

    def timed_reply(self, reply) -> None:
        start, cpu = time.perf_counter(), time.thread_time()
        on_reply(self, reply)
        replies.append(((time.perf_counter() - start) * 1000, (time.thread_time() - cpu) * 1000))

    LiveSegmenter._on_reply = timed_reply
    qapp, app = open_app(work, photo, models)
    ws, window = app.workspace, app.window
    objects_view = app.controller.objects
    t0 = time.perf_counter()
    wait(qapp, lambda: ws.current is not None and ws.current.image is not None
         and objects_view.label_map is not None and app.controller.models is not None)
    print(f"image shown with its {len(ws.current.objects):,} objects drawn: {time.perf_counter() - t0:.1f} s "
          "after the window opened (models loading meanwhile)")
    wait_idle(qapp, 1.0)
    session, canvas, panel = ws.current, window.canvas, window.objects_panel

    profiles: dict[str, object] = {}

    def timed(action, name: str = "") -> tuple[float, float]:
        profiler = None
        if args.profile:
            import cProfile

            profiler = profiles.setdefault(name, cProfile.Profile())
            profiler.enable()
        start, cpu = time.perf_counter(), time.thread_time()
        action()
        qapp.processEvents()  # what the action posted: the repaint
        elapsed = (time.perf_counter() - start) * 1000, (time.thread_time() - cpu) * 1000
        if profiler is not None:
            profiler.disable()
        return elapsed

    results: dict[str, list[tuple[float, float]]] = {"select (J)": [], "show/hide (eye)": [],
                                                     "relabel (digit key)": [], "point edit (click + mask)": [],
                                                     "select, from a whole-image mask": []}
    canvas.setFocus()
    for i in range(args.repeats):  # the objects as imported
        results["select (J)"].append(timed(lambda: QTest.keyClick(canvas, QtCore.Qt.Key.Key_J), "select (J)"))
        wait_idle(qapp, 0.05)
        uid = session.selected
        row = panel.model.row_of(uid)
        panel.view.scrollTo(panel.model.index(row, 0))
        eye = panel.view.visualRect(panel.model.index(row, 4)).center()
        results["show/hide (eye)"].append(timed(lambda: QTest.mouseClick(panel.view.viewport(),
                                                                         QtCore.Qt.MouseButton.LeftButton, pos=eye)))
        wait_idle(qapp, 0.05)
        session.set_hidden(uid, False)
        key = QtCore.Qt.Key.Key_2 if i % 2 else QtCore.Qt.Key.Key_3
        canvas.setFocus()
        results["relabel (digit key)"].append(timed(lambda: QTest.keyClick(canvas, key), "relabel (digit key)"))
        wait_idle(qapp, 0.05)
    for i in range(args.repeats):  # a click in each: the tiny random decoder's mask covers the whole image
        name = "select, from a whole-image mask" if i else "select (J)"
        timing = timed(lambda: QTest.keyClick(canvas, QtCore.Qt.Key.Key_J), name)
        if i:  # the first J leaves an imported object: counted as a plain select
            results[name].append(timing)
        wait_idle(qapp, 0.05)
        uid = session.selected
        obj = session.objects[uid]
        ys, xs = np.nonzero(obj.mask)
        x, y = float(xs.mean()) + 0.5, float(ys.mean()) + 0.5
        canvas.vb.setRange(QtCore.QRectF(x - 400, y - 300, 800, 600), padding=0)  # the object in view
        wait_idle(qapp, 0.05)
        before = len(replies)
        click = timed(lambda: QTest.mouseClick(canvas.viewport(), QtCore.Qt.MouseButton.LeftButton,
                                               QtCore.Qt.KeyboardModifier.NoModifier, canvas.image_to_viewport(x, y)))
        wait(qapp, lambda: len(replies) > before and not session.needs_segmentation(), seconds=60)
        reply = replies[-1]
        results["point edit (click + mask)"].append((click[0] + reply[0], click[1] + reply[1]))
        wait_idle(qapp, 0.05)
    print(f"\nGUI-thread time per action, {args.repeats} each, on a {w}x{h} image holding {args.objects:,} objects "
          f"(goal: at most {GOAL_MS:.0f} ms each):")
    for name, values in results.items():
        walls, cpus = [v[0] for v in values], [v[1] for v in values]
        print(f"  {name:28s} wall median {statistics.median(walls):6.1f} ms, worst {max(walls):6.1f} ms | "
              f"CPU median {statistics.median(cpus):6.1f} ms, worst {max(cpus):6.1f} ms | "
              f"{'met' if max(walls) <= GOAL_MS else 'MISSED (worst)' if statistics.median(walls) <= GOAL_MS else 'MISSED'}")
    print(f"(load average: {', '.join(f'{v:.2f}' for v in os.getloadavg())}; wall time includes waiting for a core)")
    for name, profiler in profiles.items():
        import io
        import pstats

        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(10)
        print(f"\nwhere {name} spends its time (all repeats, by own time):\n" + out.getvalue().split("\n\n", 2)[-1])
    app.window.close()
    app.shutdown()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
