"""Filling polygon rings into masks at pixel centres (even-odd rule), in time proportional to the
ring's length and its bounding box, not the image.

Frame: image pixels, corner convention (pixel ``(col, row)`` covers ``[col, col+1] x
[row, row+1]``, as in :mod:`engine.prompts`). A pixel is inside a ring when its centre
``(col + 0.5, row + 0.5)`` is: the rings traced by :func:`engine.imaging.masks.mask_outlines`
run along pixel edges, so filling them gives the mask back exactly.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fill_ring_window", "fill_ring"]


def fill_ring_window(ring: np.ndarray, height: int, width: int) -> tuple[int, int, np.ndarray]:
    """``(row0, col0, window)``: the ring's even-odd fill, cropped to its bounding box.

    ring: ``[N, 2]`` float (x, y) vertices, not closed (the last joins the first).
    window: ``[h, w]`` bool covering rows ``row0:row0 + h`` and columns ``col0:col0 + w`` of an
    ``[height, width]`` mask (clipped to it; ``h`` or ``w`` is 0 when the ring covers no centre).
    """
    pts = np.asarray(ring, dtype=np.float64).reshape(-1, 2)
    x0, y0 = pts[:, 0], pts[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    # Rows whose centre line y = r + 0.5 the edge crosses, half-open [min, max): a vertex on
    # the line counts once, horizontal edges never.
    lo, hi = np.minimum(y0, y1), np.maximum(y0, y1)
    r_lo = np.maximum(np.ceil(lo - 0.5).astype(np.int64), 0)
    r_hi = np.minimum(np.ceil(hi - 0.5).astype(np.int64), height)  # exclusive
    count = np.maximum(r_hi - r_lo, 0)
    empty = (0, 0, np.zeros((0, 0), dtype=bool))
    if not count.any() or width <= 0:
        return empty
    edge = np.repeat(np.arange(len(pts)), count)
    first = np.cumsum(count) - count
    rows = r_lo[edge] + np.arange(edge.size) - first[edge]
    y = rows + 0.5
    xs = x0[edge] + (y - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
    # A crossing at x flips every centre c + 0.5 >= x, i.e. columns from ceil(x - 0.5) on.
    cols = np.clip(np.ceil(xs - 0.5).astype(np.int64), 0, width)
    row0, row1 = int(rows.min()), int(rows.max()) + 1
    col0 = int(cols.min())
    col1 = min(int(np.ceil(max(x0.max(), x1.max()))) + 1, width)
    if col1 <= col0:
        return empty
    # Each row's crossings pair up (a closed ring crosses a line an even number of times):
    # sorted in row-major order over a window one column wider (where crossings right of the
    # ring land), they are the starts and ends of the filled runs, written in one np.repeat.
    span = col1 - col0 + 1
    events = np.sort((rows - row0) * span + (np.minimum(cols, col1) - col0))
    lengths = np.diff(np.concatenate(([0], events, [(row1 - row0) * span])))
    values = np.zeros(lengths.size, dtype=bool)
    values[1::2] = True
    window = np.repeat(values, lengths).reshape(row1 - row0, span)[:, :-1]
    return row0, col0, window


def fill_ring(ring: np.ndarray, height: int, width: int) -> np.ndarray:
    """The ring's even-odd fill as a whole ``[height, width]`` bool mask."""
    out = np.zeros((int(height), int(width)), dtype=bool)
    r, c, window = fill_ring_window(ring, int(height), int(width))
    out[r:r + window.shape[0], c:c + window.shape[1]] = window
    return out
