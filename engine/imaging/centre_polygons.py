"""Masks as polygons through pixel *centres*, for readers that fill a polygon over the pixel
centres it covers, its boundary included: ``cv2.fillPoly`` (Ultralytics' ``polygon2mask``,
supervision) and PIL's ``ImageDraw.polygon(outline=1, fill=1)`` (labelme's ``shape_to_mask``).

Frames and types:
- A mask is ``[H, W]`` bool (non-zero = inside), in pixels of the displayed image.
- A polygon is ``[N, 2]`` int64 (x, y) vertices, not closed (the last joins the first), on the
  *centre* convention: vertex ``(c, r)`` is the centre of pixel (column c, row r). This is
  cv2's and PIL's frame for integer coordinates; COCO's polygons (:mod:`engine.imaging.masks`)
  use the corner convention instead, which pycocotools reads exactly and these readers do not.
- A polygon runs through the centres of a part's boundary pixels (cv2's contour tracing), so a
  reader that fills the inside and draws the boundary gets the part back pixel for pixel: a
  1-px line is a there-and-back polygon, a single pixel three copies of its centre (every
  polygon has at least 3 vertices, which labelme, supervision and Ultralytics require).
- Holes are kept by zero-width bridges: each hole is joined to a ring above it by a vertical
  cut through the part's own pixels, walked there and back, so even-odd filling keeps the hole
  empty and the cut's pixels, which the reader draws, are inside the part anyway (tested
  pixel-exact with cv2 and PIL on thousands of random masks).
- :func:`centre_polygon` joins the parts of a mask too (YOLO has one polygon per instance,
  as Ultralytics' own converter does): each bridge runs straight between the nearest pixels
  of two parts (a minimum spanning tree over the parts), and the background pixels it crosses
  are the only ones a reader adds.

``tolerance`` > 0 simplifies the runs between bridge ends (Douglas-Peucker, in pixels); the
bridges themselves are kept, so holes stay holes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .rle import as_mask

__all__ = ["centre_parts", "centre_polygon"]


def centre_parts(mask: np.ndarray, tolerance: float = 0.0) -> list[np.ndarray]:
    """One polygon per 8-connected part, its holes joined in; ``[]`` for an empty mask."""
    traced = _traced(mask)
    if traced is None:
        return []
    rings, roots, children, starts = traced
    return [_finish(*_emit(root, rings, children, starts), tolerance) for root in roots]


def centre_polygon(mask: np.ndarray, tolerance: float = 0.0) -> np.ndarray | None:
    """The whole mask as one polygon (parts joined by shortest bridges); None when empty."""
    traced = _traced(mask)
    if traced is None:
        return None
    rings, roots, children, starts = traced
    parts = [_emit(root, rings, children, starts) for root in roots]
    if len(parts) == 1:
        return _finish(*parts[0], tolerance)
    seqs = [seq for seq, _marks in parts]
    p_children: list[list[tuple[int, int, int]]] = [[] for _ in seqs]
    p_starts = [0] * len(seqs)
    for parent, i, child, j in _part_bridges(as_mask(mask), seqs):
        p_children[parent].append((i, child, j))
        p_starts[child] = j
    seq, keep = _emit(0, seqs, p_children, p_starts, marks=[marks for _seq, marks in parts])
    return _finish(seq, keep, tolerance)


# ---------------------------------------------------------------------------------------------
# Tracing and the hole tree


def _traced(mask: np.ndarray) -> Any:
    """Every ring (outer rings and holes) of the mask, each hole's place in a tree.

    Returns ``(rings, roots, children, starts)``: ``rings`` a list of ``[n, 2]`` int64 (x, y)
    chains (cv2's ``CHAIN_APPROX_NONE`` traces: every boundary pixel); ``roots`` the outer
    ring of each part; ``children[k]`` the ``(index, child, child_start)`` bridges leaving ring
    k at its vertex ``index``; ``starts[k]`` where ring k is entered (a hole: its top-left).
    """
    import cv2

    m = as_mask(mask)
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    y0, x0 = int(rows[0]), int(cols[0])
    crop = np.pad(m[y0:int(rows[-1]) + 1, x0:int(cols[-1]) + 1], 1).astype(np.uint8)
    contours, hierarchy = cv2.findContours(crop, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    hierarchy = hierarchy[0]
    shift = np.array([x0 - 1, y0 - 1], dtype=np.int64)  # crop+pad frame -> mask frame
    rings = [c.reshape(-1, 2).astype(np.int64) for c in contours]
    n = len(rings)
    sizes = np.array([len(r) for r in rings])
    allv = np.concatenate(rings)
    ring_id = np.repeat(np.arange(n), sizes)
    local = np.arange(len(allv)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    # Each ring's top-left vertex; holes are entered there.
    first = np.lexsort((allv[:, 0], allv[:, 1], ring_id))[np.cumsum(sizes) - sizes]
    tops = allv[first]
    starts = [0] * n
    # Rings ranked by their top (an outer ring's top lies above its holes'). A hole's bridge
    # goes up its top's column to the first pixel of a ring ranked before it: every pixel it
    # passes is the part's own (a mask pixel below background is on that background's ring,
    # which begins higher up, so the walk stops there at the latest), and ranks only
    # decrease along bridges, so the bridges form one tree per part.
    order = np.lexsort((np.arange(n), tops[:, 0], tops[:, 1]))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    is_hole = hierarchy[:, 3] != -1
    # The vertices in the columns of the holes' tops, by column.
    in_cols = np.flatnonzero(np.isin(allv[:, 0], tops[is_hole, 0]))
    in_cols = in_cols[np.argsort(allv[in_cols, 0], kind="stable")]
    col_x = allv[in_cols, 0]
    children: list[list[tuple[int, int, int]]] = [[] for _ in range(n)]
    for k in order[is_hole[order]]:
        starts[k] = int(local[first[k]])
        x, y = int(tops[k, 0]), int(tops[k, 1])
        lo, hi = np.searchsorted(col_x, [x, x + 1])
        cand = in_cols[lo:hi]
        cand = cand[(allv[cand, 1] <= y) & (rank[ring_id[cand]] < rank[k])]
        if cand.size:
            v = int(cand[np.argmax(allv[cand, 1])])  # the first such pixel up the column
        else:  # cannot happen for a traced mask; join the nearest vertex of the outer ring
            o = int(hierarchy[k][3])
            v = int(np.argmin(((rings[o] - tops[k]) ** 2).sum(1))) + int(np.sum(sizes[:o]))
        children[int(ring_id[v])].append((int(local[v]), int(k), starts[k]))
    rings = [r + shift for r in rings]
    return rings, [int(r) for r in np.flatnonzero(~is_hole)], children, starts


def _emit(root: int, rings: list[np.ndarray], children: list[list[tuple[int, int, int]]],
          starts: list[int], marks: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The closed walk of ``root`` with every descendant spliced in where its bridge leaves.

    A child's excursion after its parent's vertex ``i``: the child's ring from its start all
    the way round, its start again, then the parent's vertex ``i`` again (the bridge walked
    back). Returns the vertices and a bool array marking the bridges' ends (kept when
    simplifying), OR'd with ``marks`` (per ring, optional).
    """
    def marks_of(k: int) -> np.ndarray:
        return marks[k] if marks is not None else np.zeros(len(rings[k]), dtype=bool)

    out: list[np.ndarray] = []
    out_marks: list[np.ndarray] = []
    stack: list[tuple[Any, ...]] = [("ring", root, None)]
    while stack:
        item = stack.pop()
        if item[0] == "run":
            out.append(item[1])
            out_marks.append(item[2])
            continue
        _tag, k, back = item
        ring, ring_marks, s = rings[k], marks_of(k).copy(), starts[k]
        n = len(ring)
        ring_marks[[i for i, _c, _cs in children[k]]] = True  # where bridges leave
        if back is not None:
            ring_marks[s] = True  # where this ring's bridge arrives
        todo: list[tuple[Any, ...]] = []
        done = 0
        for at, i, child in sorted(((i - s) % n, i, c) for i, c, _cs in children[k]):
            if at >= done:
                idx = np.arange(s + done, s + at + 1) % n
                todo.append(("run", ring[idx], ring_marks[idx]))
                done = at + 1
            todo.append(("ring", child, ring[i]))
        if done < n:
            idx = np.arange(s + done, s + n) % n
            todo.append(("run", ring[idx], ring_marks[idx]))
        if back is not None:
            todo.append(("run", np.stack([ring[s], back]), np.ones(2, dtype=bool)))
        stack.extend(reversed(todo))
    return np.concatenate(out), np.concatenate(out_marks)


def _finish(seq: np.ndarray, keep: np.ndarray, tolerance: float) -> np.ndarray:
    """Simplify between kept vertices (when ``tolerance`` > 0), drop repeats and vertices in
    the middle of a straight run, and pad to 3 vertices."""
    if tolerance > 0 and len(seq) > 3:
        seq, keep = _simplified(seq, keep, float(tolerance))
    r = np.asarray(seq, dtype=np.int64)
    k = np.asarray(keep, dtype=bool)
    if len(r) > 1:
        new = np.ones(len(r), dtype=bool)
        new[1:] = np.any(r[1:] != r[:-1], axis=1)
        k = np.logical_or.reduceat(k, np.flatnonzero(new))
        r = r[new]
        if len(r) > 1 and np.all(r[0] == r[-1]):
            k[0] |= k[-1]
            r, k = r[:-1], k[:-1]
    if len(r) >= 3:
        a = r - np.roll(r, 1, axis=0)
        b = np.roll(r, -1, axis=0) - r
        grid = (a[:, 0] == 0) | (a[:, 1] == 0) | (np.abs(a[:, 0]) == np.abs(a[:, 1]))
        straight = grid & (a[:, 0] * b[:, 1] == a[:, 1] * b[:, 0]) & ((a * b).sum(1) > 0)
        r = r[~straight]  # inside a straight 0/45/90 degree run: the same pixels are drawn
    if len(r) < 3:
        r = np.concatenate([r, r[:1], r[:1]])[:3] if len(r) == 1 else np.concatenate([r, r[:1]])
    return r


def _simplified(seq: np.ndarray, keep: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Douglas-Peucker on each run between kept vertices (cv2, open curves)."""
    import cv2

    cut = np.flatnonzero(keep)
    if cut.size == 0:
        approx = cv2.approxPolyDP(seq.astype(np.int32).reshape(-1, 1, 2), tolerance, True).reshape(-1, 2)
        return (approx, np.zeros(len(approx), dtype=bool)) if len(approx) >= 3 else (seq, keep)
    rolled = np.roll(seq, -int(cut[0]), axis=0)
    cut = cut - cut[0]
    bounds = list(cut) + [len(seq)]
    pieces, flags = [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        run = np.concatenate([rolled[a:b], rolled[b % len(seq)][None]])
        run = _simplify_open(run, tolerance)
        pieces.append(run[:-1])
        f = np.zeros(len(run) - 1, dtype=bool)
        f[0] = True
        flags.append(f)
    return np.concatenate(pieces).astype(np.int64), np.concatenate(flags)


def _simplify_open(run: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas-Peucker of an open run, both ends kept; a run that ends where it starts (a
    whole hole ring) is split at its farthest vertex first, else it would collapse."""
    import cv2

    if len(run) <= 2:
        return run
    if np.all(run[0] == run[-1]):
        far = int(np.argmax(((run - run[0]) ** 2).sum(1)))
        if far == 0:
            return run[[0, -1]]
        return np.concatenate([_simplify_open(run[:far + 1], tolerance)[:-1], _simplify_open(run[far:], tolerance)])
    return cv2.approxPolyDP(run.astype(np.int32).reshape(-1, 1, 2), tolerance, False).reshape(-1, 2).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Joining parts


def _part_bridges(mask: np.ndarray, seqs: list[np.ndarray]) -> list[tuple[int, int, int, int]]:
    """Bridges joining every part, as ``(parent, i, child, j)``: from vertex ``i`` of part
    ``parent``'s walk to vertex ``j`` of part ``child``'s, a tree rooted at part 0.

    The tree is a minimum spanning tree of the parts under the Chebyshev distance of their
    nearest pixels (what a bridge costs in drawn pixels), over the pairs whose Voronoi regions
    touch (cv2's distance transform labels each pixel with its nearest mask pixel).
    """
    import cv2

    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    y0, x0 = int(rows[0]), int(cols[0])
    crop = mask[y0:int(rows[-1]) + 1, x0:int(cols[-1]) + 1]
    _n, comp = cv2.connectedComponents(crop.astype(np.uint8), connectivity=8)
    comp_part = np.zeros(int(comp.max()) + 1, dtype=np.int32)
    for p, s in enumerate(seqs):
        comp_part[comp[s[0, 1] - y0, s[0, 0] - x0]] = p
    _d, near = cv2.distanceTransformWithLabels((~crop).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(crop)
    where = np.zeros((int(near.max()) + 1, 2), dtype=np.int32)
    where[near[ys, xs]] = np.stack([xs, ys], axis=1)
    nx, ny = where[near, 0], where[near, 1]  # each pixel's nearest mask pixel
    owner = comp_part[comp[ny, nx]]
    cand = []
    for a, b in (((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                 ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))):
        diff = owner[a] != owner[b]
        if diff.any():
            pa, pb = owner[a][diff], owner[b][diff]
            ax, ay, bx, by = nx[a][diff], ny[a][diff], nx[b][diff], ny[b][diff]
            cost = np.maximum(np.abs(ax - bx), np.abs(ay - by))
            cand.append(np.stack([cost, pa, pb, ax, ay, bx, by], axis=1))
    c = np.concatenate(cand).astype(np.int64)
    pair = np.minimum(c[:, 1], c[:, 2]) * len(seqs) + np.maximum(c[:, 1], c[:, 2])
    c = c[np.lexsort((c[:, 0], pair))]
    first = np.ones(len(c), dtype=bool)
    first[1:] = np.diff(np.sort(pair)) != 0
    c = c[first]  # the cheapest candidate of each pair of parts
    c = c[np.argsort(c[:, 0], kind="stable")]
    root = list(range(len(seqs)))

    def find(u: int) -> int:
        while root[u] != u:
            root[u] = root[root[u]]
            u = root[u]
        return u

    adjacent: list[list[tuple[int, tuple[int, int], tuple[int, int]]]] = [[] for _ in seqs]
    joined = 0
    for _cost, pa, pb, ax, ay, bx, by in c.tolist():
        ra, rb = find(pa), find(pb)
        if ra == rb:
            continue
        root[ra] = rb
        adjacent[pa].append((pb, (ax + x0, ay + y0), (bx + x0, by + y0)))
        adjacent[pb].append((pa, (bx + x0, by + y0), (ax + x0, ay + y0)))
        joined += 1
        if joined == len(seqs) - 1:
            break
    edges = []
    seen = {0}
    todo = [0]
    while todo:
        p = todo.pop()
        for q, here, there in adjacent[p]:
            if q in seen:
                continue
            seen.add(q)
            edges.append((p, _vertex(seqs[p], here), q, _vertex(seqs[q], there)))
            todo.append(q)
    return edges


def _vertex(seq: np.ndarray, xy: tuple[int, int]) -> int:
    """Index of pixel ``xy`` in a part's walk, else of the walk's nearest vertex."""
    d = np.abs(seq[:, 0] - xy[0]) + np.abs(seq[:, 1] - xy[1])
    return int(np.argmin(d))
