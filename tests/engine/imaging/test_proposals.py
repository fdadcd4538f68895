"""Object proposals from hot regions (engine.annotation.proposals), with stand-in decoders.

The decoders here are test doubles for EfficientSAM's: deterministic functions of the prompt
points (a disk around them, or the scene object under the first positive point).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.annotation.proposals import (CONTAIN_SHARE, MERGE_IOU, Proposal, duplicates_of, mask_overlap,
                                         propose_instances)
from engine.errors import InputError
from engine.imaging.points import pixels_to_grid
from engine.imaging.regions import hot_regions


def blobs(shape, spots, width=1.5):
    rr, cc = np.mgrid[0:shape[0], 0:shape[1]]
    heat = np.zeros(shape, np.float32)
    for r, c, a in spots:
        heat += a * np.exp(-((rr - r) ** 2 + (cc - c) ** 2) / (2 * width ** 2))
    return heat


def disk(size, cx, cy, radius):
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= radius ** 2


class DiskDecoder:
    """A disk of ``radius`` pixels around the positive points' mean; score from a table or 0.9."""

    def __init__(self, size, radius, scores=None):
        self.size, self.radius, self.scores, self.calls = size, radius, scores or [], []

    def __call__(self, points):
        self.calls.append(points)
        pos = [p for p in points if p.label == 1]
        cx, cy = np.mean([p.x for p in pos]), np.mean([p.y for p in pos])
        score = self.scores[len(self.calls) - 1] if len(self.calls) <= len(self.scores) else 0.9
        return disk(self.size, cx, cy, self.radius), score


class SceneDecoder:
    """The scene object under the first positive point (what SAM does on a clean object)."""

    def __init__(self, objects, scores=None):
        self.objects, self.scores, self.calls = objects, scores or {}, 0

    def __call__(self, points):
        self.calls += 1
        p = next(p for p in points if p.label == 1)
        for i, obj in enumerate(self.objects):
            if obj[int(p.y), int(p.x)]:
                return obj, self.scores.get(i, 0.9)
        return np.zeros_like(self.objects[0]), 0.1


SIZE = (320, 240)  # W != H
THREE = [(5, 5, 1.0), (5, 18, 0.8), (18, 12, 0.6)]


def test_three_blobs_three_proposals():
    heat = blobs((24, 24), THREE)
    dec = DiskDecoder(SIZE, radius=20)
    props = propose_instances(heat, SIZE, dec)
    assert len(props) == 3 and len(dec.calls) == 3
    assert [p.regions for p in props] == [(0,), (1,), (2,)]
    assert [p.region for p in props] == [0, 1, 2]
    regions = hot_regions(heat)
    for prop, region in zip(props, regions):
        assert isinstance(prop, Proposal) and prop.mask.shape == (240, 320) and prop.mask.dtype == np.bool_
        assert prop.area == int(prop.mask.sum()) > 0 and prop.score == 0.9
        cells = np.rint(pixels_to_grid([[q.x, q.y] for q in prop.points], (24, 24), SIZE)).astype(int)
        assert all(region.grid_mask[r, c] for c, r in cells)
        assert not prop.mask.flags.writeable
    # The masks lie over their blobs: each disk holds its blob's peak pixel.
    for prop, (r, c, _) in zip(props, THREE):
        x, y = (c + 0.5) * SIZE[0] / 24, (r + 0.5) * SIZE[1] / 24
        assert prop.mask[int(y), int(x)]


def test_one_blob_one_proposal():
    heat = blobs((24, 24), [(12, 12, 1.0)])
    props = propose_instances(heat, SIZE, DiskDecoder(SIZE, 30))
    assert len(props) == 1 and props[0].regions == (0,)


def test_two_blobs_on_one_object_merge():
    heat = blobs((24, 24), [(12, 5, 1.0), (12, 17, 0.7)])
    assert len(hot_regions(heat)) == 2
    dog = np.zeros((240, 320), bool)
    dog[60:180, 20:300] = True  # one long object under both blobs
    dec = SceneDecoder([dog], scores={0: 0.8})
    props = propose_instances(heat, SIZE, dec)
    assert dec.calls == 2
    assert len(props) == 1
    (p,) = props
    assert p.regions == (0, 1) and p.area == dog.sum()
    # The union of both regions' prompts, no duplicates.
    assert len(p.points) == len({(q.x, q.y, q.label) for q in p.points}) >= 2
    xs = sorted(q.x for q in p.points)
    assert xs[0] < 160 < xs[-1]


def test_heavily_overlapping_disks_merge_keeping_the_better_score():
    heat = blobs((24, 24), [(12, 8, 1.0), (12, 16, 0.9)])
    assert len(hot_regions(heat)) == 2
    dec = DiskDecoder(SIZE, radius=180, scores=[0.7, 0.95])  # centres 107 px apart: IoU 0.70
    (p,) = propose_instances(heat, SIZE, dec, contain=None)
    assert p.score == 0.95 and p.region == 1 and p.regions == (0, 1)
    assert p.points[0] == dec.calls[1][0]  # the points of the kept mask come first
    assert len(propose_instances(heat, SIZE, DiskDecoder(SIZE, 180), merge_iou=0.8, contain=None)) == 2


def test_part_inside_whole_merges_by_containment():
    heat = blobs((24, 24), [(12, 6, 1.0), (12, 16, 0.8)])
    head = np.zeros((240, 320), bool)
    head[100:140, 60:100] = True
    body = np.zeros((240, 320), bool)
    body[20:220, 30:300] = True  # holds the head
    dec = SceneDecoder([head, body], scores={0: 0.95, 1: 0.85})
    assert mask_overlap(head, body)[0] < MERGE_IOU
    (p,) = propose_instances(heat, SIZE, dec)
    assert p.regions == (0, 1) and p.score == 0.95 and p.area == head.sum()
    # Merging on IoU only keeps both.
    assert len(propose_instances(heat, SIZE, SceneDecoder([head, body]), contain=None)) == 2


def test_empty_masks_dropped_and_flat_map_decodes_nothing():
    heat = blobs((24, 24), THREE)
    only_first = np.zeros((240, 320), bool)
    only_first[:60, :80] = True
    props = propose_instances(heat, SIZE, SceneDecoder([only_first]))
    assert [p.regions for p in props] == [(0,)]
    dec = DiskDecoder(SIZE, 10)
    assert propose_instances(np.zeros((24, 24)), SIZE, dec) == () and dec.calls == []


def test_max_instances_and_max_decodes():
    heat = blobs((24, 24), THREE)
    assert [p.region for p in propose_instances(heat, SIZE, DiskDecoder(SIZE, 20), max_instances=2)] == [0, 1]
    dec = DiskDecoder(SIZE, 20)
    assert len(propose_instances(heat, SIZE, dec, max_decodes=1)) == 1 and len(dec.calls) == 1
    assert propose_instances(heat, SIZE, DiskDecoder(SIZE, 20), max_instances=0) == ()


def test_points_per_region_and_negatives_reach_the_decoder():
    heat = blobs((24, 24), [(12, 12, 1.0)], width=3.0)
    dec = DiskDecoder(SIZE, 30)
    propose_instances(heat, SIZE, dec, points_per_region=2, num_negative=1)
    labels = [p.label for p in dec.calls[0]]
    assert labels == [1, 1, 0]


def test_regions_can_be_given():
    heat = blobs((24, 24), THREE)
    regions = hot_regions(heat)[1:]
    props = propose_instances(heat, SIZE, DiskDecoder(SIZE, 20), regions=regions)
    assert [p.regions for p in props] == [(0,), (1,)]  # indices into the regions given
    with pytest.raises(InputError, match="grid shape"):
        propose_instances(np.zeros((12, 12)) + np.eye(12), SIZE, DiskDecoder(SIZE, 20), regions=regions)


@pytest.mark.parametrize("bad_out, match", [
    ((np.zeros((10, 10), bool), 0.9), "shape"),
    ((np.zeros((240, 320), np.uint8), 0.9), "bool"),
    ((np.ones((240, 320), bool), float("nan")), "finite"),
    ((np.ones((240, 320), bool), None), "finite"),
    (np.ones((240, 320), bool), "mask, score"),
])
def test_bad_decoder_output_refused(bad_out, match):
    with pytest.raises(InputError, match=match):
        propose_instances(blobs((24, 24), THREE), SIZE, lambda pts: bad_out)


@pytest.mark.parametrize("kw", [{"merge_iou": 0}, {"merge_iou": 1.5}, {"contain": -0.1}, {"max_instances": -1},
                                {"max_decodes": 1.5}])
def test_bad_parameters_refused(kw):
    with pytest.raises(InputError):
        propose_instances(blobs((24, 24), THREE), SIZE, DiskDecoder(SIZE, 20), **kw)


def test_nan_heat_and_bad_decode_refused():
    heat = blobs((24, 24), THREE)
    heat[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        propose_instances(heat, SIZE, DiskDecoder(SIZE, 20))
    with pytest.raises(InputError, match="decode"):
        propose_instances(blobs((24, 24), THREE), SIZE, "not a function")


# --- duplicates_of / mask_overlap -------------------------------------------------------------------

def rect(shape, r0, r1, c0, c1):
    m = np.zeros(shape, bool)
    m[r0:r1, c0:c1] = True
    return m


S = (20, 20)


@pytest.mark.parametrize("mask, existing, kw, expected", [
    (rect(S, 0, 10, 0, 10), [], {}, ()),
    (rect(S, 0, 10, 0, 10), [rect(S, 0, 10, 0, 10)], {}, (0,)),  # the same object again
    (rect(S, 0, 10, 0, 10), [rect(S, 10, 20, 10, 20)], {}, ()),  # disjoint
    (rect(S, 0, 10, 0, 10), [rect(S, 0, 10, 5, 15)], {}, ()),  # IoU 1/3, half inside
    (rect(S, 0, 10, 0, 10), [rect(S, 0, 10, 5, 15)], {"iou": 0.3}, (0,)),
    (rect(S, 2, 4, 2, 4), [rect(S, 0, 10, 0, 10)], {}, (0,)),  # a part inside a whole
    (rect(S, 2, 4, 2, 4), [rect(S, 0, 10, 0, 10)], {"contain": None}, ()),
    (rect(S, 0, 20, 0, 20), [rect(S, 0, 5, 0, 5), rect(S, 0, 10, 0, 10)], {}, (1, 0)),  # highest IoU first
    (np.zeros(S, bool), [np.zeros(S, bool), rect(S, 0, 5, 0, 5)], {}, ()),  # empty is never a duplicate
])
def test_duplicates_of(mask, existing, kw, expected):
    assert duplicates_of(mask, existing, **kw) == expected


def test_mask_overlap_values_and_checks():
    assert mask_overlap(rect(S, 0, 10, 0, 10), rect(S, 0, 10, 5, 15)) == pytest.approx((50 / 150, 0.5))
    assert mask_overlap(np.zeros(S, bool), rect(S, 0, 1, 0, 1)) == (0.0, 0.0)
    with pytest.raises(InputError):
        mask_overlap(np.zeros(S, bool), np.zeros((5, 5), bool))
    with pytest.raises(InputError):
        mask_overlap(np.zeros(S, int), np.zeros(S, bool))


# --- property: whatever the decoder returns, kept proposals are never duplicates -------------------

GRID_SPOTS = [(4, 4), (4, 12), (4, 20), (12, 4), (12, 12), (12, 20), (20, 4), (20, 12), (20, 20)]
NINE = blobs((24, 24), [(r, c, 1.0 - 0.04 * i) for i, (r, c) in enumerate(GRID_SPOTS)])
SMALL = (48, 36)

rects = st.tuples(st.integers(0, 36), st.integers(1, 36), st.integers(0, 48), st.integers(1, 48)).map(
    lambda t: rect((36, 48), min(t[0], t[1]), max(t[0], t[1]), min(t[2], t[3]), max(t[2], t[3])))


@settings(max_examples=80, deadline=None)
@given(masks=st.lists(rects, min_size=9, max_size=9), scores=st.lists(st.floats(0, 1), min_size=9, max_size=9),
       merge_iou=st.sampled_from([0.3, 0.5, 0.8]), contain=st.sampled_from([None, 0.6, CONTAIN_SHARE, 1.0]))
def test_merged_proposals_are_never_duplicates(masks, scores, merge_iou, contain):
    assert len(hot_regions(NINE)) == 9
    calls = []

    def scripted(points):
        calls.append(points)
        return masks[len(calls) - 1], scores[len(calls) - 1]

    props = propose_instances(NINE, SMALL, scripted, merge_iou=merge_iou, contain=contain, max_instances=9)
    assert len(calls) == 9
    for i, a in enumerate(props):
        for b in props[i + 1:]:
            iou, inside = mask_overlap(a.mask, b.mask)
            assert iou < merge_iou
            assert contain is None or inside < contain
    # Every non-empty decode is in exactly one proposal; empty ones in none.
    seen = sorted(r for p in props for r in p.regions)
    assert seen == [i for i, m in enumerate(masks) if m.any()]
    assert [min(p.regions) for p in props] == sorted(min(p.regions) for p in props)
    for p in props:
        assert p.score == max(scores[r] for r in p.regions)
        np.testing.assert_array_equal(p.mask, masks[p.region])
