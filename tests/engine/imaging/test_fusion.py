"""Heat map + mask fusion and caption sampling weights (engine.imaging.fusion)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine.errors import InputError
from engine.imaging.fusion import blend, fuse, mask_to_grid, normalise

G = st.integers(1, 12)
unit = st.floats(0, 1, allow_nan=False, width=64)
heat_values = st.floats(0, 1e3, allow_nan=False, allow_infinity=False)


@st.composite
def heat_and_mask(draw):
    gh, gw = draw(G), draw(G)
    heat = draw(arrays(np.float64, (gh, gw), elements=heat_values))
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    mask = draw(arrays(np.bool_, (h, w)))
    return heat, mask


@settings(max_examples=150, deadline=None)
@given(hm=heat_and_mask(), alpha=unit, scale=st.sampled_from([1e-12, 1e-3, 1.0, 1e6]))
def test_fuse_is_bounded_finite_float32(hm, alpha, scale):
    heat, mask = hm
    for m in (mask, None):
        out = fuse(heat * scale, m, alpha)
        assert out.dtype == np.float32 and out.shape == heat.shape
        assert np.all(np.isfinite(out)) and out.min() >= 0 and out.max() <= 1


@settings(max_examples=150, deadline=None)
@given(hm=heat_and_mask(), a1=unit, a2=unit)
def test_blend_moves_monotonically_from_mask_to_heat(hm, a1, a2):
    heat, mask = hm
    h01 = normalise(heat)
    mg = mask_to_grid(mask, heat.shape)
    lo, hi = sorted((a1, a2))
    b_lo, b_hi = blend(h01, mg, lo), blend(h01, mg, hi)
    up = h01 >= mg  # cells where the heat exceeds the mask rise with alpha, the others fall
    assert np.all(b_hi[up] >= b_lo[up] - 1e-12)
    assert np.all(b_hi[~up] <= b_lo[~up] + 1e-12)
    # And each value lies between the mask and the heat value.
    assert np.all(b_lo >= np.minimum(h01, mg) - 1e-12) and np.all(b_lo <= np.maximum(h01, mg) + 1e-12)
    np.testing.assert_allclose(blend(h01, mg, 0.0), mg, atol=1e-7)
    np.testing.assert_allclose(blend(h01, mg, 1.0), h01)


@settings(max_examples=100, deadline=None)
@given(hm=heat_and_mask())
def test_alpha_extremes(hm):
    heat, mask = hm
    np.testing.assert_allclose(fuse(heat, mask, 1.0), normalise(heat), atol=1e-6)
    np.testing.assert_allclose(fuse(heat, mask, 0.0), normalise(mask_to_grid(mask, heat.shape)), atol=1e-6)
    np.testing.assert_allclose(fuse(heat, None, 0.3), normalise(heat), atol=1e-6)


def test_heat_is_normalised_before_mixing():
    # Grad-CAM values are tiny; without normalising first the mask would swamp them at alpha 0.5.
    heat = np.zeros((4, 4))
    heat[0, 0] = 1e-3
    mask = np.zeros((40, 40), bool)
    mask[30:, 30:] = True  # exactly cell (3, 3)
    out = fuse(heat, mask, 0.5)
    assert out[0, 0] == pytest.approx(1.0) and out[3, 3] == pytest.approx(1.0)
    out = fuse(heat, mask, 0.75)
    assert out[0, 0] == pytest.approx(1.0) and out[3, 3] == pytest.approx(1 / 3)
    assert out[1, 1] == 0.0


def test_degenerate_inputs_are_defined():
    z = np.zeros((24, 24))
    empty = np.zeros((50, 60), bool)
    assert np.all(fuse(z, None) == 0) and np.all(fuse(z, empty) == 0)
    full = np.ones((50, 60), bool)
    assert np.all(fuse(z, full, 0.0) == 1)  # everything equally relevant


@pytest.mark.parametrize("alpha", [-0.01, 1.01, float("nan"), "a", None])
def test_bad_alpha(alpha):
    with pytest.raises(InputError, match="alpha"):
        fuse(np.eye(3), None, alpha)
    with pytest.raises(InputError, match="alpha"):
        blend(np.eye(3), np.eye(3), alpha)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_heat(bad):
    heat = np.eye(4)
    heat[1, 2] = bad
    with pytest.raises(InputError, match="NaN or infinite"):
        fuse(heat, None)


def test_blend_shape_mismatch():
    with pytest.raises(InputError, match="differ in shape"):
        blend(np.zeros((3, 3)), np.zeros((3, 4)), 0.5)


@pytest.mark.parametrize("mask", [np.zeros(5, bool), np.zeros((0, 3), bool),
                                  np.full((4, 4), 2.0), np.array([["x"]])])
def test_bad_masks(mask):
    with pytest.raises(InputError):
        mask_to_grid(mask, (2, 2))


@settings(max_examples=100, deadline=None)
@given(mask=st.integers(1, 60).flatmap(lambda h: st.integers(1, 60).flatmap(
    lambda w: arrays(np.bool_, (h, w)))), gh=G, gw=G)
def test_mask_to_grid_is_an_exact_area_average(mask, gh, gw):
    g = mask_to_grid(mask, (gh, gw))
    h, w = mask.shape
    assert g.dtype == np.float32 and g.shape == (gh, gw)
    assert g.min() >= 0 and g.max() <= 1
    # Area is conserved: mean coverage of the cells = covered fraction of the image.
    assert float(g.astype(np.float64).mean()) == pytest.approx(mask.mean(), abs=1e-5)
    # Brute force reference: upsample both by lcm factors so cells are whole pixel blocks.
    ly, lx = np.lcm(h, gh), np.lcm(w, gw)
    if ly * lx <= 200_000:
        up = np.repeat(np.repeat(mask, ly // h, axis=0), lx // w, axis=1).astype(np.float64)
        ref = up.reshape(gh, ly // gh, gw, lx // gw).mean(axis=(1, 3))
        np.testing.assert_allclose(g, ref, atol=1e-5)


@pytest.mark.parametrize("shape", [(96, 144), (37, 53), (500, 333), (480, 640)])
def test_mask_to_grid_matches_inter_area_when_shrinking(shape):
    # cv2's INTER_AREA is an exact area average when both axes shrink, integer ratio or not.
    rng = np.random.default_rng(0)
    mask = rng.random(shape) > 0.6
    ref = cv2.resize(mask.astype(np.float32), (24, 24), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(mask_to_grid(mask, (24, 24)), ref, atol=1e-6)


def test_mask_to_grid_when_the_mask_is_smaller_than_the_grid():
    # 1 x 2 pixels onto 2 x 4 cells: each pixel covers exactly two columns of cells.
    g = mask_to_grid(np.array([[True, False]]), (2, 4))
    np.testing.assert_allclose(g, [[1, 1, 0, 0], [1, 1, 0, 0]], atol=1e-6)
    # 1 x 3 pixels onto 1 x 2 cells: cell 1 = half of pixel 1 + pixel 2, over 1.5 pixels.
    g = mask_to_grid(np.array([[False, True, True]]), (1, 2))
    np.testing.assert_allclose(g, [[1 / 3, 1.0]], atol=1e-6)


def test_mask_to_grid_non_integer_ratio_by_hand():
    # 3 pixels onto 2 cells: cell 0 = pixel 0 + half of pixel 1, over 1.5 pixels.
    mask = np.array([[True, True, False]])
    g = mask_to_grid(mask, (1, 2))
    np.testing.assert_allclose(g, [[1.0, 1 / 3]], atol=1e-6)


def test_mask_to_grid_large_mask_in_chunks():
    mask = np.zeros((1500, 1100), bool)  # more rows than one chunk
    mask[:750] = True
    g = mask_to_grid(mask, (24, 24))
    np.testing.assert_allclose(g[:12], 1.0, atol=1e-6)
    np.testing.assert_allclose(g[12:], 0.0, atol=1e-6)


def test_soft_masks_are_accepted():
    soft = np.full((10, 10), 0.25)
    np.testing.assert_allclose(mask_to_grid(soft, (2, 5)), 0.25, atol=1e-6)


def test_normalise_constant_and_extreme_values():
    assert np.all(normalise(np.full((3, 3), 5.0)) == 1)
    assert np.all(normalise(np.zeros((3, 3))) == 0)
    big = np.array([[-1e308, 1e308]])
    np.testing.assert_allclose(normalise(big), [[0.0, 1.0]])
