"""Hot regions of a heat map and points inside one (engine.imaging.regions, points.py's ``within``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine.errors import InputError
from engine.imaging.points import blur, extract_points, pixels_to_grid, why_fewer_points
from engine.imaging.regions import (MIN_REGION_CELLS, REGION_HIGH, REGION_LOW, HotRegion, hot_regions,
                                    region_points)
from engine.prompts import Point


def blobs(shape, spots, width=1.5):
    """A map of Gaussian blobs: spots = [(row, col, height), ...]."""
    rr, cc = np.mgrid[0:shape[0], 0:shape[1]]
    heat = np.zeros(shape, np.float32)
    for r, c, a in spots:
        heat += a * np.exp(-((rr - r) ** 2 + (cc - c) ** 2) / (2 * width ** 2))
    return heat


THREE = [(5, 5, 1.0), (5, 18, 0.8), (18, 12, 0.6)]


def test_three_blobs_three_regions_best_first():
    heat = blobs((24, 24), THREE)
    regions = hot_regions(heat)
    assert [r.peak_cell for r in regions] == [(5, 5), (18, 5), (12, 18)]
    assert [r.peak for r in regions] == sorted((r.peak for r in regions), reverse=True)
    assert regions[0].relative_peak == pytest.approx(1.0)
    b = blur(heat, 1.0)
    for r in regions:
        assert isinstance(r, HotRegion) and r.grid_mask.dtype == np.bool_ and r.grid_mask.shape == (24, 24)
        assert r.peak == pytest.approx(b[r.peak_row, r.peak_col])
        assert r.grid_mask[r.peak_row, r.peak_col]
        assert r.cells >= MIN_REGION_CELLS
        assert 0 < r.mass_share <= 1 and r.mass == pytest.approx(float((b - b.min())[r.grid_mask].sum()))
        assert not r.grid_mask.flags.writeable


@pytest.mark.parametrize("value", [0.0, 1.0, -3.0, 1e-7])
@pytest.mark.parametrize("shape", [(24, 24), (5, 9), (1, 1)])
def test_flat_map_gives_no_region(value, shape):
    assert hot_regions(np.full(shape, value)) == ()


@pytest.mark.parametrize("sigma, cells", [(0.0, 1), (1.0, None)])
@pytest.mark.parametrize("at", [(0, 0), (7, 12), (23, 23), (0, 23)])
def test_single_hot_cell_is_one_region(sigma, cells, at):
    heat = np.zeros((24, 24))
    heat[at] = 1.0
    regions = hot_regions(heat, sigma=sigma)
    assert len(regions) == 1
    assert regions[0].peak_cell == (at[1], at[0])
    if cells is not None:  # unblurred: the one cell, kept though below min_cells (it holds the peak)
        assert regions[0].cells == cells


def test_blob_on_the_border_and_non_square_grid():
    heat = blobs((12, 30), [(0, 29, 1.0), (11, 0, 0.9), (6, 15, 0.7)], width=1.2)
    regions = hot_regions(heat)
    assert [r.peak_cell for r in regions] == [(29, 0), (0, 11), (15, 6)]
    assert all(r.grid_mask.shape == (12, 30) for r in regions)


def test_weak_blob_dropped_relative_to_global_peak():
    heat = blobs((24, 24), [(6, 6, 1.0), (18, 18, 0.3)])
    assert [r.peak_cell for r in hot_regions(heat)] == [(6, 6)]
    # Its own extent is above `low`, so a lower seed threshold keeps it.
    assert [r.peak_cell for r in hot_regions(heat, high=0.25, low=0.2)] == [(6, 6), (18, 18)]


def test_tiny_region_dropped_but_never_the_peak():
    heat = np.zeros((24, 24))
    heat[5:9, 5:9] = 1.0
    heat[18, 18] = 0.9  # one strong cell: 1 cell without blur
    regions = hot_regions(heat, sigma=0.0)
    assert [r.cells for r in regions] == [16]
    assert [r.cells for r in hot_regions(heat, sigma=0.0, min_cells=1)] == [16, 1]
    heat[5:9, 5:9] = 0.5  # now the single cell holds the peak: kept though tiny
    assert [r.peak_cell for r in hot_regions(heat, sigma=0.0)] == [(18, 18), (5, 5)]


def test_touching_blobs_joined_above_low_are_one_region():
    heat = blobs((24, 24), [(12, 8, 1.0), (12, 14, 1.0)])  # the saddle between them is at 50 %
    assert len(hot_regions(heat)) == 1
    assert len(hot_regions(heat, low=0.6, high=0.8)) == 2


def test_diagonal_cells_are_connected():
    heat = np.zeros((8, 8))
    heat[2, 2] = heat[3, 3] = heat[4, 4] = 1.0
    regions = hot_regions(heat, sigma=0.0, min_cells=1)
    assert len(regions) == 1 and regions[0].cells == 3


def test_constant_offset_changes_nothing():
    heat = blobs((24, 24), THREE)
    a = hot_regions(heat)
    b = hot_regions(heat + 100.0)
    assert [r.peak_cell for r in a] == [r.peak_cell for r in b]
    for ra, rb in zip(a, b):
        np.testing.assert_array_equal(ra.grid_mask, rb.grid_mask)
        assert rb.peak == pytest.approx(ra.peak + 100.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_map_refused(bad):
    heat = blobs((24, 24), THREE)
    heat[3, 3] = bad
    with pytest.raises(InputError, match="NaN or infinite"):
        hot_regions(heat)


@pytest.mark.parametrize("kw", [{"low": 0.6, "high": 0.5}, {"low": -0.1}, {"high": 1.5}, {"sigma": -1},
                                {"min_cells": -1}, {"min_cells": 2.5}, {"low": float("nan")}])
def test_bad_parameters_refused(kw):
    with pytest.raises(InputError):
        hot_regions(blobs((8, 8), [(4, 4, 1.0)]), **kw)


@pytest.mark.parametrize("heat", [np.zeros(5), np.zeros((2, 2, 2)), np.zeros((0, 3)), np.array([["x"]])])
def test_bad_map_shapes_refused(heat):
    with pytest.raises(InputError):
        hot_regions(heat)


@settings(max_examples=120, deadline=None)
@given(heat=st.tuples(st.integers(1, 24), st.integers(1, 24)).flatmap(
    lambda s: arrays(np.float32, s, elements=st.floats(0, 1e3, width=32))),
    sigma=st.sampled_from([0.0, 0.7, 1.0, 2.0]), low=st.sampled_from([0.1, 0.3, 0.5]),
    high=st.sampled_from([0.5, 0.8, 1.0]))
def test_region_properties(heat, sigma, low, high):
    regions = hot_regions(heat, sigma=sigma, low=low, high=high)
    covered = np.zeros(heat.shape, int)
    for r in regions:
        covered += r.grid_mask
        assert r.grid_mask[r.peak_row, r.peak_col]
    assert covered.max(initial=0) <= 1, "regions never overlap"
    keys = [(-r.peak, -r.mass) for r in regions]
    assert keys == sorted(keys)
    b = blur(heat, sigma)
    if regions:
        assert regions[0].peak == pytest.approx(b.max(), rel=1e-9)
        rel = (b - b.min()) / (b.max() - b.min())
        assert all(np.all(rel[r.grid_mask] >= low - 1e-12) for r in regions)
        assert all(r.relative_peak >= high - 1e-12 or r is regions[0] for r in regions)
        assert sum(r.mass_share for r in regions) <= 1 + 1e-9


# --- points inside a region -------------------------------------------------------------------------

def test_extract_points_within_only_picks_those_cells():
    heat = blobs((24, 24), THREE)
    regions = hot_regions(heat)
    second = regions[1].grid_mask
    gp = extract_points(heat, num_points=5, within=second)
    assert len(gp) >= 1
    assert all(second[int(r), int(c)] for c, r in zip(gp.cols, gp.rows))
    assert (gp.cols[0], gp.rows[0]) == regions[1].peak_cell
    # Without `within`, the same call is unchanged (the first point is the global peak).
    assert (extract_points(heat).cols[0], extract_points(heat).rows[0]) == regions[0].peak_cell


def test_within_min_score_is_relative_to_the_region_peak():
    heat = np.zeros((24, 24))
    heat[2, 2] = 1.0
    heat[12:20, 12:20] = 0.1  # weak plateau: 10 % of the peak, under min_relative_score 0.2 globally
    within = np.zeros((24, 24), bool)
    within[12:20, 12:20] = True
    assert len(extract_points(heat, num_points=4, sigma=0.0, within=within)) == 4


def test_within_with_no_cell_gives_no_point_and_says_why():
    heat = blobs((24, 24), THREE)
    none = np.zeros((24, 24), bool)
    assert len(extract_points(heat, within=none)) == 0
    assert why_fewer_points(heat, within=none) == "no_cells"


@pytest.mark.parametrize("within", [np.ones((24, 23), bool), np.ones((24, 24), int)])
def test_within_must_be_a_bool_grid_of_the_map_shape(within):
    with pytest.raises(InputError):
        extract_points(blobs((24, 24), THREE), within=within)


@pytest.mark.parametrize("shape, size", [((24, 24), (640, 480)), ((12, 30), (300, 900)), ((24, 24), (1, 1))])
def test_region_points_are_pixels_inside_their_region(shape, size):
    gh, gw = shape
    heat = blobs(shape, [(2, 3, 1.0), (gh - 3, gw - 4, 0.8)], width=1.5)
    for region in hot_regions(heat):
        pts = region_points(heat, region, size, num_points=3)
        assert pts and all(isinstance(p, Point) and p.label == 1 and p.source == "auto" for p in pts)
        assert [p.score for p in pts] == sorted((p.score for p in pts), reverse=True)
        cells = np.rint(pixels_to_grid([[p.x, p.y] for p in pts], shape, size)).astype(int)
        assert all(region.grid_mask[r, c] for c, r in cells)
        first = pts[0]
        # grid -> pixel exactly as points.py maps cell centres: x = (col + 0.5) W / Gw, y = (row + 0.5) H / Gh
        assert (first.x, first.y) == pytest.approx(((region.peak_col + 0.5) * size[0] / gw,
                                                    (region.peak_row + 0.5) * size[1] / gh))


def test_region_points_negatives_are_cold_and_come_last():
    heat = blobs((24, 24), THREE)
    region = hot_regions(heat)[2]
    pts = region_points(heat, region, (480, 480), num_points=2, num_negative=2)
    labels = [p.label for p in pts]
    assert labels[:1] == [1] and labels.count(0) == 2 and labels[-2:] == [0, 0]
    neg_cells = np.rint(pixels_to_grid([[p.x, p.y] for p in pts if p.label == 0], (24, 24), (480, 480)))
    assert not any(region.grid_mask[int(r), int(c)] for c, r in neg_cells)


def test_region_points_take_a_plain_mask():
    heat = blobs((24, 24), THREE)
    region = hot_regions(heat)[1]
    assert region_points(heat, region.grid_mask, (100, 100)) == region_points(heat, region, (100, 100))


def test_default_thresholds_are_ordered():
    assert 0 < REGION_LOW <= REGION_HIGH <= 1
