"""COCO run-length encoding of binary masks: encode, validate, decode, and measure from the runs.

Frames and types:
- A mask is ``[H, W]`` bool (any integer/bool array is accepted, non-zero = inside), H x W the
  image *as displayed* (EXIF orientation applied).
- RLE is COCO's: ``{"size": [H, W], "counts": str}``; runs alternate 0/1 starting with 0,
  counted in column-major (Fortran) order; ``counts`` compressed with COCO's LEB128-like
  character code. ``decode_rle`` also takes ``counts`` as bytes, or as a list of ints
  (uncompressed RLE, as COCO uses for ``iscrowd`` annotations).

:func:`encode_rle` writes the string pycocotools writes, from numpy and OpenCV calls that each
release the GIL within a millisecond or so: pycocotools' encoder holds it for the whole mask
(15-20 ms at 12 megapixels), and the GUI thread cannot run meanwhile.

Untrusted RLE (from a project file or a COCO JSON) is validated in numpy before use: the
counts must add up to H*W. pycocotools' C decoder does no bounds checks, so malformed counts
would write past its buffer.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping

import cv2
import numpy as np

from ..errors import InputError

__all__ = ["as_mask", "encode_rle", "decode_rle", "rle_counts", "rle_area", "rle_bbox", "is_rle", "LazyRLE",
           "RLEAttribute"]


def as_mask(mask: Any, what: str = "mask") -> np.ndarray:
    """A 2-D array as an ``[H, W]`` bool mask (non-zero = inside); InputError for other shapes."""
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise InputError(f"A {what} must be a 2-D [H, W] array, not shape {arr.shape}.")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"A {what} must have at least one row and one column, not shape {arr.shape}.")
    return arr if arr.dtype == np.bool_ else arr != 0


def encode_rle(mask: np.ndarray) -> dict:
    """``[H, W]`` mask -> COCO compressed RLE ``{"size": [H, W], "counts": str}``."""
    m = np.ascontiguousarray(as_mask(mask))
    h, w = m.shape
    return {"size": [int(h), int(w)], "counts": _counts_string(_column_runs(m)).decode("ascii")}


def _column_runs(m: np.ndarray) -> np.ndarray:
    """``[H, W]`` bool (C-contiguous) -> its column-major run lengths, int64, a zeros run first."""
    flat = cv2.transpose(m.view(np.uint8)).reshape(-1)  # [W, H]: column-major order
    edges = np.concatenate(([0], np.flatnonzero(flat[1:] != flat[:-1]) + 1, [flat.size]))
    runs = np.diff(edges)
    return np.concatenate(([0], runs)) if flat[0] else runs


def _counts_string(runs: np.ndarray) -> bytes:
    """Run lengths -> COCO's counts string (the inverse of :func:`_parse_counts_string`), vectorised:
    each round takes every number's next 5 bits, and a number's characters end at its last round."""
    x = runs.astype(np.int64)
    x[3:] -= runs[1:-2]  # from the fourth run on: the difference to the run two places before
    columns, taken = [], []
    alive = np.ones(x.size, dtype=bool)
    while alive.any():
        c = x & 0x1F
        x >>= 5
        more = np.where((c & 0x10) != 0, x != -1, x != 0)
        columns.append(((c | (more.astype(np.int64) << 5)) + 48).astype(np.uint8))
        taken.append(alive.copy())
        alive &= more
    if not columns:
        return b""
    return np.stack(columns, axis=1)[np.stack(taken, axis=1)].tobytes()


def _parse_counts_string(s: bytes) -> np.ndarray:
    """COCO's compressed counts string -> run lengths (int64), vectorised.

    Each number is written 5 bits per character (char - 48), least significant first; bit 0x20
    says another character follows, bit 0x10 of the last one is the sign. From the fourth run
    on, a number is the difference to the run two places before.
    """
    c = np.frombuffer(s, dtype=np.uint8).astype(np.int64) - 48
    if c.size == 0:
        return np.zeros(0, dtype=np.int64)
    if (c < 0).any() or (c > 63).any():
        raise InputError("RLE counts contain characters outside COCO's code ('0' to 'o').")
    more = (c & 0x20) != 0
    if more[-1]:
        raise InputError("RLE counts end in the middle of a number (truncated string).")
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    number_of = np.repeat(np.arange(ends.size), ends - starts + 1)
    k = np.arange(c.size) - starts[number_of]  # chunk position within its number
    if k.max() > 12:
        raise InputError("RLE counts hold a number too large for a mask.")
    values = np.zeros(ends.size, dtype=np.int64)
    np.add.at(values, number_of, (c & 0x1F) << (5 * k))
    negative = (c[ends] & 0x10) != 0
    values[negative] -= np.int64(1) << (5 * (k[ends][negative] + 1))
    # Undo the delta coding: x[i] = d[i] + x[i-2] for i >= 3.
    out = values.copy()
    if out.size > 3:
        odd = out[1::2]
        out[1::2] = np.cumsum(odd)
        even = out[2::2]
        out[2::2] = np.cumsum(even)
    return out


def rle_counts(rle: Mapping[str, Any]) -> tuple[int, int, np.ndarray]:
    """Validate an RLE and return ``(H, W, run_lengths)``; raises InputError when malformed."""
    if not isinstance(rle, Mapping) or "size" not in rle or "counts" not in rle:
        raise InputError("An RLE mask needs 'size' [H, W] and 'counts'.")
    size = rle["size"]
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)):
        raise InputError(f"RLE 'size' must be [H, W] integers, not {size!r}.")
    h, w = int(size[0]), int(size[1])
    if h <= 0 or w <= 0:
        raise InputError(f"RLE 'size' must be positive, not {size!r}.")
    counts = rle["counts"]
    if isinstance(counts, str):
        runs = _parse_counts_string(counts.encode("ascii", errors="replace"))
    elif isinstance(counts, (bytes, bytearray)):
        runs = _parse_counts_string(bytes(counts))
    elif isinstance(counts, (list, tuple, np.ndarray)):
        runs = np.asarray(counts)
        if runs.size and not np.issubdtype(runs.dtype, np.integer):
            if not (np.issubdtype(runs.dtype, np.floating) and np.all(runs == np.round(runs))):
                raise InputError("Uncompressed RLE counts must be integers.")
        runs = runs.astype(np.int64).ravel()
    else:
        raise InputError(f"RLE 'counts' must be a string or a list of integers, not {type(counts).__name__}.")
    if (runs < 0).any():
        raise InputError("RLE counts must not be negative.")
    total = int(runs.sum())
    if total != h * w:
        raise InputError(f"RLE counts cover {total} pixels but the size {h}x{w} has {h * w}.")
    return h, w, runs


def decode_rle(rle: Mapping[str, Any]) -> np.ndarray:
    """COCO RLE (compressed str/bytes counts, or uncompressed list counts) -> ``[H, W]`` bool.

    Decoded through the mask's bounding box (:func:`rle_crop`) into zeros: a small object on a
    12-megapixel image costs its box, not 12 million pixels (the zeros are the system's
    untouched pages until written)."""
    h, w, runs = rle_counts(rle)
    if runs.size * 16 > h * w:  # ragged all over (noise): the whole image from the runs at once
        values = np.zeros(runs.size, dtype=np.uint8)
        values[1::2] = 1
        flat = np.repeat(values, runs)
        return cv2.transpose(flat.reshape(w, h)).view(bool)  # column-major runs -> row-major array
    out = np.zeros((h, w), dtype=bool)
    crop = _crop_of_runs(h, runs)
    if crop is not None:
        y0, x0, box = crop
        out[y0:y0 + box.shape[0], x0:x0 + box.shape[1]] = box
    return out


def rle_crop(rle: Mapping[str, Any]) -> tuple[int, int, np.ndarray] | None:
    """A COCO RLE (``{"size": [H, W], "counts": ...}``, column-major runs) as its bounding-box
    crop ``(y0, x0, [h, w] bool)``; None for an empty mask. InputError for a malformed RLE.

    Works from the runs: no ``[H, W]`` array is made, the cost is the runs plus the crop's area.
    Every run lies in one column, unless the crop spans all H rows (a run from one column into
    the next covers its last and the next one's first row); either way a run's pixels are
    consecutive in the crop's column-major order, from ``(col - x0) * h + (row - y0)``.
    """
    h_img, _w_img, runs = rle_counts(rle)
    return _crop_of_runs(h_img, runs)


def _crop_of_runs(h_img: int, runs: np.ndarray) -> tuple[int, int, np.ndarray] | None:
    """:func:`rle_crop` of already parsed runs of an image ``h_img`` rows high."""
    ends = np.cumsum(runs)
    starts = ends - runs
    fg = np.zeros(runs.size, dtype=bool)
    fg[1::2] = True
    fg &= runs > 0
    if not fg.any():
        return None
    first, length = starts[fg], runs[fg]
    last = first + length - 1
    c_first, c_last = first // h_img, last // h_img
    x0, x1 = int(c_first.min()), int(c_last.max()) + 1
    one_column = c_first == c_last
    if one_column.all():
        y0, y1 = int((first % h_img).min()), int((last % h_img).max()) + 1
    else:
        y0, y1 = 0, h_img
    h, w = y1 - y0, x1 - x0
    local = (c_first - x0) * h + (first % h_img - y0)  # where each run starts in the crop (column-major)
    # the crop's column-major pixels as alternating runs: gap, run, gap, run, ..., tail gap
    gaps = np.diff(local, prepend=0)
    gaps[1:] -= length[:-1]
    tail = w * h - int(local[-1] + length[-1])
    lengths = np.empty(2 * local.size + 1, dtype=np.int64)
    lengths[0:-1:2], lengths[1::2], lengths[-1] = gaps, length, tail
    values = np.zeros(lengths.size, dtype=np.uint8)
    values[1::2] = 1
    flat = np.repeat(values, lengths)
    return y0, x0, cv2.transpose(flat.reshape(w, h)).view(bool)  # column-major -> [h, w], C order


def is_rle(obj: Any) -> bool:
    """True for a mapping shaped like an RLE (``size`` and ``counts``), without validating it."""
    return isinstance(obj, Mapping) and "size" in obj and "counts" in obj


def rle_area(rle: Mapping[str, Any]) -> int:
    """Foreground pixel count straight from the runs (no decoding)."""
    _, _, runs = rle_counts(rle)
    return int(runs[1::2].sum())


def rle_bbox(rle: Mapping[str, Any]) -> list[float]:
    """COCO ``[x, y, w, h]`` of an RLE, from its runs (no decoding; ``[0, 0, 0, 0]`` when empty).

    Runs are column-major: pixel index ``x * H + y``."""
    h, _w, runs = rle_counts(rle)
    ends = np.cumsum(runs.astype(np.int64))
    starts = ends - runs
    fg = (np.arange(len(runs)) % 2 == 1) & (runs > 0)
    if not fg.any() or h == 0:
        return [0.0, 0.0, 0.0, 0.0]
    first, last = starts[fg], ends[fg] - 1
    x0, x1 = first // h, last // h
    one_column = x0 == x1
    y0 = np.where(one_column, first % h, 0).min()
    y1 = np.where(one_column, last % h, h - 1).max()
    return [float(x0.min()), float(y0), float(x1.max() - x0.min() + 1), float(y1 - y0 + 1)]


class LazyRLE:
    """A finished ``[H, W]`` bool mask whose COCO RLE (:func:`encode_rle`) is made when first
    asked for, once, by whichever thread asks first: the window hands an edited mask to the
    project's store thread without encoding it on the GUI thread. The mask must not change
    afterwards (QMask's final masks are replaced, never written in place). Pickled or deep-copied,
    it is its RLE dict."""

    __slots__ = ("_mask", "_rle", "_lock")

    def __init__(self, mask: np.ndarray) -> None:
        self._mask: np.ndarray | None = as_mask(mask)
        self._rle: dict | None = None
        self._lock = threading.Lock()

    @property
    def mask(self) -> np.ndarray | None:
        """The mask while it is not encoded yet (None after: decode the RLE instead)."""
        return self._mask

    def resolve(self) -> dict:
        with self._lock:
            if self._rle is None:
                self._rle = encode_rle(self._mask)
                self._mask = None  # (a record kept in a cache must not keep a full-size array too)
            return self._rle

    def __reduce__(self) -> tuple:
        return dict, (self.resolve(),)


class RLEAttribute:
    """A dataclass field holding a COCO RLE dict or None, which may be given a :class:`LazyRLE`:
    reading the field gives its RLE, encoded then. Copies of the owner share the LazyRLE."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_{name}_value"

    def __get__(self, obj: Any, owner: type | None = None) -> dict | None:
        if obj is None:
            return None  # the dataclass field's default
        value = obj.__dict__.get(self._slot)
        return value.resolve() if isinstance(value, LazyRLE) else value

    def __set__(self, obj: Any, value: dict | LazyRLE | None) -> None:
        obj.__dict__[self._slot] = value

    def pending_mask(self, obj: Any) -> np.ndarray | None:
        """The mask of the field's LazyRLE while it is not encoded yet, else None (read once:
        another thread may encode it meanwhile)."""
        value = obj.__dict__.get(self._slot)
        return value.mask if isinstance(value, LazyRLE) else None


def rle_iou(a: dict, b: dict) -> float:
    """IoU of two COCO compressed RLE masks of the same size, from their runs (no decoding;
    pycocotools' own computation, the reference for COCO masks). 0.0 when both are empty."""
    from pycocotools import mask as mask_utils

    if list(a["size"]) != list(b["size"]):
        raise InputError(f"Masks of different sizes ({a['size']} and {b['size']}) have no IoU.")
    return float(mask_utils.iou([a], [b], [0])[0][0])
