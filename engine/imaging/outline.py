"""A mask's outline as one polyline, ready to draw: every ring (outer boundaries and holes),
each closed, with a break between rings.

Made where the mask is made (off the app's GUI thread: see engine.annotation.candidates), so
that drawing a new mask costs the window one call, whatever the mask's shape.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["outline_polyline"]


def outline_polyline(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(points, connect)`` of ``mask`` ([H, W] bool).

    points: ``[N, 2]`` float64 (x, y) in image pixels, on pixel centres (OpenCV traces through
    pixel centres; +0.5 puts them on the (col + 0.5, row + 0.5) convention of the overlays).
    connect: ``[N]`` bool, False where the line must not go on to the next point (the end of a
    ring). Empty arrays for an empty mask.
    """
    m = np.ascontiguousarray(np.asarray(mask, dtype=np.uint8))
    if not m.any():
        return np.zeros((0, 2)), np.zeros(0, dtype=bool)
    contours, _ = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    lens = np.array([len(c) for c in contours])
    flat = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.float64) + 0.5
    # Each ring's points then its first point again (closed), in one gather.
    sizes = lens + 1
    ends = np.cumsum(sizes)
    ring = np.repeat(np.arange(len(lens)), sizes)
    pos = np.arange(ends[-1]) - np.repeat(ends - sizes, sizes)
    pos[pos == lens[ring]] = 0
    starts = np.cumsum(lens) - lens
    points = flat[starts[ring] + pos]
    connect = np.ones(len(points), dtype=bool)
    connect[ends - 1] = False
    return points, connect
