"""Polygons through pixel centres: filled by cv2.fillPoly (Ultralytics, supervision) and PIL's
polygon with outline (labelme), they give the mask back pixel for pixel; holes survive as
zero-width cuts; parts joined into one polygon add only their bridges' background pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine.imaging.centre_polygons import centre_parts, centre_polygon

from support.dataset_readers import labelme_shape_to_mask


def cv2_fill(polygons, h, w):
    """Each polygon filled on its own (Ultralytics and supervision: one per instance row or shape)."""
    out = np.zeros((h, w), bool)
    for p in polygons:
        m = np.zeros((h, w), np.uint8)
        cv2.fillPoly(m, [np.asarray(p, np.int32).reshape(-1, 1, 2)], 1)
        out |= m.astype(bool)
    return out


def pil_fill(polygons, h, w):
    out = np.zeros((h, w), bool)
    for p in polygons:
        out |= labelme_shape_to_mask((h, w), np.asarray(p).tolist(), "polygon")
    return out


def shapes():
    h, w = 24, 30
    line = np.zeros((h, w), bool)
    line[5, 3:20] = True
    vline = np.zeros((h, w), bool)
    vline[2:20, 7] = True
    diagonal = np.eye(12, dtype=bool)[:, ::-1]
    pixel = np.zeros((h, w), bool)
    pixel[7, 9] = True
    ring = np.zeros((h, w), bool)
    ring[3:20, 4:25] = True
    ring[7:15, 9:20] = False
    ring[10:12, 13:16] = True  # an island in the hole
    two = np.zeros((h, w), bool)
    two[2:9, 2:9] = True
    two[12:22, 15:28] = True
    border = np.zeros((h, w), bool)
    border[:6, :] = True
    border[:, -3:] = True
    checker = (np.indices((8, 8)).sum(0) % 2).astype(bool)  # diagonal neighbours: one 8-connected part
    return {"line": line, "vline": vline, "diagonal": diagonal, "pixel": pixel, "ring": ring, "two blobs": two,
            "border": border, "checker": checker, "full": np.ones((5, 7), bool)}


@pytest.mark.parametrize("name", list(shapes()))
def test_parts_fill_back_exactly(name):
    m = shapes()[name]
    polys = centre_parts(m)
    assert all(len(p) >= 3 and p.dtype == np.int64 for p in polys)
    assert len(polys) == cv2.connectedComponents(m.astype(np.uint8), connectivity=8)[0] - 1
    np.testing.assert_array_equal(cv2_fill(polys, *m.shape), m)
    np.testing.assert_array_equal(pil_fill(polys, *m.shape), m)


@settings(max_examples=150, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 24), st.integers(1, 24))))
def test_random_masks_fill_back_exactly(m):
    polys = centre_parts(m)
    np.testing.assert_array_equal(cv2_fill(polys, *m.shape), m)
    np.testing.assert_array_equal(pil_fill(polys, *m.shape), m)


def test_blurred_noise_with_many_holes():
    rng = np.random.default_rng(5)
    for _ in range(60):
        noise = cv2.GaussianBlur(rng.random((60, 70)).astype(np.float32), (3, 3), 0)
        m = noise > rng.uniform(0.35, 0.55)
        np.testing.assert_array_equal(cv2_fill(centre_parts(m), *m.shape), m)


@pytest.mark.parametrize("name", list(shapes()))
def test_one_polygon_keeps_every_pixel_and_adds_only_bridges(name):
    m = shapes()[name]
    p = centre_polygon(m)
    got = cv2_fill([p], *m.shape)
    assert not (m & ~got).any()
    n_parts = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)[0] - 1
    if n_parts == 1:
        np.testing.assert_array_equal(got, m)  # holes and islands-free parts: exact
    extra = got & ~m
    if name == "two blobs":
        assert extra.sum() == 6  # the shortest bridge, (8, 8) to (15, 12): 8 pixels, 6 of them background
    if name == "ring":
        assert extra.sum() == 3  # the island joined to the ring across the 3 background rows above it


def test_one_polygon_is_a_minimum_spanning_tree_of_the_parts():
    m = np.zeros((40, 90), bool)
    for x in (2, 30, 60):  # three blobs in a row, gaps of 10 and 12 background columns
        m[10:30, x:x + 18] = True
    got = cv2_fill([centre_polygon(m)], *m.shape)
    assert not (m & ~got).any() and (got & ~m).sum() == 10 + 12


def test_empty_and_tolerance():
    assert centre_parts(np.zeros((4, 4), bool)) == [] and centre_polygon(np.zeros((4, 4), bool)) is None
    m = np.zeros((100, 100), np.uint8)
    cv2.circle(m, (50, 50), 40, 1, -1)
    m = m.astype(bool)
    m[40:60, 40:60] = False
    exact = centre_parts(m)
    for tol in (1.0, 2.0):
        simple = centre_parts(m, tol)
        assert sum(map(len, simple)) < sum(map(len, exact)) / 3
        got = cv2_fill(simple, 100, 100)
        assert not got[50, 50] and (got & m).sum() / (got | m).sum() > 0.95  # the hole survives


def test_large_mask_with_many_holes_is_exact():
    m = np.zeros((600, 800), bool)
    m[20:580, 20:780] = True
    rng = np.random.default_rng(0)
    for _ in range(800):
        y, x = rng.integers(40, 560), rng.integers(40, 760)
        m[y:y + rng.integers(1, 5), x:x + rng.integers(1, 5)] = False
    np.testing.assert_array_equal(cv2_fill([centre_polygon(m)], *m.shape), m)
