"""The label map (engine/imaging/label_map.py): crops read straight from COCO RLE runs match full
decoding, and the map's top-most object per pixel matches painting every mask in order, after any
sequence of adds, updates, removes, reorders and hides, with each change inside its window."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine.errors import InputError
from engine.imaging.label_map import LabelMap, crop_of, crop_to_mask, rle_crop
from engine.imaging.rle import _column_runs, decode_rle, encode_rle

SIZES = st.tuples(st.integers(1, 14), st.integers(1, 14))


@st.composite
def masks(draw, shape=None):
    """[H, W] bool masks: random noise, blobs, single pixels, borders, empty and full."""
    h, w = shape if shape is not None else draw(SIZES)
    kind = draw(st.sampled_from(["noise", "rects", "pixel", "border", "empty", "full"]))
    if kind == "noise":
        return draw(arrays(bool, (h, w)))
    m = np.zeros((h, w), bool)
    if kind == "rects":  # one or more parts, maybe touching the borders
        for _ in range(draw(st.integers(1, 3))):
            y0, x0 = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
            y1, x1 = draw(st.integers(y0 + 1, h)), draw(st.integers(x0 + 1, w))
            m[y0:y1, x0:x1] = True
    elif kind == "pixel":
        m[draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))] = True
    elif kind == "border":
        m[0, :] = m[-1, :] = m[:, 0] = m[:, -1] = True
    elif kind == "full":
        m[:] = True
    return m


@given(masks())
@settings(max_examples=300, deadline=None)
def test_rle_crop_matches_full_decoding(mask):
    rle = encode_rle(mask)
    crop = rle_crop(rle)
    assert np.array_equal(crop_to_mask(crop, *mask.shape), decode_rle(rle))
    ref = crop_of(mask)
    if ref is None:
        assert crop is None
    else:  # the same tight box, and a C-contiguous bool crop
        assert crop[:2] == ref[:2] and np.array_equal(crop[2], ref[2])
        assert crop[2].dtype == bool and crop[2].flags.c_contiguous
        assert crop[2][0].any() and crop[2][-1].any() and crop[2][:, 0].any() and crop[2][:, -1].any()


@given(masks())
@settings(max_examples=100, deadline=None)
def test_rle_crop_reads_uncompressed_counts(mask):
    rle = {"size": list(mask.shape), "counts": [int(r) for r in _column_runs(np.ascontiguousarray(mask))]}
    assert np.array_equal(crop_to_mask(rle_crop(rle), *mask.shape), mask)


def test_rle_crop_of_a_large_image_is_its_box_only():
    mask = np.zeros((3000, 4000), bool)
    mask[1200:1210, 3990:4000] = True  # at the right border
    mask[1205, 3000] = True
    y0, x0, crop = rle_crop(encode_rle(mask))
    assert (y0, x0, crop.shape) == (1200, 3000, (10, 1000))
    assert crop.sum() == 101 and crop[5, 0]


def test_rle_crop_refuses_malformed_rle():
    with pytest.raises(InputError):
        rle_crop({"size": [4, 4], "counts": [3, 4]})  # covers 7 of 16 pixels


# -- the label map against a brute-force reference --------------------------------------------

class Reference:
    """Every object's full mask, the drawing order and the hidden set: the map painted the slow way."""

    def __init__(self, h: int, w: int) -> None:
        self.h, self.w = h, w
        self.masks: dict[str, np.ndarray] = {}
        self.order: list[str] = []
        self.hidden: set[str] = set()

    def top(self) -> np.ndarray:
        """[H, W] object: the key on top per pixel, None for none."""
        out = np.full((self.h, self.w), None, dtype=object)
        for key in self.order:
            if key not in self.hidden:
                out[self.masks[key]] = key
        return out


def keys_of(lm: LabelMap) -> np.ndarray:
    lookup = np.array([lm.key_at(s) for s in range(lm.capacity)], dtype=object)
    return lookup[lm.ids]


def covered(before: np.ndarray, after: np.ndarray, windows) -> bool:
    """Every pixel that differs between ``before`` and ``after`` lies in one of ``windows``."""
    changed = before != after
    for x0, y0, x1, y1 in windows:
        changed[y0:y1, x0:x1] = False
    return not changed.any()


def inside(part, window) -> bool:
    return window[0] <= part[0] < part[2] <= window[2] and window[1] <= part[1] < part[3] <= window[3]


@st.composite
def scripts(draw):
    h, w = draw(SIZES)
    start = draw(st.lists(masks((h, w)), max_size=5))
    steps = draw(st.lists(st.tuples(st.sampled_from(["add", "update", "remove", "reorder", "hide"]),
                                    masks((h, w)), st.randoms(use_true_random=False)), max_size=14))
    return h, w, start, steps, draw(st.sampled_from([2, 3, 5, 128]))


@given(scripts())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_label_map_matches_painting_every_mask_in_order(script):
    h, w, start, steps, tile = script
    lm, ref = LabelMap(h, w), Reference(h, w)
    lm.tile = tile  # small tiles: a mask change is repainted in many windows
    names = iter(f"o{i}" for i in range(1000))
    items = [(next(names), m) for m in start]
    assert lm.set_objects([(k, crop_of(m)) for k, m in items]) == (0, 0, w, h)
    ref.masks.update(items)
    ref.order = [k for k, _ in items]
    assert np.array_equal(keys_of(lm), ref.top())
    slots = {k: lm.slot(k) for k in ref.order}
    for op, mask, rnd in steps:
        before = keys_of(lm)
        version = lm.version
        if op == "add" or not ref.order:
            key = next(names)
            window = lm.add(key, crop_of(mask))
            ref.masks[key] = mask
            ref.order.append(key)
            slots[key] = lm.slot(key)
        elif op == "update":
            key = rnd.choice(ref.order)
            window = lm.update(key, crop_of(mask))
            ref.masks[key] = mask
        elif op == "remove":
            key = rnd.choice(ref.order)
            window = lm.remove(key)
            ref.order.remove(key)
            ref.hidden.discard(key)
            del slots[key]
        elif op == "reorder":
            order = list(ref.order)
            rnd.shuffle(order)
            window = lm.reorder(order)
            ref.order = order
        else:
            key = rnd.choice(ref.order)
            window = lm.set_hidden(key, key not in ref.hidden)
            ref.hidden ^= {key}
        after = keys_of(lm)
        assert np.array_equal(after, ref.top()), (op, window)
        parts = lm.changes_since(version)
        assert covered(before, after, [] if window is None else [window]), (op, window)
        assert covered(before, after, parts) and all(inside(p, window) for p in parts), (op, window, parts)
        assert lm.version > version and (window is None) == (parts == [])
        assert lm.keys == ref.order and len(lm) == len(ref.order)
        assert {k: lm.slot(k) for k in ref.order} == slots  # slots stable while the object exists
        assert all(lm.is_hidden(k) == (k in ref.hidden) for k in ref.order)


def test_object_at_finds_the_top_most_visible_object():
    lm = LabelMap(10, 20)
    a, b = np.zeros((10, 20), bool), np.zeros((10, 20), bool)
    a[2:8, 2:12] = True
    b[4:6, 8:16] = True
    lm.set_objects([("a", crop_of(a)), ("b", crop_of(b))])
    assert lm.object_at(3.5, 3.2) == "a"
    assert lm.object_at(9, 4) == "b"  # both: b is on top
    assert lm.object_at(15, 5) == "b" and lm.object_at(17, 5) is None
    assert lm.object_at(-1, 5) is None and lm.object_at(5, 10) is None  # off the image
    assert lm.set_hidden("b", True) == (8, 4, 16, 6)
    assert lm.object_at(9, 4) == "a" and lm.object_at(15, 5) is None
    lm.reorder(["b", "a"])
    lm.set_hidden("b", False)
    assert lm.object_at(9, 4) == "a" and lm.object_at(15, 5) == "b"
    assert lm.box("a") == (2, 2, 12, 8) and lm.boxes_of([lm.slot("a"), lm.slot("b")]) == (2, 2, 16, 8)


def test_one_update_repaints_only_its_boxes():
    """Moving a small object from one corner to the other changes pixels in its two boxes only,
    and the window says so; the objects in between are untouched."""
    lm = LabelMap(300, 400)
    big = np.zeros((300, 400), bool)
    big[100:200, 100:300] = True
    small = np.zeros((300, 400), bool)
    small[0:10, 0:10] = True
    lm.set_objects([("big", crop_of(big)), ("small", crop_of(small))])
    moved = np.zeros((300, 400), bool)
    moved[290:300, 390:400] = True
    before = lm.ids.copy()
    window = lm.update("small", crop_of(moved))
    assert window == (0, 0, 400, 300)  # the union of the two boxes...
    changed = np.argwhere(before != lm.ids)
    assert changed[:, 0].min() == 0 and changed[:, 0].max() == 299 and len(changed) == 200  # ...200 pixels changed
    assert lm.changes_since(lm.version - 1) == [(0, 0, 10, 10), (390, 290, 400, 300)]  # the two parts


def test_a_new_mask_for_a_large_object_repaints_the_band_that_changed():
    """A 1,400 x 1,000 ellipse moved by 15 pixels: the changed band along its edge is repainted
    in tiles, not its whole box, and the parts logged cover every changed pixel."""
    import cv2

    h, w = 3000, 4000
    lm = LabelMap(h, w)
    small = [(f"s{i}", (y, x, np.ones((20, 20), bool))) for i, (y, x) in enumerate(
        (y, x) for y in range(600, 2400, 90) for x in range(1000, 3000, 90))]
    big = np.zeros((h, w), np.uint8)
    cv2.ellipse(big, (2000, 1500), (700, 500), 0, 0, 360, 1, -1)
    lm.set_objects([("big", crop_of(big.astype(bool)))] + small)
    before, version = lm.ids.copy(), lm.version
    moved = np.roll(big, 15, axis=1).astype(bool)
    window = lm.update("big", crop_of(moved))
    (by, bx, b), (my, mx, m) = crop_of(big), crop_of(moved)
    assert window == (bx, by, mx + m.shape[1], my + m.shape[0])
    parts = lm.changes_since(version)
    assert covered(before, lm.ids, parts) and len(parts) > 2
    assert sum((p[2] - p[0]) * (p[3] - p[1]) for p in parts) < 0.4 * (window[2] - window[0]) * (window[3] - window[1])


def test_a_brush_dab_on_a_large_object_repaints_the_dab_only():
    lm = LabelMap(3000, 4000)
    big = np.zeros((3000, 4000), bool)
    big[100:2900, 100:3900] = True
    small = np.zeros((3000, 4000), bool)
    small[1000:1100, 2000:2100] = True
    lm.set_objects([("small", crop_of(small)), ("big", crop_of(big))])
    dabbed = big.copy()
    dabbed[2895:2910, 500:520] = True  # past its bottom edge: a new box
    before = lm.ids.copy()
    assert lm.update("big", crop_of(dabbed)) == (500, 2900, 520, 2910)
    changed = np.argwhere(before != lm.ids)
    assert len(changed) == 10 * 20 and lm.object_at(510, 2905) == "big"
    erased = dabbed.copy()
    erased[1000:1010, 2000:2050] = False  # the small object under it shows there
    assert lm.update("big", crop_of(erased)) == (2000, 1000, 2050, 1010)
    assert lm.object_at(2010, 1005) == "small" and lm.object_at(2010, 1011) == "big"


def test_reorder_of_two_objects_changes_their_overlap_only():
    lm = LabelMap(50, 50)
    a, b, c = (np.zeros((50, 50), bool) for _ in range(3))
    a[0:20, 0:20] = True
    b[10:30, 10:30] = True
    c[40:50, 40:50] = True
    lm.set_objects([("a", crop_of(a)), ("b", crop_of(b)), ("c", crop_of(c))])
    assert lm.reorder(["b", "a", "c"]) == (10, 10, 20, 20)
    assert lm.reorder(["b", "a", "c"]) is None
    assert lm.reorder(["c", "b", "a"]) is None  # c overlaps neither


def test_changes_since_forgets_old_versions_and_new_objects():
    lm = LabelMap(8, 8)
    lm.add("a", (0, 0, np.ones((2, 2), bool)))
    v = lm.version
    for i in range(300):
        lm.update("a", (i % 6, 0, np.ones((2, 2), bool)))
    assert lm.changes_since(v) is None  # more changes than are kept
    assert len(lm.changes_since(lm.version - 10)) == 10
    lm.set_objects([])
    assert lm.changes_since(lm.version - 1) is None and lm.changes_since(lm.version) == []


def test_slots_are_reused_and_capacity_grows():
    lm = LabelMap(4, 4)
    for i in range(40):
        lm.add(i, (0, 0, np.ones((1, 1), bool)))
    assert lm.capacity > 40 and lm.object_at(0, 0) == 39
    freed = lm.slot(5)
    lm.remove(5)
    lm.add("new", None)
    assert lm.slot("new") == freed and lm.box("new") is None and lm.key_at(freed) == "new"
    with pytest.raises(KeyError):
        lm.add("new", None)
    with pytest.raises(ValueError):
        lm.add("outside", (3, 3, np.ones((2, 2), bool)))
