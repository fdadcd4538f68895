"""Many objects on a large image: ``python -m gui.tools.bench_objects_layer``.

Builds a LabelMap of ``--objects`` objects (default 1,000: ellipses from 10 to 1,000 pixels
across, a few large ones under them) on a ``--size`` image (default 4000x3000, 12 megapixels),
shows it with an ObjectsLayer in a real QGraphicsView (offscreen unless a display is set) of
``--view`` pixels (default 1600x1000) fitting the whole image, and prints for each operation the
median and worst GUI-thread milliseconds of the operation, of the synchronous repaint of the
whole viewport that shows it (and the part of it in the layer's paint: Qt's own work apart), and
of both, and the median GUI-thread CPU time of both (what the thread itself used, whatever else
the machine runs). Operations: hide one object, relabel one,
select one (a colour table change each; and select with the selected object drawn on top by a
MaskLayer, as the app will), one object's mask change (``LabelMap.update`` + ``invalidate``: a
brush dab on its edge, and a new mask), a click's hit test (``object_at``), a repaint after a
zoom (a new view rendered), and a repaint with nothing changed. Also the one-off costs of an
image: crops read from COCO RLE, and ``set_objects``.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time


def ellipse_crop(rng: random.Random, h: int, w: int, rx: int, ry: int):
    import cv2
    import numpy as np

    r = min(max(rx, ry), (h - 1) // 2, (w - 1) // 2)  # room for the ellipse at any angle
    cx, cy = rng.randrange(r, w - r), rng.randrange(r, h - r)
    m = np.zeros((2 * r + 1, 2 * r + 1), np.uint8)
    cv2.ellipse(m, (r, r), (min(rx, r), min(ry, r)), rng.uniform(0, 180), 0, 360, 1, -1)
    return cy - r, cx - r, m.astype(bool)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gui.tools.bench_objects_layer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="4000x3000", help="image size WxH (default 4000x3000)")
    parser.add_argument("--objects", type=int, default=1000, help="objects on the image (default 1000)")
    parser.add_argument("--view", default="1600x1000", help="viewport size WxH (default 1600x1000)")
    parser.add_argument("--repeats", type=int, default=30, help="repetitions of each operation")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from gui.tools.bench_support import front_door_settings

    front_door_settings()  # the allocator settings the app runs with (freed view buffers are reused)

    import numpy as np
    from PySide6 import QtCore, QtGui, QtWidgets

    from engine.imaging.label_map import LabelMap, crop_to_mask, rle_crop
    from engine.imaging.rle import encode_rle
    from engine.project.records import palette_color
    from gui.canvas.mask_overlay import MaskLayer
    from gui.canvas.objects_layer import ObjectsLayer

    w, h = (int(v) for v in args.size.lower().split("x"))
    vw, vh = (int(v) for v in args.view.lower().split("x"))
    rng = random.Random(0)
    crops = []
    for i in range(args.objects):
        if i < 5:
            r = rng.randint(600, 1000)  # a few large ones at the bottom (floor, wall, table...)
        else:
            r = int(10 * 1.0055 ** rng.randrange(0, 700)) // 2 + 5  # 10 to ~480 across, mostly small
        crops.append(ellipse_crop(rng, h, w, min(r, w // 2 - 1), min(int(r * rng.uniform(0.5, 1.0)), h // 2 - 1)))
    keys = [f"obj{i:04d}" for i in range(args.objects)]
    classes = {k: palette_color(rng.randrange(20)) for k in keys}
    print(f"{args.objects} objects on {w}x{h}, {sum(int(c[2].sum()) for c in crops) / (w * h):.2f} image areas "
          f"of mask in all; view {vw}x{vh}")

    # one-off costs of an image
    rles = [encode_rle(crop_to_mask(crops[i], h, w)) for i in (0, 10, 500)]
    t = time.perf_counter()
    for rle in rles:
        rle_crop(rle)
    print(f"rle_crop (a large, a medium, a small object): {(time.perf_counter() - t) * 1000 / len(rles):.2f} ms each")
    lm = LabelMap(h, w)
    t = time.perf_counter()
    lm.set_objects(list(zip(keys, crops)))
    print(f"LabelMap.set_objects: {(time.perf_counter() - t) * 1000:.0f} ms (once an image)")

    qapp = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    scene = QtWidgets.QGraphicsScene(0, 0, w, h)
    scene.setBackgroundBrush(QtGui.QColor(38, 40, 44))
    layer = ObjectsLayer()
    layer.set_label_map(lm)
    scene.addItem(layer)
    view = QtWidgets.QGraphicsView(scene)
    view.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
    view.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    view.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    view.resize(vw, vh)
    view.show()
    qapp.processEvents()
    view.fitInView(QtCore.QRectF(0, 0, w, h), QtCore.Qt.AspectRatioMode.KeepAspectRatio)
    hidden: set[str] = set()
    colours = dict(classes)
    selected = [None]

    def style() -> None:
        layer.set_style(colours, hidden=hidden, selected=selected[0])

    def repaint() -> None:
        qapp.processEvents()
        view.viewport().repaint()

    style()
    repaint()
    figures: list[tuple[str, list[float], list[float], list[float], list[float]]] = []
    in_layer = [0.0]  # ms spent in ObjectsLayer.paint (rendering included), Qt's own work apart
    layer_paint = layer.paint

    def paint(*a) -> None:
        t = time.perf_counter()
        layer_paint(*a)
        in_layer[0] += (time.perf_counter() - t) * 1000

    layer.paint = paint

    def timed(name: str, step) -> None:
        """The step and the repaint that shows it, each timed: wall ms (what the person waits;
        other processes on the machine count), the part of the repaint in the layer's paint, and
        the total also as the GUI thread's CPU ms."""
        ops, paints, layer_ms, cpu = [], [], [], []
        for i in range(args.repeats):
            c, t = time.thread_time(), time.perf_counter()
            step(i)
            t1 = time.perf_counter()
            in_layer[0] = 0.0
            repaint()
            t2, c2 = time.perf_counter(), time.thread_time()
            ops.append((t1 - t) * 1000)
            paints.append((t2 - t1) * 1000)
            layer_ms.append(in_layer[0])
            cpu.append((c2 - c) * 1000)
        figures.append((name, ops, paints, layer_ms, cpu))

    def hide(i: int) -> None:
        hidden.symmetric_difference_update({keys[rng.randrange(len(keys))]})
        style()

    def relabel(i: int) -> None:
        colours[keys[rng.randrange(len(keys))]] = palette_color(rng.randrange(20))
        style()

    def select(i: int) -> None:
        selected[0] = keys[rng.randrange(len(keys))]
        style()

    mask_layer = MaskLayer(z=30)
    scene.addItem(mask_layer)

    def select_drawn(i: int) -> None:  # the selected object left clear, and drawn by a MaskLayer
        selected[0] = keys[rng.randrange(len(keys))]
        style()
        mask_layer.set_mask(crop_to_mask(lm.crop(selected[0]), h, w))

    def some_object(i: int) -> str:  # the first five times a large one, then any
        return keys[i % 5] if i < 5 else keys[rng.randrange(len(keys))]

    def dab(i: int) -> None:  # a brush dab (12 px) on an object's edge
        key = some_object(i)
        y0, x0, c = lm.crop(key)
        grown = np.pad(c, 6)
        rows = np.flatnonzero(grown.any(axis=1))
        mid = int(rows[len(rows) // 2])
        col = int(np.flatnonzero(grown[mid])[0])
        grown[mid - 6:mid + 6, col - 6:col + 6] = True
        oy, ox = y0 - 6, x0 - 6
        grown = grown[max(0, -oy): h - oy, max(0, -ox): w - ox]
        layer.invalidate(lm.update(key, (max(0, oy), max(0, ox), grown)))

    def replace(i: int) -> None:  # a new mask: the object's own moved by 15 px (a new decode)
        key = some_object(i)
        y0, x0, c = lm.crop(key)
        y0, x0 = min(y0 + 15, h - c.shape[0]), min(x0 + 15, w - c.shape[1])
        layer.invalidate(lm.update(key, (y0, x0, c)))

    def click(i: int) -> None:
        lm.object_at(rng.uniform(0, w), rng.uniform(0, h))

    def pan(i: int) -> None:
        view.scale(1.25 if i % 2 == 0 else 0.8, 1.25 if i % 2 == 0 else 0.8)

    timed("hide or show one object", hide)
    timed("relabel one object", relabel)
    timed("select one object", select)
    timed("select one + its MaskLayer", select_drawn)
    timed("brush dab on one object's mask", dab)
    timed("one object's mask replaced", replace)
    timed("click hit test (object_at)", click)
    timed("repaint after a zoom (new view)", pan)
    timed("repaint, nothing changed", lambda i: None)
    print(f"GUI-thread ms over {args.repeats} runs, median / worst (full view renders {layer.renders}, "
          f"patches {layer.patches}, colour tables {layer.lut_builds}):")
    print(f"  {'':30s} {'operation':>14s} {'+ repaint':>14s} {'(in layer)':>14s} {'= total':>14s} {'total CPU':>9s}")
    for name, ops, paints, layer_ms, cpu in figures:
        total = [a + b for a, b in zip(ops, paints)]
        cols = "".join(f" {statistics.median(v):6.2f} /{max(v):6.1f}" for v in (ops, paints, layer_ms, total))
        print(f"  {name:30s}{cols} {statistics.median(cpu):9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
