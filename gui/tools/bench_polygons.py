"""The Polygon tool on a large mask: ``python -m gui.tools.bench_polygons``.

Opens the real window (offscreen unless a display is set) on a ``--size`` photo (default
4000x3000, 12 megapixels) with tiny random models (made in a temporary folder), gives it a
mask (an ellipse with three holes, or with ``--noisy`` a model-like mask of a noise photo:
thousands of ragged parts) as one edit of the object a click made, then for each ``--tolerance`` picks
the Polygon tool and prints: the time until the rings are shown (traced on a background
thread), the longest the GUI thread was unavailable meanwhile (a 5 ms timer's worst gap), the
GUI-thread time to show them and to repaint the canvas, and for one real vertex drag the
GUI-thread time per move event and for the release (the edit written back as the mask, saved
and redrawn). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from gui.tools.bench_support import (StallProbe, bench_folder, click_at, image_shown, models_folder, open_app,
                               timed_move, timed_release)
from gui.tools.bench_support import wait as bench_wait


def ellipse_mask(h: int, w: int):
    """``[h, w]`` bool: a tilted ellipse with three round holes."""
    import cv2
    import numpy as np

    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, h // 2), (int(w * 0.4), int(h * 0.38)), 20, 0, 360, 1, -1)
    for k in range(3):  # three holes
        cv2.circle(mask, (int(w * (0.35 + 0.15 * k)), int(h * 0.5)), int(min(w, h) * 0.06), 0, -1)
    return mask.astype(bool)


def noisy_mask(h: int, w: int, seed: int = 0):
    """``[h, w]`` bool as EfficientSAM draws a noise photo: random 256 x 256 logits, upsampled
    bilinearly to the image and thresholded, so thousands of ragged parts and holes."""
    import cv2
    import numpy as np

    logits = np.random.default_rng(seed).standard_normal((256, 256)).astype(np.float32)
    return cv2.resize(logits, (w, h), interpolation=cv2.INTER_LINEAR) > 0.5


def choose_polygon_tool(app, wait, seconds: float = 600.0) -> tuple[float, float | None]:
    """Pick the Polygon tool (its action, as its key does) and wait until its rings are shown:
    (ms the tool switch took on the GUI thread, ms until the rings were shown, None if they
    were not within ``seconds``)."""
    layer = app.window.canvas.polygons
    shown: list[float] = []
    mark = lambda: shown.append(time.perf_counter())  # noqa: E731
    layer.shapes_shown.connect(mark)
    try:
        chosen = time.perf_counter()
        app.window.action_map["tool_polygon"].trigger()
        trigger_ms = (time.perf_counter() - chosen) * 1000
        try:
            wait(lambda: bool(shown), seconds)
        except TimeoutError:
            return trigger_ms, None
        return trigger_ms, (shown[0] - chosen) * 1000
    finally:
        layer.shapes_shown.disconnect(mark)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gui.tools.bench_polygons", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="4000x3000", help="photo size WxH (default 4000x3000)")
    parser.add_argument("--tolerance", default="2,0.5", help="polygon tolerances in pixels, comma-separated")
    parser.add_argument("--moves", type=int, default=40, help="move events in the vertex drag")
    parser.add_argument("--noisy", action="store_true", help="a ragged, model-like mask of many parts "
                                                             "(default: an ellipse with three holes)")
    args = parser.parse_args(argv)
    work = bench_folder("polygons")

    import numpy as np
    from PIL import Image
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    models = models_folder(work)
    w, h = (int(v) for v in args.size.lower().split("x"))
    photo = work / "photo.png"
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(photo)
    mask = noisy_mask(h, w) if args.noisy else ellipse_mask(h, w)

    qapp, app = open_app(work, photo, models)
    probe = StallProbe(5)

    def wait(cond, seconds: float = 600.0) -> None:  # in short slices: the probe's ticks are what is measured
        bench_wait(qapp, cond, seconds, slice_ms=5)

    wait(lambda: app.controller.models is not None and image_shown(app))
    session, canvas, layer = app.workspace.current, app.window.canvas, app.window.canvas.polygons
    click_at(app, w / 2, h / 2)  # an object, selected: the mask is its
    wait(lambda: session.segmentation is not None)
    app.controller.edits.replace_mask(mask, "Set mask")
    seen = len(app.window.messages.history)
    for tolerance in (float(t) for t in args.tolerance.split(",")):
        app.window.action_map["tool_points"].trigger()
        app.window.tolerance_box.setValue(tolerance)
        wait(lambda: not layer.tracing)
        with probe:
            trigger_ms, shown_ms = choose_polygon_tool(app, wait)
        vertices = sum(len(s.outer) + sum(len(r) for r in s.holes) for s in layer.shapes)
        notes = [m for level, m in app.window.messages.history[seen:]]
        seen = len(app.window.messages.history)
        start = time.perf_counter()
        canvas.viewport().repaint()
        paint_ms = (time.perf_counter() - start) * 1000
        print(f"{w}x{h} mask, tolerance {tolerance:g} px: {len(layer.shapes)} part(s), {vertices} vertices; "
              f"rings shown {shown_ms:.0f} ms after choosing the tool")
        print(f"  GUI thread: tool switch {trigger_ms:.1f} ms, longest stall while tracing "
              f"{probe.worst:.0f} ms, canvas repaint with the rings {paint_ms:.1f} ms")
        for note in notes:
            print(f"  said: {note}")
        # one real vertex drag: the outer ring's first vertex, outwards
        ring = layer.shapes[0].outer
        vx, vy = ring[0]
        cx, cy = ring.mean(0)
        target = (vx + (vx - cx) * 0.05, vy + (vy - cy) * 0.05)
        vp = canvas.viewport()
        p0, p1 = canvas.image_to_viewport(vx, vy), canvas.image_to_viewport(*target)
        QTest.mousePress(vp, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, p0)
        moves = [timed_move(qapp, vp, p0 + (p1 - p0) * (i / args.moves))[0] for i in range(1, args.moves + 1)]
        steps = session.listener.undo_stack.index()
        release_ms = timed_release(qapp, vp, p1)[0]
        written = session.listener.undo_stack.index() == steps + 1
        print(f"  vertex drag: per move median {statistics.median(moves):.1f} ms, worst {max(moves):.1f} ms; "
              f"release (written back as the mask, saved, redrawn) {release_ms:.0f} ms"
              f"{'' if written else ' (no undo step: nothing changed?)'}")
        session.listener.undo_stack.undo()
        wait(lambda: not layer.tracing)
    app.shutdown()
    app.window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
