"""engine.imaging.polygons: mask -> shapes (outer rings and holes) -> mask, and vertex edits."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.errors import InputError
from engine.imaging.masks import Outline
from engine.imaging.polygons import (apply_shape_edit, deleted_vertex, inserted_vertex, mask_to_shapes,
                                     moved_vertex, nearest_edge, shapes_to_mask)
from engine.imaging.raster import fill_ring


def _ring_with_hole() -> np.ndarray:
    m = np.zeros((40, 50), bool)
    m[5:35, 5:45] = True
    m[12:25, 15:30] = False
    return m


def _two_islands() -> np.ndarray:
    m = np.zeros((30, 40), bool)
    m[2:10, 3:12] = True
    cv2.circle(m.view(np.uint8), (28, 20), 7, 1, -1)
    return m


def _island_in_hole() -> np.ndarray:
    m = _ring_with_hole()
    m[16:21, 19:25] = True
    return m


def _thin_parts() -> np.ndarray:
    m = np.zeros((30, 30), bool)
    m[3, 2:25] = True  # a 1-pixel-wide line
    m[5:25, 20] = True  # a 1-pixel-wide column touching nothing
    np.fill_diagonal(m[8:28, 0:20], True)  # a diagonal, 8-connected only
    return m


def _border() -> np.ndarray:
    m = np.zeros((20, 20), bool)
    m[0:8, 0:20] = True  # touches three sides
    m[19, 19] = True  # one pixel in the corner
    return m


MASKS = {"ring_with_hole": _ring_with_hole, "two_islands": _two_islands, "island_in_hole": _island_in_hole,
         "thin_parts": _thin_parts, "border": _border}


@pytest.mark.parametrize("name", sorted(MASKS))
def test_tolerance_zero_round_trips_exactly(name):
    m = MASKS[name]()
    shapes = mask_to_shapes(m, 0)
    np.testing.assert_array_equal(shapes_to_mask(m.shape, shapes), m)


def test_holes_and_islands_are_shapes_of_their_own():
    shapes = mask_to_shapes(_island_in_hole(), 0)
    assert sorted(len(s.holes) for s in shapes) == [0, 1]  # the frame with its hole, the island
    frame = next(s for s in shapes if s.holes)
    np.testing.assert_array_equal(frame.outer.min(0), [5, 5])  # corners: pixel edges, not centres
    np.testing.assert_array_equal(frame.outer.max(0), [45, 35])
    assert len(mask_to_shapes(_two_islands(), 0)) == 2


def test_empty_mask_has_no_shapes_and_rasterises_empty():
    m = np.zeros((10, 12), bool)
    assert mask_to_shapes(m, 1.5) == []
    assert not shapes_to_mask(m.shape, []).any()


def _boundary_distance(m: np.ndarray) -> np.ndarray:
    """Each pixel's distance (pixels) to the nearest pixel on the other side of the boundary."""
    inside = cv2.distanceTransform(m.astype(np.uint8), cv2.DIST_L2, 5)
    outside = cv2.distanceTransform((~m).astype(np.uint8), cv2.DIST_L2, 5)
    return np.maximum(inside, outside)


@pytest.mark.parametrize("name", sorted(MASKS))
@pytest.mark.parametrize("tolerance", [0.5, 1.0, 2.5])
def test_simplified_round_trip_differs_only_near_the_boundary(name, tolerance):
    m = MASKS[name]()
    shapes = mask_to_shapes(m, tolerance)
    back = shapes_to_mask(m.shape, shapes)
    diff = back ^ m
    assert (_boundary_distance(m)[diff] <= tolerance + 1.0).all()
    if name in ("ring_with_hole", "island_in_hole"):
        assert not back[14:23, 17:28].all()  # the hole survives simplification


def test_simplification_cuts_vertices():
    m = np.zeros((200, 200), np.uint8)
    cv2.circle(m, (100, 100), 80, 1, -1)
    exact, simple = mask_to_shapes(m.astype(bool), 0)[0], mask_to_shapes(m.astype(bool), 2.0)[0]
    assert len(simple.outer) < len(exact.outer) / 4


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "two"])
def test_bad_tolerance_is_refused_with_a_message(bad):
    with pytest.raises(InputError, match="tolerance"):
        mask_to_shapes(np.ones((4, 4), bool), bad)


def test_shapes_to_mask_window_matches_the_whole():
    m = _island_in_hole()
    shapes = mask_to_shapes(m, 0)
    np.testing.assert_array_equal(shapes_to_mask((10, 20), shapes, origin=(12, 14)), m[14:24, 12:32])


def test_vertex_edits():
    square = np.array([[0, 0], [4, 0], [4, 4], [0, 4]], float)
    np.testing.assert_array_equal(moved_vertex(square, 2, (6, 5))[2], [6, 5])
    assert square[2].tolist() == [4, 4]  # never in place
    added = inserted_vertex(square, 1, (4, 2))
    assert added.tolist() == [[0, 0], [4, 0], [4, 2], [4, 4], [0, 4]]
    assert deleted_vertex(added, 2).tolist() == square.tolist()
    triangle = deleted_vertex(square, 3)
    with pytest.raises(InputError, match="at least 3"):
        deleted_vertex(triangle, 0)
    edge, dist, foot = nearest_edge(square, (5.0, 1.0))
    assert (edge, dist, foot) == (1, 1.0, (4.0, 1.0))


def edited(mask: np.ndarray, before: Outline, after: Outline, shapes_after, tolerance=0.0) -> np.ndarray:
    """The whole mask after apply_shape_edit's window is pasted in."""
    out = mask.copy()
    hit = apply_shape_edit(mask, before, after, shapes_after, tolerance)
    if hit is not None:
        y0, x0, patch = hit
        out[y0:y0 + patch.shape[0], x0:x0 + patch.shape[1]] = patch
    return out


def test_shape_edit_changes_the_swept_pixels_only_and_keeps_holes():
    m = _ring_with_hole()
    m[6, 40] = False  # a notch finer than the tolerance: an edit elsewhere must keep it
    shapes = mask_to_shapes(m, 1.5)
    (before,) = shapes
    corner = int(np.argmin(np.hypot(*(before.outer - (45, 35)).T)))  # the bottom-right corner
    after = Outline(moved_vertex(before.outer, corner, (48, 38)), before.holes)
    out = edited(m, before, after, [after], 1.5)
    grown = out & ~m
    assert grown[35:38, 45:48].all()  # the corner moved out by 3 pixels
    assert not out[6, 40] and not m[6, 40]  # the notch, finer than the tolerance, is kept
    np.testing.assert_array_equal(out[12:25, 15:30], m[12:25, 15:30])  # the hole survives
    swept = fill_ring(after.outer, *m.shape) ^ fill_ring(before.outer, *m.shape)
    near = _near_replaced_edges(before.outer, after.outer, 2.5, m.shape)
    assert not ((out ^ m) & ~(swept | near)).any()  # changed: only pixels swept, or near the moved edges
    assert (out ^ m)[:30, :43].sum() == 0


def test_shape_edit_that_changes_no_pixel_gives_nothing():
    m = _ring_with_hole()
    (before,) = mask_to_shapes(m, 0)
    on_edge = Outline(inserted_vertex(before.outer, 3, (20.0, 5.0)), before.holes)  # on the top edge
    assert apply_shape_edit(m, before, on_edge, [on_edge]) is None
    nudged = Outline(moved_vertex(before.outer, 0, (5.2, 5.3)), before.holes)  # no pixel centre crossed
    assert apply_shape_edit(m, before, nudged, [nudged]) is None


def test_shape_edit_over_an_island_keeps_the_island():
    m = _island_in_hole()
    shapes = mask_to_shapes(m, 0)
    frame = next(s for s in shapes if s.holes)
    hole = frame.holes[0]
    grown_hole = hole + np.where(hole > hole.mean(0), 1.0, -1.0)  # the hole one pixel wider all round
    after = Outline(frame.outer, (grown_hole,))
    rest = [s for s in shapes if s is not frame]
    out = edited(m, frame, after, [after, *rest])
    assert out[16:21, 19:25].all()  # the island inside the hole stays
    assert not out[11, 14] and m[11, 14]  # the hole grew


def _centres_inside(ring: np.ndarray, h: int, w: int) -> np.ndarray:
    """Even-odd ray casting at each pixel centre, one pixel at a time (the slow, obvious way)."""
    out = np.zeros((h, w), bool)
    a, b = ring, np.roll(ring, -1, axis=0)
    for r in range(h):
        for c in range(w):
            x, y = c + 0.5, r + 0.5
            crosses = 0
            for (xa, ya), (xb, yb) in zip(a, b):
                if min(ya, yb) <= y < max(ya, yb) and xa + (y - ya) * (xb - xa) / (yb - ya) <= x:
                    crosses += 1
            out[r, c] = crosses % 2 == 1
    return out


def test_fill_ring_matches_ray_casting_on_random_rings():
    rng = np.random.default_rng(7)
    for trial in range(60):
        h, w = (int(v) for v in rng.integers(1, 14, 2))
        ring = rng.uniform(-3, 17, (int(rng.integers(3, 9)), 2))
        if trial % 2:
            ring = np.round(ring * 2) / 2  # vertices on pixel edges and centres: the ties
        np.testing.assert_array_equal(fill_ring(ring, h, w), _centres_inside(ring, h, w), err_msg=str(ring))


def _near_replaced_edges(old: np.ndarray, new: np.ndarray, radius: float, shape) -> np.ndarray:
    """Pixels whose centre is within ``radius`` of an edge of ``old`` that ``new`` does not have."""
    edges_new = {(tuple(a), tuple(b)) for a, b in zip(new, np.roll(new, -1, axis=0))}
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    cx, cy = cols + 0.5, rows + 0.5
    out = np.zeros(shape, bool)
    for a, b in zip(old, np.roll(old, -1, axis=0)):
        if (tuple(a), tuple(b)) in edges_new:
            continue
        d = b - a
        t = np.clip(((cx - a[0]) * d[0] + (cy - a[1]) * d[1]) / max(d @ d, 1e-12), 0, 1)
        out |= np.hypot(cx - a[0] - t * d[0], cy - a[1] - t * d[1]) <= radius
    return out


def test_shape_edit_matches_the_whole_image_computation():
    """Moves, inserts and deletes anywhere on the rings (the first vertex and the last included)
    change exactly the pixels a whole-image rasterisation says, though only a window is filled."""
    m = _island_in_hole()
    shapes = mask_to_shapes(m, 1.0)
    frame = next(s for s in shapes if s.holes)
    rest = [s for s in shapes if s is not frame]
    rng = np.random.default_rng(3)
    for trial in range(30):
        which = trial % 2  # outer ring or the hole
        ring = frame.outer if which == 0 else frame.holes[0]
        i = int(rng.integers(len(ring))) if trial % 5 else (0 if trial % 10 else len(ring) - 1)
        kind = trial % 3
        if kind == 0:
            new = moved_vertex(ring, i, tuple(ring[i] + rng.uniform(-4, 4, 2)))
        elif kind == 1:
            new = inserted_vertex(ring, i, tuple((ring[i] + ring[(i + 1) % len(ring)]) / 2 + rng.uniform(-3, 3, 2)))
        else:
            new = deleted_vertex(ring, i)
        after = Outline(new, frame.holes) if which == 0 else Outline(frame.outer, (new,))
        full_changed = shapes_to_mask(m.shape, [frame]) ^ shapes_to_mask(m.shape, [after])
        full_changed |= _near_replaced_edges(ring, new, 2.0, m.shape)  # tolerance 1 + 1
        expected = np.where(full_changed, shapes_to_mask(m.shape, [after, *rest]), m)
        np.testing.assert_array_equal(edited(m, frame, after, [after, *rest], 1.0), expected)


def test_a_dragged_edge_leaves_no_specks_or_pinholes_along_it():
    """Where the mask strayed from the simplified ring (up to the tolerance), the edges an edit
    replaces take the polygon's pixels: no pinholes inside the new edges, no specks outside."""
    m = np.zeros((80, 80), np.uint8)
    cv2.circle(m, (40, 40), 25, 1, -1)
    m = m.astype(bool)
    (before,) = mask_to_shapes(m, 2.0)
    k = int(np.argmax(before.outer[:, 1]))  # the bottom vertex, pulled down
    after = Outline(moved_vertex(before.outer, k, tuple(before.outer[k] + (0, 8))), before.holes)
    for tolerance, clean in ((2.0, True), (0.0, False)):  # told the real tolerance, or not
        out = edited(m, before, after, [after], tolerance)
        along = _near_replaced_edges(after.outer, before.outer, 3.0, m.shape)  # around the new edges
        stray = (out ^ shapes_to_mask(m.shape, [after])) & along
        assert (not stray.any()) == clean, stray.sum()


def test_editable_shapes_of_a_clean_mask_are_its_shapes():
    from engine.imaging.polygons import editable_shapes

    m = np.zeros((60, 80), bool)
    m[10:50, 10:70] = True
    m[20:30, 20:30] = False
    editable = editable_shapes(m, 1.0)
    (shape,) = editable.shapes
    (expected,) = mask_to_shapes(m, 1.0)
    assert np.array_equal(shape.outer, expected.outer) and len(shape.holes) == 1
    assert (editable.small, editable.capped, editable.tolerance_px, editable.note()) == (0, 0, 1.0, None)


def test_editable_shapes_leave_out_specks_and_keep_within_the_handle_budget():
    from engine.imaging.polygons import editable_shapes, small_part_pixels

    rng = np.random.default_rng(0)
    m = np.zeros((300, 400), bool)
    m[50:250, 100:300] = True
    m ^= rng.random(m.shape) < 0.02
    editable = editable_shapes(m, 0.0)
    assert editable.small > 1000 and small_part_pixels(m.shape) == 4
    assert editable.vertices < sum(len(s.outer) + sum(map(len, s.holes)) for s in mask_to_shapes(m)) / 10
    assert "specks and pinholes under 4 px" in editable.note()
    # a tight budget: the tolerance is raised first, then only the largest parts are kept
    many = rng.random((300, 400)) < 0.3
    tight = editable_shapes(many, 0.5, max_vertices=200)
    assert tight.vertices <= 200 and tight.tolerance_px > 0.5 and tight.capped > 0
    assert "instead of 0.5 px" in tight.note() and "only the largest parts" in tight.note()
    # an edit of the kept square writes only near its edges: the specks left out stay
    big = max(editable.shapes, key=lambda s: len(s.outer))
    k = int(np.argmin(np.hypot(*(big.outer - (300, 250)).T)))
    after = Outline(moved_vertex(big.outer, k, (320, 270)), big.holes)
    shapes_after = [after if s is big else s for s in editable.shapes]
    r0, c0, patch = apply_shape_edit(m, big, after, shapes_after, editable.tolerance_px)
    out = m.copy()
    out[r0:r0 + patch.shape[0], c0:c0 + patch.shape[1]] = patch
    assert out[260, 310] and np.array_equal(out[:40], m[:40])
