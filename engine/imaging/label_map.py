"""Many objects' masks as one label map: which object is on top at each pixel.

Why: an image may hold a thousand objects (issue 23). Drawing, hiding, relabelling or hit-testing
them one full-size mask at a time costs the GUI thread a full image per object. A
:class:`LabelMap` keeps each object as its bounding-box crop (:func:`rle_crop` reads one from a
COCO RLE without decoding the whole image) and one ``[H, W]`` uint32 array ``ids`` holding, per
pixel, the *slot* of the top-most object there. A display then needs one colour lookup table
(slot -> colour), so show/hide and relabel change a table, not pixels; a click asks
:meth:`LabelMap.object_at`; and one object's mask change repaints only where its old and new
masks differ (in tiles: a brush dab costs the dab's box, a new mask the band along its edge),
with the few objects whose boxes meet each window (found with vectorised box arrays). Every
mutation returns the window it changed, and the parts are logged (:meth:`LabelMap.changes_since`)
so a display re-renders only those.

Frames and types:

- Pixels are (x, y) as in :mod:`engine.prompts`: ``ids[y, x]``; pixel (x, y) covers
  [x, x + 1) x [y, y + 1).
- A crop is ``(y0, x0, crop)``: ``crop`` an ``[h, w]`` bool array whose pixel ``[r, c]`` is image
  pixel ``(x0 + c, y0 + r)``; None is an empty mask. The map keeps the crops it is given, not copies:
  give a new array for a changed mask (:meth:`LabelMap.update`), never write into a kept one.
- A window is ``(x0, y0, x1, y1)``: whole pixels, x1 and y1 exclusive.
- Keys are any hashable values (the app uses object uids). Slots are ints >= 1, stable while
  their object exists; a removed object's slot may be given to a later one. ``0`` is "no object".
- Drawing order is bottom first: the last object is drawn on top.

Pure numpy and OpenCV (no Qt); not thread-safe: one owner mutates and reads it (the GUI thread;
a new image's map can be built with :func:`rle_crop` and :meth:`LabelMap.set_objects` on a worker
thread and handed over, as those cost in proportion to the objects' areas).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from .rle import rle_counts, rle_crop  # noqa: F401 (rle_crop: this module's crops come from it)

__all__ = ["Crop", "Window", "rle_crop", "crop_of", "crop_to_mask", "LabelMap"]

Crop = tuple[int, int, np.ndarray]  # (y0, x0, [h, w] bool)
Window = tuple[int, int, int, int]  # (x0, y0, x1, y1), x1 and y1 exclusive

_LOG = 256  # windows kept for changes_since (a reader further behind gets None: redraw all)
TILE = 128  # a mask change is repainted in windows made of tiles this size (pixels)


def crop_of(mask: np.ndarray) -> Crop | None:
    """An ``[H, W]`` mask as its bounding-box crop ``(y0, x0, [h, w] bool)`` (a copy); None when
    empty."""
    m = np.asarray(mask, dtype=bool)
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if rows.size == 0:
        return None
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return y0, x0, m[y0:y1, x0:x1].copy()


def crop_to_mask(crop: Crop | None, height: int, width: int) -> np.ndarray:
    """A crop back as an ``[height, width]`` bool mask (tests, export)."""
    out = np.zeros((height, width), dtype=bool)
    if crop is not None:
        y0, x0, c = crop
        out[y0:y0 + c.shape[0], x0:x0 + c.shape[1]] = c
    return out


def _box(crop: Crop | None) -> Window | None:
    if crop is None:
        return None
    y0, x0, c = crop
    return x0, y0, x0 + c.shape[1], y0 + c.shape[0]


def _union(a: Window | None, b: Window | None) -> Window | None:
    if a is None or b is None:
        return a if b is None else b
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _difference_windows(a: Crop | None, b: Crop | None, tile: int = TILE) -> list[Window]:
    """Windows covering the pixels in one of two masks and not the other (none when the masks
    are the same): rows of ``tile``-pixel tiles that hold some, clipped to their bounding box.
    A new mask for a large object changes a thin band along its edge, not its whole box."""
    if a is None and b is None:
        return []
    if a is None or b is None:
        y0, x0, diff = a if b is None else b
    else:
        x0, y0, x1, y1 = _union(_box(a), _box(b))
        if a[:2] == b[:2] and a[2].shape == b[2].shape:
            diff = a[2] ^ b[2]
        else:
            diff = np.zeros((y1 - y0, x1 - x0), dtype=bool)
            for cy, cx, c in (a, b):
                diff[cy - y0:cy - y0 + c.shape[0], cx - x0:cx - x0 + c.shape[1]] ^= c
    return _tile_windows(diff, x0, y0, tile)


def _tile_windows(mask: np.ndarray, x0: int, y0: int, tile: int) -> list[Window]:
    """Windows (image pixels; ``mask[0, 0]`` is pixel (x0, y0)) covering the True pixels of
    ``mask``: per row of tiles, one window per run of tiles holding some, tightened to them."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return []
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    m = mask[r0:r1, c0:c1]
    h, w = m.shape
    if h <= tile and w <= tile:
        return [(x0 + c0, y0 + r0, x0 + c1, y0 + r1)]
    bands = np.logical_or.reduceat(m, np.arange(0, h, tile), axis=0)
    tiles = np.logical_or.reduceat(bands, np.arange(0, w, tile), axis=1)  # [rows of tiles, tiles]
    out = []
    for t, row in enumerate(tiles):
        edges = np.flatnonzero(np.diff(np.concatenate(([False], row, [False])).view(np.int8)))
        for start, stop in zip(edges[0::2], edges[1::2]):
            a0, a1, b0, b1 = t * tile, min(h, (t + 1) * tile), int(start) * tile, min(w, int(stop) * tile)
            part = m[a0:a1, b0:b1]  # tightened to what it holds
            rs, cs = np.flatnonzero(part.any(axis=1)), np.flatnonzero(part.any(axis=0))
            out.append((x0 + c0 + b0 + int(cs[0]), y0 + r0 + a0 + int(rs[0]),
                        x0 + c0 + b0 + int(cs[-1]) + 1, y0 + r0 + a0 + int(rs[-1]) + 1))
    return out


def _area(w: Window) -> int:
    return (w[2] - w[0]) * (w[3] - w[1])


class LabelMap:
    """The top-most object per pixel of an ``height`` x ``width`` image; see the module doc.

    Each mutation returns the window whose pixels of :attr:`ids` may have changed (None: none),
    bumps :attr:`version` and logs the window for :meth:`changes_since`. :attr:`slots_version`
    changes only when keys gain or lose slots (a colour table keyed by slot needs rebuilding).
    """

    def __init__(self, height: int, width: int) -> None:
        if height <= 0 or width <= 0:
            raise ValueError(f"a label map needs a positive size, not {height}x{width}")
        self.height, self.width = int(height), int(width)
        self.tile = TILE  # the tile size of repainted windows (see update)
        self._ids = np.zeros((self.height, self.width), dtype=np.uint32)
        self.version = 0
        self.slots_version = 0
        self._log: deque[tuple[int, Window]] = deque(maxlen=_LOG)
        self._log_start = 0  # the oldest version changes_since can answer from
        self._reset_slots(0)

    # -- reading ---------------------------------------------------------------------------
    @property
    def ids(self) -> np.ndarray:
        """``[H, W]`` uint32: the slot of the top-most visible object per pixel, 0 for none.
        Read-only by contract (the map writes into it in place)."""
        return self._ids

    @property
    def keys(self) -> list[Hashable]:
        """Every object's key in drawing order, bottom first (a copy)."""
        return list(self._order)

    @property
    def capacity(self) -> int:
        """One more than the highest slot there may be: the size a slot -> colour table needs."""
        return self._rank.size

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._slot_of

    def slot(self, key: Hashable) -> int:
        """The slot of ``key`` (KeyError when it has none)."""
        return self._slot_of[key]

    def key_at(self, slot: int) -> Hashable | None:
        """The key in ``slot``; None for 0 or a free slot."""
        return self._keys[slot] if 0 < slot < len(self._keys) else None

    def box(self, key: Hashable) -> Window | None:
        """The bounding box of ``key``'s mask, None when empty."""
        return _box(self._crops[self._slot_of[key]])

    def crop(self, key: Hashable) -> Crop | None:
        """``key``'s mask as given (the crop is shared: do not write into it)."""
        return self._crops[self._slot_of[key]]

    def is_hidden(self, key: Hashable) -> bool:
        return bool(self._hidden[self._slot_of[key]])

    def object_at(self, x: float, y: float) -> Hashable | None:
        """The top-most (visible) object at image pixel (x, y), None for none or off the image."""
        col, row = int(np.floor(x)), int(np.floor(y))
        if not (0 <= col < self.width and 0 <= row < self.height):
            return None
        return self.key_at(int(self._ids[row, col]))

    def boxes_of(self, slots: Iterable[int]) -> Window | None:
        """The union of the boxes of these slots (None when all are empty or free)."""
        s = np.fromiter(slots, dtype=np.int64)
        s = s[(s > 0) & (s < self.capacity)]
        s = s[self._boxes[s, 2] > self._boxes[s, 0]]
        if s.size == 0:
            return None
        b = self._boxes[s]
        return int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max())

    def changes_since(self, version: int) -> list[Window] | None:
        """Windows covering every pixel changed after ``version`` (oldest first; each mutation's
        returned window, or smaller parts of it), or None when they are no longer known (a new
        set of objects, or more changes than are kept): a reader redraws all."""
        if version < self._log_start or version > self.version:
            return None
        return [w for v, w in self._log if v > version]

    # -- changing -------------------------------------------------------------------------
    def set_objects(self, items: Sequence[tuple[Hashable, Crop | None]],
                    hidden: Iterable[Hashable] = ()) -> Window | None:
        """Replace every object: ``(key, crop)`` pairs bottom first, those in ``hidden`` left out
        of :attr:`ids` (see :meth:`set_hidden`). Returns the whole image's window."""
        keys = [k for k, _ in items]
        hidden = set(hidden)
        if len(set(keys)) != len(keys):
            raise ValueError("set_objects got a key twice")
        self._reset_slots(len(items))
        self._ids.fill(0)
        for slot, (key, crop) in enumerate(items, start=1):
            crop = self._checked(crop)
            self._keys[slot], self._crops[slot] = key, crop
            self._slot_of[key] = slot
            self._order.append(key)
            self._rank[slot] = slot - 1
            self._set_box(slot, crop)
            self._hidden[slot] = key in hidden
            if not self._hidden[slot]:
                self._paint(slot, crop, (0, 0, self.width, self.height))
        self.slots_version += 1
        self.version += 1
        self._log.clear()
        self._log_start = self.version
        return 0, 0, self.width, self.height

    def add(self, key: Hashable, crop: Crop | None) -> Window | None:
        """A new object on top of the others."""
        if key in self._slot_of:
            raise KeyError(f"{key!r} is in the label map already")
        crop = self._checked(crop)
        slot = self._free_slot()
        self._keys[slot], self._crops[slot] = key, crop
        self._slot_of[key] = slot
        self._rank[slot] = len(self._order)
        self._order.append(key)
        self._hidden[slot] = False
        self._set_box(slot, crop)
        self.slots_version += 1
        window = _box(crop)
        if window is not None:
            self._paint(slot, crop, window)  # on top: its pixels are its own, nothing else changes
        return self._changed(window)

    def update(self, key: Hashable, crop: Crop | None) -> Window | None:
        """``key``'s mask is now ``crop`` (None: empty). Only pixels where its old and new masks
        differ can change: the box of those within its old box and within its new one are
        repainted, so a brush dab on a large object costs the dab's box."""
        slot = self._slot_of[key]
        crop = self._checked(crop)
        old = self._crops[slot]
        self._crops[slot] = crop
        self._set_box(slot, crop)
        if self._hidden[slot]:
            return self._changed(None)
        return self._changed(*self._repaint_boxes(_difference_windows(old, crop, self.tile)))

    def remove(self, key: Hashable) -> Window | None:
        """Take ``key`` out; its slot is free again."""
        slot = self._slot_of.pop(key)
        old = _box(self._crops[slot])
        rank = int(self._rank[slot])
        del self._order[rank]
        self._rank[self._rank > rank] -= 1
        self._rank[slot] = -1
        self._keys[slot], self._crops[slot] = None, None
        self._hidden[slot] = False
        self._boxes[slot] = 0
        self._free.append(slot)
        self.slots_version += 1
        return self._changed(*self._repaint_boxes([old]))

    def reorder(self, keys_bottom_first: Sequence[Hashable]) -> Window | None:
        """A new drawing order of the same keys. Only where two objects whose relative order
        changed overlap can a pixel change: the boxes of such pairs' overlaps are repainted."""
        new = list(keys_bottom_first)
        if len(new) != len(self._order) or set(new) != set(self._order):
            raise ValueError("reorder needs the same keys as the label map holds")
        slots = np.array([self._slot_of[k] for k in new], dtype=np.int64)
        old_rank = self._rank[slots].copy()  # by new position
        moved = np.flatnonzero(old_rank != np.arange(slots.size))
        self._order = new
        self._rank[slots] = np.arange(slots.size)
        if moved.size == 0:
            return self._changed(None)
        windows: list[Window] = []
        b = self._boxes[slots]
        shown = (b[:, 2] > b[:, 0]) & ~self._hidden[slots]
        for i in moved:
            if not shown[i]:
                continue
            # others whose order relative to i flipped, and whose boxes meet i's
            flipped = (old_rank < old_rank[i]) != (np.arange(slots.size) < i)
            meets = (flipped & shown & (b[:, 0] < b[i, 2]) & (b[:, 2] > b[i, 0])
                     & (b[:, 1] < b[i, 3]) & (b[:, 3] > b[i, 1]))
            if meets.any():
                o = b[meets]
                windows.append((max(int(b[i, 0]), int(o[:, 0].min())), max(int(b[i, 1]), int(o[:, 1].min())),
                                min(int(b[i, 2]), int(o[:, 2].max())), min(int(b[i, 3]), int(o[:, 3].max()))))
        return self._changed(*self._repaint_boxes(windows))

    def set_hidden(self, key: Hashable, hidden: bool) -> Window | None:
        """Leave ``key`` out of :attr:`ids` (hidden) or put it back: the objects under it then
        show there, and :meth:`object_at` finds them. Costs a repaint of its box, as
        :meth:`update` does (a display can also hide an object by its colour table alone, at
        no cost here, but then shows nothing of what lies under it)."""
        slot = self._slot_of[key]
        if bool(self._hidden[slot]) == bool(hidden):
            return self._changed(None)
        self._hidden[slot] = bool(hidden)
        return self._changed(*self._repaint_boxes([_box(self._crops[slot])]))

    # -- internals -----------------------------------------------------------------------
    def _reset_slots(self, n: int) -> None:
        cap = max(16, n + 1)
        self._keys: list[Hashable | None] = [None] * cap
        self._crops: list[Crop | None] = [None] * cap
        self._boxes = np.zeros((cap, 4), dtype=np.int64)  # x0, y0, x1, y1 per slot (x1 == x0: empty)
        self._rank = np.full(cap, -1, dtype=np.int64)  # place in the drawing order, -1: free slot
        self._hidden = np.zeros(cap, dtype=bool)
        self._slot_of: dict[Hashable, int] = {}
        self._order: list[Hashable] = []
        self._free: list[int] = []
        self._next = n + 1  # the next slot never used

    def _free_slot(self) -> int:
        if self._free:
            return self._free.pop()
        slot = self._next
        self._next += 1
        if slot >= self.capacity:
            grow = self.capacity
            self._keys += [None] * grow
            self._crops += [None] * grow
            self._boxes = np.concatenate([self._boxes, np.zeros((grow, 4), np.int64)])
            self._rank = np.concatenate([self._rank, np.full(grow, -1, np.int64)])
            self._hidden = np.concatenate([self._hidden, np.zeros(grow, bool)])
        return slot

    def _checked(self, crop: Crop | None) -> Crop | None:
        if crop is None:
            return None
        y0, x0, c = crop
        c = np.asarray(c, dtype=bool)
        if c.ndim != 2:
            raise ValueError(f"a crop must be 2-D, not shape {c.shape}")
        y0, x0 = int(y0), int(x0)
        if y0 < 0 or x0 < 0 or y0 + c.shape[0] > self.height or x0 + c.shape[1] > self.width:
            raise ValueError(f"crop at ({x0}, {y0}) of {c.shape[1]}x{c.shape[0]} is outside the "
                             f"{self.width}x{self.height} image")
        return (y0, x0, c) if c.size and c.any() else None

    def _set_box(self, slot: int, crop: Crop | None) -> None:
        b = _box(crop)
        self._boxes[slot] = b if b is not None else (0, 0, 0, 0)

    def _paint(self, slot: int, crop: Crop | None, window: Window) -> None:
        """Write ``slot`` where ``crop`` is set within ``window``."""
        if crop is None:
            return
        y0, x0, c = crop
        wx0, wy0 = max(window[0], x0), max(window[1], y0)
        wx1, wy1 = min(window[2], x0 + c.shape[1]), min(window[3], y0 + c.shape[0])
        if wx1 > wx0 and wy1 > wy0:
            np.copyto(self._ids[wy0:wy1, wx0:wx1], np.uint32(slot),
                      where=c[wy0 - y0:wy1 - y0, wx0 - x0:wx1 - x0])

    def _repaint(self, window: Window) -> None:
        """Recompute ``window`` of ids: clear it and paint, bottom first, the shown objects whose
        boxes meet it."""
        x0, y0, x1, y1 = window
        self._ids[y0:y1, x0:x1] = 0
        b = self._boxes
        meets = ((self._rank >= 0) & ~self._hidden & (b[:, 2] > b[:, 0])
                 & (b[:, 0] < x1) & (b[:, 2] > x0) & (b[:, 1] < y1) & (b[:, 3] > y0))
        slots = np.flatnonzero(meets)
        for slot in slots[np.argsort(self._rank[slots])]:
            self._paint(int(slot), self._crops[slot], window)

    def _repaint_boxes(self, boxes: Iterable[Window | None]) -> tuple[Window | None, list[Window]]:
        """Repaint these windows (one bounding window when that costs no more): their union,
        and the windows repainted."""
        boxes = [b for b in boxes if b is not None and b[2] > b[0] and b[3] > b[1]]
        if not boxes:
            return None, []
        whole: Window | None = None
        for b in boxes:
            whole = _union(whole, b)
        if _area(whole) <= sum(_area(b) for b in boxes):
            boxes = [whole]
        for b in boxes:
            self._repaint(b)
        return whole, boxes

    def _changed(self, window: Window | None, parts: Iterable[Window] | None = None) -> Window | None:
        """A new version whose changed pixels lie in ``parts`` (default: ``window``, their union)."""
        self.version += 1
        for part in ([] if window is None else [window]) if parts is None else parts:
            self._log.append((self.version, part))
        if len(self._log) == self._log.maxlen:  # older windows may have been dropped
            self._log_start = max(self._log_start, self._log[0][0])  # (its first parts may be gone)
        return window
