"""Salient points from heat maps, and the grid <-> pixel mapping (engine.imaging.points)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine.errors import InputError
from engine.imaging.points import (GridPoints, auto_points, blur, extract_points, grid_to_pixels,
                           negative_points, pixels_to_grid)
from engine.prompts import Point

grid_shapes = st.tuples(st.integers(1, 24), st.integers(1, 24))
finite = st.floats(0, 1e3, allow_nan=False, allow_infinity=False, width=32)


@st.composite
def heat_maps(draw):
    shape = draw(grid_shapes)
    return draw(arrays(np.float32, shape, elements=finite))


point_kwargs = st.fixed_dictionaries({
    "num_points": st.integers(0, 8),
    "sigma": st.sampled_from([0.0, 0.5, 1.0, 2.0]),
    "suppression_radius": st.sampled_from([0.0, 1.0, 2.0, 3.5]),
    "min_relative_score": st.sampled_from([0.0, 0.2, 0.5]),
})


@settings(max_examples=150, deadline=None)
@given(heat=heat_maps(), kw=point_kwargs)
def test_extract_points_properties(heat, kw):
    gp = extract_points(heat, **kw)
    gh, gw = heat.shape
    assert isinstance(gp, GridPoints)
    assert len(gp) <= kw["num_points"]
    assert gp.scores.dtype == np.float32 and gp.scores.shape == gp.cols.shape == gp.rows.shape
    assert np.all((gp.cols >= 0) & (gp.cols < gw) & (gp.rows >= 0) & (gp.rows < gh))
    assert np.all(np.diff(gp.scores) <= 0), "scores must be ordered best first"
    r = kw["suppression_radius"]
    for i in range(len(gp)):
        for j in range(i + 1, len(gp)):
            d = np.hypot(gp.cols[i] - gp.cols[j], gp.rows[i] - gp.rows[j])
            assert d > r, f"points {i} and {j} are {d} apart, radius {r}"
    if len(gp):
        b = blur(heat, kw["sigma"])
        # The first point is the blurred maximum and scores are in the map's units.
        assert gp.scores[0] == pytest.approx(b.max(), rel=1e-5, abs=1e-6)
        assert b[int(gp.rows[0]), int(gp.cols[0])] == pytest.approx(b.max(), rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(heat=heat_maps(), size=st.tuples(st.integers(1, 4000), st.integers(1, 4000)),
       n=st.integers(0, 6), n_neg=st.integers(0, 3))
def test_auto_points_inside_the_image(heat, size, n, n_neg):
    pts = auto_points(heat, size, num_points=n, num_negative=n_neg)
    w, h = size
    assert all(isinstance(p, Point) and p.source == "auto" for p in pts)
    assert all(0 <= p.x <= w and 0 <= p.y <= h for p in pts)
    pos = [p for p in pts if p.label == 1]
    neg = [p for p in pts if p.label == 0]
    assert pts == tuple(pos + neg), "positives come first"
    assert len(pos) <= n and len(neg) <= n_neg
    assert all(p.score is not None for p in pos) and all(p.score is None for p in neg)
    assert [p.score for p in pos] == sorted((p.score for p in pos), reverse=True)


@pytest.mark.parametrize("value", [0.0, 1.0, 1e-4, 123.0, -5.0])
@pytest.mark.parametrize("shape", [(24, 24), (7, 13), (1, 1)])
def test_flat_map_gives_no_points(value, shape):
    heat = np.full(shape, value, dtype=np.float32)
    assert len(extract_points(heat)) == 0
    assert len(negative_points(heat, num_points=3)) == 0
    assert auto_points(heat, (100, 100), num_negative=2) == ()


@settings(max_examples=80, deadline=None)
@given(shape=grid_shapes, data=st.data(), scale=st.sampled_from([1e-6, 1e-3, 1.0, 1e4]),
       noise=st.floats(0, 0.3))
def test_single_hot_spot_comes_first(shape, data, scale, noise):
    gh, gw = shape
    assume(gh * gw > 1)  # a single cell is a flat map
    r = data.draw(st.integers(0, gh - 1))
    c = data.draw(st.integers(0, gw - 1))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    heat = rng.uniform(0, noise, size=shape) * scale
    heat[r, c] = scale * 10.0  # dominates any blurred neighbourhood of noise
    gp = extract_points(heat, sigma=1.0)
    assert len(gp) >= 1
    assert (gp.cols[0], gp.rows[0]) == (c, r)


def test_two_spots_found_in_order_and_tail_stops():
    heat = np.zeros((24, 24), np.float32)
    heat[4, 5] = 1.0
    heat[18, 20] = 0.6
    gp = extract_points(heat, num_points=5)
    assert list(zip(gp.cols, gp.rows)) == [(5, 4), (20, 18)]  # then the map is below 20 % of max


def test_min_relative_score_is_relative_to_contrast_not_offset():
    # A big constant offset must not turn the flat background into points.
    heat = np.full((24, 24), 100.0)
    heat[10, 10] = 101.0
    assert len(extract_points(heat, num_points=5)) == 1
    assert len(extract_points(heat - 100.0, num_points=5)) == 1


def test_suppression_is_explicit_even_without_a_bump_effect():
    # Two equal peaks one cell apart: the second must be excluded for radius 2.
    heat = np.zeros((10, 10))
    heat[5, 4] = heat[5, 5] = 1.0
    gp = extract_points(heat, num_points=5, sigma=0.0, suppression_radius=2.0, min_relative_score=0.0)
    assert len(gp) == 1
    gp0 = extract_points(heat, num_points=5, sigma=0.0, suppression_radius=0.0, min_relative_score=0.0)
    assert len(gp0) == 2


def test_non_square_grid_is_allowed():
    heat = np.zeros((6, 30))
    heat[2, 27] = 1.0
    gp = extract_points(heat)
    assert (gp.cols[0], gp.rows[0]) == (27, 2)
    xy = grid_to_pixels(gp.cols, gp.rows, heat.shape, (300, 60))
    np.testing.assert_allclose(xy, [[275.0, 25.0]])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_map_is_an_input_error(bad):
    heat = np.zeros((24, 24))
    heat[3, 3] = bad
    with pytest.raises(InputError, match="NaN or infinite"):
        extract_points(heat)
    with pytest.raises(InputError):
        auto_points(heat, (10, 10))


@pytest.mark.parametrize("kw", [{"num_points": -1}, {"num_points": 1.5}, {"sigma": -1},
                                {"sigma": float("nan")}, {"suppression_radius": -0.1},
                                {"min_relative_score": 1.5}, {"num_points": "five"},
                                {"sigma": None}, {"min_relative_score": float("nan")}])
def test_bad_parameters(kw):
    with pytest.raises(InputError):
        extract_points(np.eye(5), **kw)


@pytest.mark.parametrize("heat", [np.zeros(5), np.zeros((2, 2, 2)), np.zeros((0, 4)), np.array([["a"]])])
def test_bad_map_shapes(heat):
    with pytest.raises(InputError):
        extract_points(heat)


def test_auto_points_rejects_unknown_option():
    with pytest.raises(InputError, match="Unknown point option"):
        auto_points(np.eye(4), (10, 10), radius=3)


def test_blur_keeps_constant_maps_constant_and_mass_roughly():
    np.testing.assert_allclose(blur(np.full((5, 9), 3.0), 2.0), 3.0)
    heat = np.zeros((24, 24))
    heat[12, 12] = 1.0
    b = blur(heat, 1.0)
    assert b.sum() == pytest.approx(1.0, rel=1e-9)  # interior: the kernel sums to one
    assert b[12, 12] == b.max() and b[12, 11] == pytest.approx(b[11, 12])


def test_grid_to_pixels_cell_centres_scale_separately():
    xy = grid_to_pixels(np.array([0, 23]), np.array([0, 23]), (24, 24), (640, 480))
    np.testing.assert_allclose(xy, [[0.5 * 640 / 24, 0.5 * 480 / 24], [23.5 * 640 / 24, 23.5 * 480 / 24]])


@settings(max_examples=100, deadline=None)
@given(shape=grid_shapes, size=st.tuples(st.integers(1, 5000), st.integers(1, 5000)), data=st.data())
def test_pixels_to_grid_inverts_grid_to_pixels(shape, size, data):
    gh, gw = shape
    n = data.draw(st.integers(0, 5))
    cols = np.array(data.draw(st.lists(st.integers(0, gw - 1), min_size=n, max_size=n)), dtype=float)
    rows = np.array(data.draw(st.lists(st.integers(0, gh - 1), min_size=n, max_size=n)), dtype=float)
    xy = grid_to_pixels(cols, rows, shape, size)
    assert xy.shape == (n, 2)
    w, h = size
    assert np.all((xy[:, 0] > 0) & (xy[:, 0] < w) & (xy[:, 1] > 0) & (xy[:, 1] < h))
    back = pixels_to_grid(xy, shape, size)
    np.testing.assert_allclose(back, np.stack([cols, rows], axis=1).reshape(n, 2), atol=1e-9)


def test_pixel_to_grid_rounds_to_the_containing_cell():
    # A pixel near the bottom-right corner of a 640x480 image lies in cell (23, 23).
    cr = pixels_to_grid([[639.9, 479.9], [0.1, 0.1]], (24, 24), (640, 480))
    assert np.all(np.round(cr[0]) == 23) and np.all(np.round(cr[1]) == 0)


def test_grid_to_pixels_rejects_bad_sizes():
    with pytest.raises(InputError):
        grid_to_pixels([0], [0], (0, 24), (10, 10))
    with pytest.raises(InputError):
        grid_to_pixels([0, 1], [0], (24, 24), (10, 10))


def test_negative_points_are_cold_far_and_away_from_positives():
    heat = np.zeros((24, 24))
    heat[3, 3] = 1.0
    heat[4, 3] = 0.5
    neg = negative_points(heat, num_points=3)
    assert len(neg) == 3
    b = blur(heat, 1.0)
    for c, r in zip(neg.cols, neg.rows):
        assert b[int(r), int(c)] <= b.min() + 1e-3 * (b.max() - b.min())
    # The flat cold area is tie-broken towards the far corner from the hot spot.
    assert (neg.cols[0], neg.rows[0]) == (23, 23)
    pos = GridPoints(cols=np.array([22.0]), rows=np.array([22.0]), scores=np.array([1.0], np.float32))
    neg2 = negative_points(heat, num_points=3, suppression_radius=2.0, avoid=pos)
    for c, r in zip(neg2.cols, neg2.rows):
        assert np.hypot(c - 22, r - 22) > 2.0


def test_auto_points_labels_and_scores_are_separate():
    # The defect not to copy: labels multiplied by scores. Every positive is label 1 exactly.
    heat = np.zeros((24, 24))
    for k, (r, c) in enumerate([(2, 2), (2, 20), (20, 2), (20, 20), (12, 12)]):
        heat[r, c] = 1.0 - 0.1 * k
    pts = auto_points(heat, (384, 384), num_points=5, num_negative=1)
    assert [p.label for p in pts] == [1, 1, 1, 1, 1, 0]
    assert len({p.score for p in pts[:5]}) == 5
    assert (pts[0].x, pts[0].y) == (2.5 * 16, 2.5 * 16)
