"""stroke_patch against the brute-force definition on random polylines: exactly the same patch
(bounds and pixels), ties included (pixel-centre points and integer or half radii put many centres
exactly at the brush's edge)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from engine.imaging.paint import stroke_patch


def brute_force_stroke_patch(points, radius, shape):
    """The definition, pixel by pixel: a centre is under the brush when its squared distance to a
    segment (t clamped to [0, 1]; a single point is a zero-length segment) is at most r * r."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    r = float(radius)
    h, w = shape
    x0 = max(int(np.floor(pts[:, 0].min() - r)), 0)
    y0 = max(int(np.floor(pts[:, 1].min() - r)), 0)
    x1 = min(int(np.ceil(pts[:, 0].max() + r)) + 1, w)
    y1 = min(int(np.ceil(pts[:, 1].max() + r)) + 1, h)
    if x1 <= x0 or y1 <= y0:
        return None
    rows, cols = np.mgrid[y0:y1, x0:x1]
    cx, cy = cols + 0.5, rows + 0.5
    hit = np.zeros(cx.shape, dtype=bool)
    for a, b in [(pts[0], pts[0])] if len(pts) == 1 else zip(pts[:-1], pts[1:]):
        dx, dy = b[0] - a[0], b[1] - a[1]
        px, py = cx - a[0], cy - a[1]
        length2 = dx * dx + dy * dy
        t = np.clip((px * dx + py * dy) / length2, 0.0, 1.0) if length2 > 0 else 0.0
        ex, ey = px - t * dx, py - t * dy
        hit |= ex * ex + ey * ey <= r * r
    return y0, x0, hit


def assert_same(points, radius, shape):
    got, want = stroke_patch(points, radius, shape), brute_force_stroke_patch(points, radius, shape)
    if want is None:
        assert got is None
        return
    assert got is not None and got[:2] == want[:2]
    assert got[2].dtype == bool and got[2].shape == want[2].shape
    assert np.array_equal(got[2], want[2]), np.argwhere(got[2] != want[2])[:10].tolist()


_grid = st.integers(-20, 90)
coordinate = st.one_of(
    _grid.map(lambda k: k + 0.5),  # pixel centres
    _grid.map(float),  # pixel corners
    st.tuples(_grid, st.integers(1, 7)).map(lambda kj: kj[0] + kj[1] / 8),
    st.floats(-20, 90, allow_nan=False),
    st.floats(-3000, 3000, allow_nan=False),  # far outside: very long segments
)
point = st.tuples(coordinate, coordinate)
radius = st.one_of(st.integers(1, 80).map(float), st.integers(1, 160).map(lambda k: k / 2),
                   st.floats(0.5, 80))


@st.composite
def polylines(draw):
    pts = draw(st.lists(point, min_size=1, max_size=30))
    for i in draw(st.lists(st.integers(0, len(pts) - 1), max_size=4)):  # repeated points
        pts.insert(i, pts[i])
    return pts[:30]


@settings(max_examples=400, deadline=None)
@given(polylines(), radius, st.tuples(st.integers(1, 60), st.integers(1, 80)))
def test_stroke_patch_is_the_brute_force_definition(points, r, shape):
    assert_same(points, r, shape)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(-5, 45), st.integers(-5, 35)), min_size=1, max_size=12),
       st.integers(1, 12), st.sampled_from([0.0, 0.5]))
def test_axis_aligned_strokes_with_ties(corners, r, offset):
    # Horizontal, vertical and 45-degree runs with integer radii: whole rows lie exactly at r.
    points = [(x + offset, y + offset) for x, y in corners]
    assert_same(points, r, (30, 40))
    assert_same(points, r + 0.5, (30, 40))


def test_strokes_on_a_large_image():
    rng = np.random.default_rng(3)
    for r in (0.5, 3.0, 10.0, 60.0):
        steps = rng.normal(0, 8, (40, 2))
        points = np.cumsum(steps, axis=0) + (150.5, 120.0)
        assert_same(points.tolist(), r, (240, 320))
    assert_same([(-500.0, -400.0), (900.0, 700.0)], 7.5, (240, 320))  # a long diagonal across


def test_a_single_point_is_a_disc():
    y0, x0, patch = stroke_patch([(10.5, 10.5)], 3, (30, 40))
    assert (y0, x0, patch.sum()) == (7, 7, 29)  # the centres at distance <= 3 of a centre
    assert_same([(10.5, 10.5)], 3, (30, 40))
