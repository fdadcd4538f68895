"""Battery (issue 15, item 1): masks with many holes become exact polygons, and the cuts that
join holes to their part never cross a ring. Speed is shown by ``qmask bench masks`` (run here
on a small mask as a real process), never asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from engine.bench.masks import count_holes, fragmented_mask
from engine.imaging.keyhole import join_holes
from engine.imaging.masks import mask_iou, mask_outlines, mask_to_keyhole_polygons, polygons_to_mask

ROOT = Path(__file__).resolve().parents[2]


def nested_mask() -> np.ndarray:
    """Holes in a part, an island in a hole with its own hole and island, holes touching at a
    corner, a hole touching the outer boundary at a corner, and a ragged outer edge."""
    m = np.zeros((48, 64), dtype=bool)
    m[2:46, 2:62] = True
    m[2, 10:20:2] = False  # ragged top edge
    m[6:30, 6:40] = False  # a big hole ...
    m[9:27, 9:37] = True  # ... holding an island ...
    m[12:24, 12:34] = False  # ... with its own hole ...
    m[15:21, 15:31] = True  # ... holding another island
    m[17:19, 17:19] = False  # ... with a hole
    m[34:37, 8:11] = False  # two holes touching at a corner only
    m[37:40, 11:14] = False
    m[3:5, 50:53] = False  # a hole one pixel below the top edge
    for x in range(44, 60, 3):  # a row of small holes under each other
        for y in range(30, 44, 3):
            m[y, x] = False
    return m


def assert_exact(mask: np.ndarray, polys: list[list[float]]) -> None:
    h, w = mask.shape
    ours = polygons_to_mask(polys, h, w) if polys else np.zeros_like(mask)
    np.testing.assert_array_equal(ours, mask)
    coco = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, h, w))).astype(bool)
    np.testing.assert_array_equal(coco, mask)
    assert count_holes(coco) == count_holes(mask)


def proper_crossings(ring: np.ndarray) -> int:
    """Pairs of edges of a closed ring that cross at a point inside both (touching, sharing an
    end or running along each other is not crossing)."""
    a, b = ring, np.roll(ring, -1, axis=0)

    def orient(p, q, r):
        return np.sign((q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1])
                       - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0]))

    a1, b1, a2, b2 = a[:, None], b[:, None], a[None, :], b[None, :]
    d1, d2 = orient(a1, b1, a2), orient(a1, b1, b2)
    d3, d4 = orient(a2, b2, a1), orient(a2, b2, b1)
    crossing = (d1 * d2 < 0) & (d3 * d4 < 0)
    return int(np.triu(crossing, 1).sum())


def test_nested_holes_and_islands_are_pixel_exact():
    mask = nested_mask()
    assert count_holes(mask) > 20
    polys = mask_to_keyhole_polygons(mask)
    assert len(polys) == len(mask_outlines(mask))  # one polygon per part (islands are parts)
    assert_exact(mask, polys)


@pytest.mark.parametrize("seed", range(12))
def test_noise_masks_with_many_holes_are_pixel_exact(seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((40 + seed, 70)) < 0.72  # dense foreground: many small holes, corner touches
    mask = cv2.medianBlur(mask.astype(np.uint8), 3).astype(bool) if seed % 3 == 0 else mask
    assert_exact(mask, mask_to_keyhole_polygons(mask))


def test_cuts_never_cross_a_ring():
    mask = nested_mask()
    for outline in mask_outlines(mask):
        rings = [outline.outer, *outline.holes]
        assert sum(proper_crossings(r) for r in rings) == 0
        joined = join_holes(outline.outer, outline.holes)
        assert proper_crossings(joined) == 0
    bench = fragmented_mask(160, 120, holes=60, parts=4, seed=1)
    for outline in mask_outlines(bench):
        assert proper_crossings(join_holes(outline.outer, outline.holes)) == 0


def test_every_hole_is_joined_once():
    mask = fragmented_mask(400, 300, holes=500, parts=5, seed=2)
    (main,) = [o for o in mask_outlines(mask) if o.holes]
    joined = join_holes(main.outer, main.holes)
    # every vertex of the outer ring and of every hole is in the keyhole ring
    have = {tuple(v) for v in joined}
    for ring in (main.outer, *main.holes):
        assert {tuple(v) for v in ring} <= have
    # the ring walks each hole once: its length is the rings' vertices plus 3 per cut at most
    total = len(main.outer) + sum(len(h) for h in main.holes)
    assert total <= len(joined) <= total + 3 * len(main.holes)


def test_simplified_polygons_stay_close_and_keep_the_big_holes():
    mask = nested_mask()
    polys = mask_to_keyhole_polygons(mask, tolerance=1.0)
    back = polygons_to_mask(polys, *mask.shape)
    assert mask_iou(back, mask) > 0.9
    assert not back[7:9, 7:39].any()  # the big hole's band stays empty
    assert back[10:12, 10:36].all()  # the island inside it stays filled


def test_bench_masks_reports_exact_polygons_as_a_real_process():
    result = subprocess.run([sys.executable, "-m", "gui.main", "bench", "masks", "--size", "600x400",
                             "--holes", "400", "--parts", "20", "--check"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "600 x 400" in out and "400 holes" in out
    assert "YOLO label text: " in out and "keyhole polygons" in out and "outlines" in out
    assert "IoU 1.000000 with the mask, 400 of 400 holes kept" in out
