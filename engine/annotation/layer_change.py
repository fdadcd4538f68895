"""The undo record of a stroke-layer edit: the add and erase layers' values in one rectangle,
before and after the edit.

A whole-image clean-up at 12 megapixels changes a window as large as the image; four bool
windows of it (two layers, before and after) are 48 MB, so they are kept packed 8 pixels a
byte (``numpy.packbits``, 6 MB) and unpacked only when the edit is done or undone.
:attr:`LayerChange.nbytes` is what an undo history counts against its budget
(:class:`~engine.annotation.edits.History`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["LayerChange", "cropped_change"]

Windows = tuple[np.ndarray, np.ndarray]  # (add, erase), [h, w] bool each


class LayerChange:
    """The layers' ``[h, w]`` windows at row ``y0``, column ``x0`` of layers of ``shape``, before
    and after an edit (read back as bool arrays, kept packed)."""

    def __init__(self, shape: tuple[int, int], y0: int, x0: int, before: Windows, after: Windows) -> None:
        self.shape, self.y0, self.x0 = shape, y0, x0
        self.size = tuple(before[0].shape)
        self.changed = not (np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1]))
        self._before = tuple(np.packbits(w) for w in before)  # (flattened in row order)
        self._after = tuple(np.packbits(w) for w in after)

    @property
    def before(self) -> Windows:
        return self._unpack(self._before)

    @property
    def after(self) -> Windows:
        return self._unpack(self._after)

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self._before + self._after)

    def _unpack(self, packed: tuple[np.ndarray, ...]) -> Windows:
        h, w = self.size
        return tuple(np.unpackbits(p, count=h * w).reshape(h, w).view(bool) for p in packed)  # type: ignore


def cropped_change(shape: tuple[int, int], before: Windows, after: Windows,
                   origin: tuple[int, int] = (0, 0)) -> LayerChange | None:
    """A change of the layers' window at ``origin`` (row, col; the whole image by default) kept
    as the bounding rectangle of the pixels it changes; None when it changes none."""
    diff = (before[0] != after[0]) | (before[1] != after[1])
    rows, cols = np.flatnonzero(diff.any(axis=1)), np.flatnonzero(diff.any(axis=0))
    if not len(rows):
        return None
    win = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    return LayerChange(shape, origin[0] + int(rows[0]), origin[1] + int(cols[0]),
                       tuple(b[win] for b in before), tuple(a[win] for a in after))
