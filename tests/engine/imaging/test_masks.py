"""Mask encodings: RLE round trips, pycocotools agreement, exact polygons with holes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as mask_utils

from engine.errors import InputError
from engine.imaging.masks import (
    decode_rle, encode_rle, mask_area, mask_bbox, mask_has_holes, mask_iou, mask_outlines,
    mask_to_keyhole_polygons, mask_to_polygons, polygon_area, polygons_to_mask,
    rle_area, rle_counts,
)

shapes = st.tuples(st.integers(1, 23), st.integers(1, 23))


@st.composite
def masks(draw):
    h, w = draw(shapes)
    kind = draw(st.sampled_from(["random", "empty", "full", "pixel", "blobs"]))
    if kind == "random":
        return draw(arrays(np.bool_, (h, w)))
    if kind == "empty":
        return np.zeros((h, w), bool)
    if kind == "full":
        return np.ones((h, w), bool)
    if kind == "pixel":
        m = np.zeros((h, w), bool)
        m[draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))] = True
        return m
    seed = draw(st.integers(0, 2**31 - 1))
    noise = np.random.default_rng(seed).random((h, w)).astype(np.float32)
    return cv2.GaussianBlur(noise, (5, 5), 0) > 0.5


def _coco(rle: dict) -> dict:
    return {"size": rle["size"], "counts": rle["counts"].encode("ascii")}


@settings(max_examples=150, deadline=None)
@given(masks())
def test_rle_round_trip_is_pixel_exact(mask):
    rle = encode_rle(mask)
    assert rle["size"] == list(mask.shape)
    assert isinstance(rle["counts"], str)
    back = decode_rle(rle)
    assert back.dtype == np.bool_ and back.shape == mask.shape
    np.testing.assert_array_equal(back, mask)
    np.testing.assert_array_equal(decode_rle(_coco(rle)), mask)  # bytes counts


@settings(max_examples=150, deadline=None)
@given(masks())
def test_agrees_with_pycocotools(mask):
    rle = encode_rle(mask)
    ref = _coco(rle)
    assert ref["counts"] == mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"]  # the same string
    np.testing.assert_array_equal(mask_utils.decode(ref).astype(bool), mask)
    assert mask_area(mask) == int(mask_utils.area(ref)) == rle_area(rle)
    np.testing.assert_allclose(mask_bbox(mask), mask_utils.toBbox(ref))


@settings(max_examples=60, deadline=None)
@given(masks())
def test_uncompressed_rle_is_accepted(mask):
    # Uncompressed RLE (list counts), as COCO stores iscrowd annotations.
    flat = mask.T.ravel()
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs = [0] + runs
    np.testing.assert_array_equal(decode_rle({"size": list(mask.shape), "counts": runs}), mask)
    # pycocotools reads the same uncompressed RLE to the same mask
    ref = mask_utils.frPyObjects({"size": list(mask.shape), "counts": runs}, *mask.shape)
    np.testing.assert_array_equal(mask_utils.decode(ref).astype(bool), mask)


@settings(max_examples=150, deadline=None)
@given(masks())
def test_keyhole_polygons_are_exact_and_pycocotools_agrees(mask):
    polys = mask_to_keyhole_polygons(mask)
    h, w = mask.shape
    ours = polygons_to_mask(polys, h, w) if polys else np.zeros_like(mask)
    np.testing.assert_array_equal(ours, mask)
    if polys:
        coco = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, h, w))).astype(bool)
        np.testing.assert_array_equal(coco, mask)


@settings(max_examples=100, deadline=None)
@given(masks())
def test_outer_polygons_fill_the_holes_only(mask):
    polys = mask_to_polygons(mask)
    h, w = mask.shape
    filled = polygons_to_mask(polys, h, w) if polys else np.zeros_like(mask)
    assert not (mask & ~filled).any()  # every mask pixel is covered
    extra = filled & ~mask
    assert extra.any() == mask_has_holes(mask)
    # the extra pixels are exactly the enclosed background (flood fill from the border)
    if mask.any():
        bg = np.pad(~mask, 1, constant_values=True).astype(np.uint8)
        ff = bg.copy()
        cv2.floodFill(ff, None, (0, 0), 2)
        enclosed = (ff[1:-1, 1:-1] == 1)
        np.testing.assert_array_equal(extra, enclosed)


def test_ring_with_hole_and_two_parts():
    m = np.zeros((12, 16), bool)
    m[1:8, 1:8] = True
    m[3:5, 3:5] = False  # a 2x2 hole
    m[9:11, 12:15] = True  # a second part
    outlines = mask_outlines(m)
    assert len(outlines) == 2
    assert sum(len(o.holes) for o in outlines) == 1
    polys = mask_to_polygons(m)
    areas = sorted(polygon_area(p) for p in polys)
    assert areas == [6.0, 49.0]  # pixel-edge polygons: area = pixel count (hole not subtracted)
    assert mask_has_holes(m)
    # corner convention: the 2x3 part spans x 12..15, y 9..11
    small = min(polys, key=polygon_area)
    xs, ys = small[0::2], small[1::2]
    assert (min(xs), max(xs), min(ys), max(ys)) == (12, 15, 9, 11)


def test_bbox_and_iou():
    m = np.zeros((5, 7), bool)
    assert mask_bbox(m) == [0, 0, 0, 0]
    m[2, 3] = True
    assert mask_bbox(m) == [3, 2, 1, 1]
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    assert mask_iou(a, b) == 1.0
    a[:2] = True
    b[1:3] = True
    assert mask_iou(a, b) == pytest.approx(4 / 12)
    with pytest.raises(InputError):
        mask_iou(a, np.zeros((3, 4), bool))


@pytest.mark.parametrize("bad", [
    {"size": [2, 2], "counts": [1, 2]},  # covers 3 of 4 pixels
    {"size": [2, 2], "counts": [5]},  # covers too many
    {"size": [2, 2], "counts": [2, -1, 3]},
    {"size": [2, 2]},
    {"size": [0, 2], "counts": []},
    {"size": "2x2", "counts": "04"},
    {"size": [2, 2], "counts": "0\x7f"},  # outside COCO's code
    {"size": [2, 2], "counts": "0?"},  # '?' = 15 with no continuation: fine value; checked below
    {"size": [3, 3], "counts": "P"},  # continuation bit on the last char: truncated
    {"size": [3, 3], "counts": 3.5},
])
def test_malformed_rle_is_refused(bad):
    if bad.get("counts") == "0?":
        # '0' = 0 then '?' = 15 -> 15 pixels for a 4-pixel mask
        with pytest.raises(InputError, match="15"):
            decode_rle(bad)
        return
    with pytest.raises(InputError):
        decode_rle(bad)


def test_large_counts_round_trip():
    # runs > 2**15 need several characters and the delta code
    m = np.zeros((300, 400), bool)
    m[:, 200:] = True
    m[100:150, 10:20] = True
    h, w, runs = rle_counts(encode_rle(m))
    assert (h, w) == (300, 400) and runs.sum() == 300 * 400
    np.testing.assert_array_equal(decode_rle(encode_rle(m)), m)


def test_encoder_writes_pycocotools_string_for_large_and_odd_masks():
    # Our encoder (GIL-friendly, engine.imaging.rle) must write pycocotools' own string: runs of
    # millions of pixels, negative deltas, views and non-bool arrays included.
    rng = np.random.default_rng(3)
    big = np.zeros((3000, 4000), bool)
    big[500:2600, 1000:3900] = True
    big[1000:1200, 2000:2100] = False
    big[:, 10] = rng.random(3000) < 0.5
    ragged = cv2.GaussianBlur(rng.random((600, 800)).astype(np.float32), (0, 0), 2) > 0.5
    for m in (big, ragged, ragged.T, ragged[::3, 1::2], ragged.astype(np.uint8) * 7, np.ones((1, 1), bool)):
        ref = mask_utils.encode(np.asfortranarray((np.asarray(m) != 0).astype(np.uint8)))["counts"].decode("ascii")
        assert encode_rle(m)["counts"] == ref


def test_polygons_to_mask_rules():
    square = [0, 0, 4, 0, 4, 4, 0, 4]
    inner = [1, 1, 3, 1, 3, 3, 1, 3]
    union = polygons_to_mask([square, inner], 5, 5)
    evenodd = polygons_to_mask([square, inner], 5, 5, rule="evenodd")
    assert union.sum() == 16 and evenodd.sum() == 12
    with pytest.raises(InputError):
        polygons_to_mask([[0, 0, 1, 1]], 5, 5)


def test_tolerance_simplifies_but_stays_close():
    m = np.zeros((120, 160), np.uint8)
    cv2.circle(m, (80, 60), 45, 1, -1)
    m = m.astype(bool)
    exact = mask_to_polygons(m)
    simple = mask_to_polygons(m, tolerance=1.0)
    assert len(simple[0]) < len(exact[0]) / 3
    back = polygons_to_mask(simple, 120, 160)
    assert mask_iou(back, m) > 0.97
    np.testing.assert_array_equal(polygons_to_mask(exact, 120, 160), m)


def test_large_mask_outlines_crop_to_the_object():
    m = np.zeros((2000, 3000), bool)
    m[1500:1510, 2900:2950] = True
    (outline,) = mask_outlines(m)
    xs, ys = outline.outer[:, 0], outline.outer[:, 1]
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (2900, 2950, 1500, 1510)


def test_rle_bbox_from_runs_equals_the_decoded_masks_box():
    # COCO export takes the box straight from the stored RLE (no decoding): same box as the mask's.
    from engine.imaging.masks import encode_rle, mask_bbox, rle_bbox

    rng = np.random.default_rng(7)
    for t in range(300):
        h, w = (int(v) for v in rng.integers(1, 30, 2))
        m = np.zeros((h, w), bool)
        if t % 3:
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            m[y0:y0 + rng.integers(1, 10), x0:x0 + rng.integers(1, 10)] = True
        if t % 5 == 0:
            m |= rng.random((h, w)) > 0.9
        assert rle_bbox(encode_rle(m)) == mask_bbox(m)


def test_a_lazy_rle_is_encoded_once_by_whoever_asks_first():
    import copy
    import pickle
    import threading

    from engine.imaging.rle import LazyRLE

    m = np.zeros((300, 400), bool)
    m[20:200, 50:300] = True
    lazy = LazyRLE(m)
    assert lazy.mask is not None
    seen: list = []
    threads = [threading.Thread(target=lambda: seen.append(lazy.resolve())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is seen[0] for r in seen) and seen[0] == encode_rle(m)  # one encoding, shared
    assert lazy.mask is None  # the array is let go once encoded
    for back in (pickle.loads(pickle.dumps(LazyRLE(m))), copy.deepcopy(LazyRLE(m))):
        assert type(back) is dict and back == encode_rle(m)  # pickled or deep-copied: the RLE itself
