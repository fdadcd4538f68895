"""Binary mask encodings: polygons, box, area and IoU; COCO run-length encoding is in
:mod:`engine.imaging.rle` (its names are here too).

Frames and types:
- A mask is ``[H, W]`` bool (any integer/bool array is accepted, non-zero = inside), H x W the
  image *as displayed* (EXIF orientation applied).
- Polygons are COCO's: a flat list ``[x0, y0, x1, y1, ...]`` in image pixels with the corner
  convention of :mod:`engine.prompts` (pixel ``(col, row)`` covers ``[col, col+1] x
  [row, row+1]``). :func:`mask_to_polygons` traces the *pixel edges*, so each polygon encloses
  exactly the mask's pixels; rasterising it back (:func:`polygons_to_mask`, which fills a pixel
  when its centre is inside) gives the mask again, pixel for pixel.
- A COCO ``segmentation`` list of polygons is filled by *union*, so separate hole polygons
  cannot express holes. :func:`mask_to_polygons` returns outer boundaries only;
  :func:`mask_to_keyhole_polygons` joins each hole to its outer ring by a zero-width cut
  (:mod:`engine.imaging.keyhole`, time linear-ish in the contour length), so that one polygon per
  part keeps the holes under even-odd filling, which is how pycocotools rasterises a polygon
  (tested: pixel-exact). The COCO polygon and YOLO exports
  use keyhole polygons; LabelMe uses a ``mask`` shape for masks with holes
  (:func:`mask_has_holes`).
- Boxes are COCO ``[x, y, w, h]`` in pixels (corner convention): a single pixel at (c, r) has
  box ``[c, r, 1, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import InputError
from .keyhole import join_holes
from .raster import fill_ring
from .rle import as_mask as _as_mask
from .rle import decode_rle, encode_rle, is_rle, rle_area, rle_bbox, rle_counts

__all__ = [
    "encode_rle", "decode_rle", "rle_counts", "rle_area", "rle_bbox", "is_rle",
    "mask_bbox", "mask_area", "mask_iou", "mask_has_holes", "mask_to_polygons",
    "mask_to_keyhole_polygons", "join_holes", "mask_outlines", "Outline", "polygons_to_mask", "polygon_area",
]


# ---------------------------------------------------------------------------------------------
# Measures


def mask_area(mask: np.ndarray) -> int:
    """Number of foreground pixels."""
    return int(np.count_nonzero(_as_mask(mask)))


def mask_bbox(mask: np.ndarray) -> list[float]:
    """COCO ``[x, y, w, h]`` enclosing the foreground (corner convention); zeros when empty."""
    m = _as_mask(mask)
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    cols = np.flatnonzero(m.any(axis=0))
    x0, x1 = int(cols[0]), int(cols[-1]) + 1
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two same-size masks; 1.0 when both are empty."""
    ma, mb = _as_mask(a, "first mask"), _as_mask(b, "second mask")
    if ma.shape != mb.shape:
        raise InputError(f"Masks of different sizes cannot be compared: {ma.shape} and {mb.shape}.")
    union = int(np.count_nonzero(ma | mb))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(ma & mb)) / union


# ---------------------------------------------------------------------------------------------
# Polygons


@dataclass(frozen=True)
class Outline:
    """One connected part of a mask: its outer boundary and the boundaries of its holes.

    Each ring is a ``[N, 2]`` float array of (x, y) pixel-corner vertices, not closed (the last
    vertex connects back to the first).
    """

    outer: np.ndarray
    holes: tuple[np.ndarray, ...]


def _simplify(ring: np.ndarray, tolerance: float) -> np.ndarray:
    import cv2

    if tolerance <= 0 or len(ring) <= 4:
        return ring
    approx = cv2.approxPolyDP(ring.astype(np.float32).reshape(-1, 1, 2), float(tolerance), True)
    approx = approx.reshape(-1, 2)
    return approx if len(approx) >= 3 else ring


def _contour_to_corner_ring(contour: np.ndarray) -> np.ndarray:
    """A cv2 contour traced on the 2x-upsampled mask -> pixel-corner ring, collinear points dropped.

    On the upsampled grid, pixel (c, r) becomes the 2x2 block at (2c..2c+1, 2r..2r+1), and a
    boundary pixel (u, v) of that grid has its outer corner at ((u + 1) // 2, (v + 1) // 2) in
    original pixels: tracing on the upsampled grid walks the pixel edges.
    """
    pts = contour.reshape(-1, 2).astype(np.int64)
    corners = (pts + 1) // 2
    # Drop repeats, then vertices on a straight line.
    keep = np.ones(len(corners), dtype=bool)
    keep[1:] = np.any(corners[1:] != corners[:-1], axis=1)
    corners = corners[keep]
    if len(corners) > 1 and np.all(corners[0] == corners[-1]):
        corners = corners[:-1]
    if len(corners) < 3:
        return corners.astype(np.float64)
    prev = np.roll(corners, 1, axis=0)
    nxt = np.roll(corners, -1, axis=0)
    cross = (corners[:, 0] - prev[:, 0]) * (nxt[:, 1] - corners[:, 1]) - \
        (corners[:, 1] - prev[:, 1]) * (nxt[:, 0] - corners[:, 0])
    return corners[cross != 0].astype(np.float64)


def mask_outlines(mask: np.ndarray, tolerance: float = 0.0) -> list[Outline]:
    """Every connected part (8-connected) with its holes, as pixel-corner rings.

    ``tolerance`` > 0 simplifies rings (Douglas-Peucker, in pixels); 0 keeps them exact.
    """
    import cv2

    m = _as_mask(mask)
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return []
    cols = np.flatnonzero(m.any(axis=0))
    y0, x0 = int(rows[0]), int(cols[0])
    crop = m[y0:int(rows[-1]) + 1, x0:int(cols[-1]) + 1]  # work on the bounding box only
    # Pad by one so that parts touching the border still get a closed outline; upsample 2x
    # (nearest) so that cv2's pixel-centre contours run along the original pixel edges.
    padded = np.pad(crop, 1).astype(np.uint8)
    up = cv2.resize(padded, (padded.shape[1] * 2, padded.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
    contours, hierarchy = cv2.findContours(up, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    offset = np.array([x0, y0], dtype=np.float64)
    if hierarchy is None:
        return []
    hierarchy = hierarchy[0]
    outlines: list[Outline] = []
    for i, contour in enumerate(contours):
        if hierarchy[i][3] != -1:  # a hole; collected with its parent
            continue
        outer = _ring_in_original(contour) + offset
        holes = []
        child = hierarchy[i][2]
        while child != -1:
            holes.append(_simplify(_ring_in_original(contours[child]) + offset, tolerance))
            child = hierarchy[child][0]
        outlines.append(Outline(outer=_simplify(outer, tolerance), holes=tuple(h for h in holes if len(h) >= 3)))
    return [o for o in outlines if len(o.outer) >= 3]


def _ring_in_original(contour: np.ndarray) -> np.ndarray:
    """A contour of the padded, 2x-upsampled mask -> pixel-corner ring of the unpadded mask.

    cv2 traces both outer and hole boundaries on foreground pixels. Original pixel c becomes
    upsampled pixels 2c and 2c+1; a boundary on the left/top of the foreground lies on the even
    one (edge c), on the right/bottom on the odd one (edge c+1): edge = (u + 1) // 2. Hole
    boundaries mirror this (foreground left of a hole is odd, right of it even).
    """
    return _contour_to_corner_ring(contour) - 1.0  # remove the padding


def mask_to_polygons(mask: np.ndarray, tolerance: float = 0.0) -> list[list[float]]:
    """Outer boundaries of every part as COCO polygons ``[x0, y0, x1, y1, ...]``.

    Holes are NOT in the result (a COCO polygon list is filled by union): check
    :func:`mask_has_holes` first, or use :func:`mask_to_keyhole_polygons`/RLE.
    """
    return [o.outer.ravel().tolist() for o in mask_outlines(mask, tolerance)]


def mask_to_keyhole_polygons(mask: np.ndarray, tolerance: float = 0.0) -> list[list[float]]:
    """One polygon per part, holes joined to the outer ring by a zero-width cut ("keyhole").

    Filled with the even-odd rule (pycocotools, YOLO's cv2.fillPoly in ultralytics, LabelMe)
    a keyhole polygon leaves its holes empty, so holes survive formats that only know simple
    polygons. Each hole's cut runs straight up from its top-left corner to the first ring above
    it (the outer ring or another hole's), through the part's own pixels: cuts never cross a
    ring or each other, and the time is linear in the contour length (:func:`join_holes`).
    """
    return [join_holes(o.outer, o.holes).ravel().tolist() for o in mask_outlines(mask, tolerance)]


def mask_has_holes(mask: np.ndarray) -> bool:
    """True when some background region is enclosed by the foreground.

    Foreground is 8-connected, so background is 4-connected (cv2's contour convention): with
    a one-pixel background frame around the mask, any 4-connected background component
    besides the one touching the frame is a hole.
    """
    import cv2

    m = _as_mask(mask)
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return False
    cols = np.flatnonzero(m.any(axis=0))
    m = m[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]  # holes lie inside the bounding box
    background = np.pad(~m, 1, constant_values=True).astype(np.uint8)
    n, _ = cv2.connectedComponents(background, connectivity=4)
    return n > 2  # label 0 is the foreground, label 1 the outside


def polygon_area(polygon: Sequence[float]) -> float:
    """Shoelace area of one flat polygon (absolute value)."""
    p = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    if len(p) < 3:
        return 0.0
    x, y = p[:, 0], p[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def polygons_to_mask(polygons: Sequence[Sequence[float]], height: int, width: int,
                     *, rule: str = "union") -> np.ndarray:
    """Rasterise flat polygons to an ``[H, W]`` bool mask; a pixel is in when its centre is.

    Each polygon is filled with the even-odd rule (so keyhole polygons keep their holes);
    ``rule="union"`` (COCO's meaning of a polygon list) ORs the polygons together,
    ``rule="evenodd"`` XORs them (a hole given as its own polygon cuts out).
    """
    if height <= 0 or width <= 0:
        raise InputError(f"A mask size must be positive, not {height}x{width}.")
    if rule not in ("union", "evenodd"):
        raise InputError(f"Polygon fill rule must be 'union' or 'evenodd', not {rule!r}.")
    out = np.zeros((int(height), int(width)), dtype=bool)
    for poly in polygons:
        p = np.asarray(poly, dtype=np.float64)
        if p.size % 2 or p.size < 6:
            raise InputError("A polygon needs at least three (x, y) vertices as a flat list.")
        filled = fill_ring(p.reshape(-1, 2), int(height), int(width))
        out = (out | filled) if rule == "union" else (out ^ filled)
    return out

