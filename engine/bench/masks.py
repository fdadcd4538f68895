"""``qmask bench masks``: contour extraction time on a fragmented mask with many holes.

Builds a reproducible mask (default 4000 x 3000 = 12 megapixels: one large part with a ragged
edge and 5,000 holes, some holding an island, and 99 small parts) and times what the exports
do with it:

- outlines: every part's outer ring and hole rings (LabelMe polygons, :func:`mask_outlines`);
- keyhole: one polygon per part with its holes joined by zero-width cuts (COCO polygons);
- YOLO lines: keyhole polygons written as normalised YOLO label text.

``--check`` rasterises the YOLO polygons back with pycocotools (even-odd, as Ultralytics'
cv2.fillPoly) and reports the IoU with the mask (1.0 = pixel-exact) and the holes kept.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ..errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", default="4000x3000", metavar="WxH", help="mask size (default: 4000x3000)")
    parser.add_argument("--holes", type=int, default=5000, metavar="N", help="holes in all (default: 5000)")
    parser.add_argument("--parts", type=int, default=100, metavar="N", help="separate parts (default: 100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the mask (default: 0)")
    parser.add_argument("--check", action="store_true", help="rasterise the polygons back and report the IoU")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--size must be WxH, e.g. 4000x3000, not {text!r}.") from None
    if w < 16 or h < 16:
        raise InputError(f"--size must be at least 16x16, not {text!r}.")
    return w, h


def fragmented_mask(width: int, height: int, holes: int, parts: int, seed: int = 0) -> np.ndarray:
    """``[H, W]`` bool: one large part with a ragged edge over the left 80% holding ``holes``
    small holes (2-5 px; some pairs touch at a corner only; every tenth holds a one-pixel
    island), and ``parts - 1`` small separate parts in the strip on the right."""
    if holes < 0 or parts < 1:
        raise InputError("--holes must be 0 or more and --parts at least 1.")
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), dtype=bool)
    main_w = max(8, int(width * 0.8))
    # the main part: its top and bottom edges step up and down by a pixel or two per column
    top = 4 + np.clip(np.cumsum(rng.integers(-1, 2, size=main_w)), 0, 8)
    bottom = height - 4 - np.clip(np.cumsum(rng.integers(-1, 2, size=main_w)), 0, 8)
    rows = np.arange(height)[:, None]
    mask[:, 2:main_w] = ((rows >= top[None, 2:]) & (rows < bottom[None, 2:]))
    x0, y0, x1, y1 = 4, 16, main_w - 4, height - 16
    if holes:
        gx = max(1, int(np.ceil(np.sqrt(holes * (x1 - x0) / (y1 - y0)))))
        gy = int(np.ceil(holes / gx))
        if (x1 - x0) / gx < 8 or (y1 - y0) / gy < 8:
            raise InputError("Too many holes for this size: each needs 8 x 8 pixels.")
        xs = np.linspace(x0, x1 - 8, gx).astype(int)
        ys = np.linspace(y0, y1 - 8, gy).astype(int)
        k = used = 0
        while used < holes:
            y, x = ys[k // gx], xs[k % gx]
            w, h = rng.integers(2, 6, size=2)
            mask[y:y + h, x:x + w] = False
            used += 1
            if k % 7 == 3 and used < holes:  # a second hole touching this one at a corner only
                mask[y + h, x + w] = False
                used += 1
            if k % 10 == 5 and w >= 3 and h >= 3:
                mask[y + 1, x + 1] = True  # an island inside the hole
            k += 1
    # the other parts: small blobs in the right-hand strip
    strip_x, strip_w = main_w + 2, width - main_w - 4
    if parts > 1:
        if strip_w < 4:
            raise InputError("The mask is too narrow for separate parts.")
        for i in range(parts - 1):
            bx = strip_x + int(rng.integers(0, max(1, strip_w - 3)))
            by = int(rng.integers(0, height - 3))
            mask[by:by + int(rng.integers(1, 4)), bx:bx + int(rng.integers(1, 4))] = True
    return mask


def yolo_text(polygons: list[list[float]], width: int, height: int, cls: int = 0) -> str:
    scale = np.tile([1.0 / width, 1.0 / height], 1)
    lines = []
    for poly in polygons:
        coords = (np.asarray(poly, dtype=np.float64).reshape(-1, 2) * scale).ravel()
        lines.append(f"{cls} " + " ".join(f"{c:.6f}" for c in coords))
    return "".join(line + "\n" for line in lines)


def count_holes(mask: np.ndarray) -> int:
    """Enclosed background regions (4-connected, as the contours count them)."""
    import cv2

    background = np.pad(~mask, 1, constant_values=True).astype(np.uint8)
    n, _ = cv2.connectedComponents(background, connectivity=4)
    return int(n) - 2  # label 0 is the foreground, label 1 the outside


def main(args: argparse.Namespace) -> int:
    from pycocotools import mask as mask_utils

    from ..imaging.masks import mask_iou, mask_outlines, mask_to_keyhole_polygons

    width, height = _size(args.size)
    mask = fragmented_mask(width, height, args.holes, args.parts, args.seed)
    holes = count_holes(mask)
    print(f"mask: {width} x {height} ({width * height / 1e6:.1f} MP), {holes} holes")
    start = time.perf_counter()
    outlines = mask_outlines(mask)
    t_outlines = time.perf_counter() - start
    start = time.perf_counter()
    polygons = mask_to_keyhole_polygons(mask)
    t_keyhole = time.perf_counter() - start
    start = time.perf_counter()
    text = yolo_text(polygons, width, height)
    t_text = time.perf_counter() - start
    vertices = sum(len(p) // 2 for p in polygons)
    print(f"outlines (LabelMe polygons): {t_outlines:.3f} s, {len(outlines)} parts, "
          f"{sum(len(o.holes) for o in outlines)} hole rings")
    print(f"keyhole polygons (COCO polygons): {t_keyhole:.3f} s, {vertices:,} vertices")
    print(f"YOLO label text: {t_keyhole + t_text:.3f} s (keyhole {t_keyhole:.3f} s + text {t_text:.3f} s), "
          f"{len(text):,} bytes")
    if args.check:
        rles = mask_utils.frPyObjects(polygons, height, width)
        back = mask_utils.decode(mask_utils.merge(rles)).astype(bool)
        print(f"check: IoU {mask_iou(back, mask):.6f} with the mask, {count_holes(back)} of {holes} holes kept")
    return 0
