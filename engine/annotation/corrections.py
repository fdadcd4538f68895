"""A person's corrections over the model's mask: an add layer and an erase layer, and the edits
that change them (brush and eraser strokes, a whole new mask, clearing the strokes).

The final mask is ``(model | add) & ~erase``, each ``[H, W]`` bool in image pixels of the
displayed image. The layers are kept apart from the model's mask, so a later point or box edit
re-runs the decoder and the strokes still apply to the new mask. ``add`` and ``erase`` never
overlap: the newest stroke decides a pixel.

An edit records only the rectangle it changed (the layers' values there before and after, packed:
:mod:`.layer_change`), so a stroke on a 12-megapixel image keeps a small undo step. Each object
has its own layers (:class:`~engine.annotation.object_state.ObjectState`); an edit names the
object it paints (``uid``).

A stroke's work (the swept disc, the windows, the new layers and final mask) can be done on
another thread: :meth:`Corrections.layers` takes the layers as they are (arrays never written in
place), :meth:`PaintStroke.stage` works the change out from them alone, and doing the edit then
only swaps the new arrays in (:meth:`Corrections.install`), unless the layers changed meanwhile
(``version``), when it is worked out again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..imaging.paint import stroke_patch
from ..imaging.rle import LazyRLE, decode_rle
from .edits import MaskEdit
from .layer_change import LayerChange, cropped_change

__all__ = ["Corrections", "restore_corrections", "LayerChange", "LayerEdit", "PaintStroke", "ReplaceMask",
           "ClearStrokes", "Layers", "StagedLayers", "staged_put"]


@dataclass(frozen=True)
class Layers:
    """One object's layers at one moment (``[H, W]`` bool arrays or None, never written in place,
    so another thread may read them), the final mask cached with them (``cache``: (model, add,
    erase, final)) and the :attr:`Corrections.version` they are."""

    add: np.ndarray | None
    erase: np.ndarray | None
    cache: tuple[Any, Any, Any, np.ndarray | None] | None
    version: int

    def window(self, y0: int, x0: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the layers' ``[h, w]`` window at row ``y0``, column ``x0`` (zeros where unset)."""
        def part(layer: np.ndarray | None) -> np.ndarray:
            return np.zeros((h, w), bool) if layer is None else layer[y0:y0 + h, x0:x0 + w].copy()
        return part(self.add), part(self.erase)


@dataclass(frozen=True)
class StagedLayers:
    """New layers worked out from :class:`Layers` of ``version`` (:func:`staged_put`)."""

    add: np.ndarray | None
    erase: np.ndarray | None
    empty: bool
    cache: tuple[Any, Any, Any, np.ndarray | None] | None
    version: int


def staged_put(layers: Layers, shape: tuple[int, int], y0: int, x0: int, add: np.ndarray,
               erase: np.ndarray) -> StagedLayers:
    """``layers`` with both windows at ``(y0, x0)`` written (layers of ``shape`` (H, W) made when
    missing), and the cached final mask updated in that window only (a 12-megapixel mask is
    copied, not recomputed). Pure: the arrays of ``layers`` are not touched."""
    h, w = add.shape
    win = (slice(y0, y0 + h), slice(x0, x0 + w))
    new = []
    for layer, part in ((layers.add, add), (layers.erase, erase)):
        if layer is not None and layer.shape != tuple(shape):
            layer = None
        if layer is None:  # a layer is made only when something is painted on it
            if part.any():
                layer = np.zeros(shape, bool)
                layer[win] = part
        elif not np.array_equal(layer[win], part):  # (an unchanged layer is neither copied nor encoded)
            layer = layer.copy()
            layer[win] = part
        if layer is not None:
            layer.flags.writeable = False  # replaced, never written in place (to_rles encodes it later)
        new.append(layer)
    new_add, new_erase = new
    empty = not (add.any() or erase.any() or _any(new_add) or _any(new_erase))  # the window first: no full scan
    c, cache = layers.cache, None
    if c is not None and c[1] is layers.add and c[2] is layers.erase and c[3] is not None:
        model, final = c[0], c[3].copy()
        final[win] = ((np.zeros((h, w), bool) if model is None else model[win]) | add) & ~erase
        final.flags.writeable = False
        cache = (model, new_add, new_erase, final)
    return StagedLayers(new_add, new_erase, empty, cache, layers.version)


def _any(layer: np.ndarray | None) -> bool:
    return layer is not None and bool(layer.any())


class Corrections:
    """The add and erase layers of one image (None while nothing was painted).

    Layers are replaced, never written in place (a change copies the layer, then writes the
    rectangle), so a mask handed out earlier, or a record being written on another thread,
    never changes under its reader."""

    def __init__(self, add: np.ndarray | None = None, erase: np.ndarray | None = None) -> None:
        self._add, self._erase = add, erase
        self._packed: tuple[dict | None, dict | None] | None = None  # the layers as RLE while unloaded
        self._rles: dict[str, tuple[Any, dict | None]] = {}  # layer name -> (the layer, its RLE)
        self._cache: tuple[Any, Any, Any, np.ndarray | None] | None = None  # (model, add, erase, final)
        self._empty = not self._any_stroke()
        self.version = 0  # bumped by every change of the layers (a staged change checks it)

    @property
    def add(self) -> np.ndarray | None:
        self._unpack()
        return self._add

    @add.setter
    def add(self, layer: np.ndarray | None) -> None:
        self._add = layer
        self.version += 1

    @property
    def erase(self) -> np.ndarray | None:
        self._unpack()
        return self._erase

    @erase.setter
    def erase(self, layer: np.ndarray | None) -> None:
        self._erase = layer
        self.version += 1

    def pack(self, rles: tuple[dict | None, dict | None]) -> None:
        """Free the layers' arrays (an image no longer shown), keeping them as ``rles`` (their
        COCO RLE, as :meth:`to_rles` gives): they are decoded again when next needed."""
        if self._packed is not None:
            return
        if self._empty:
            self.clear()
            return
        self._packed, self._add, self._erase, self._cache = tuple(rles), None, None, None  # type: ignore[assignment]
        self.version += 1

    def _unpack(self) -> None:
        if self._packed is not None:
            packed, self._packed = self._packed, None
            again = Corrections.from_rles(*packed)
            self._add, self._erase = again._add, again._erase
            self.version += 1

    def _any_stroke(self) -> bool:
        return bool((self.add is not None and self.add.any()) or (self.erase is not None and self.erase.any()))

    @property
    def empty(self) -> bool:
        """No stroke at all (kept up to date by every change: asked on every mask change)."""
        return self._empty

    @property
    def shape(self) -> tuple[int, int] | None:
        if self._packed is not None:  # (not decoded for this)
            return next(tuple(r["size"]) for r in self._packed if r is not None)
        layer = self._add if self._add is not None else self._erase
        return None if layer is None else layer.shape

    def window(self, y0: int, x0: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the layers' ``[h, w]`` window at row ``y0``, column ``x0`` (zeros where unset)."""
        def part(layer: np.ndarray | None) -> np.ndarray:
            return np.zeros((h, w), bool) if layer is None else layer[y0:y0 + h, x0:x0 + w].copy()
        return part(self.add), part(self.erase)

    def layers(self) -> Layers:
        """The layers as they are now, for :func:`staged_put` (here or on another thread)."""
        self._unpack()
        return Layers(self._add, self._erase, self._cache, self.version)

    def put(self, shape: tuple[int, int], y0: int, x0: int, add: np.ndarray, erase: np.ndarray) -> None:
        """Write both layers' window at ``(y0, x0)`` (layers of ``shape`` (H, W) made when missing)."""
        self.install(staged_put(self.layers(), shape, y0, x0, add, erase))

    def install(self, staged: StagedLayers) -> bool:
        """Swap in layers staged from this object's current ones; False (nothing changed) when the
        layers changed since they were staged."""
        if staged.version != self.version or self._packed is not None:
            return False
        self._add, self._erase, self._empty, self._cache = staged.add, staged.erase, staged.empty, staged.cache
        self.version += 1
        return True

    def clear(self) -> None:
        self._add = self._erase = None
        self._packed = None
        self._cache = None
        self._empty = True
        self.version += 1

    def apply(self, model: np.ndarray | None) -> np.ndarray | None:
        """The final mask ``(model | add) & ~erase``, [H, W] bool (the model's own array when
        there are no layers); None when there is neither a model mask nor a stroke. Cached."""
        if self._empty:
            return model
        if model is not None and model.shape != self.shape:
            return model  # layers of another image size (the file changed): not applied
        c = self._cache
        if c is not None and c[0] is model and c[1] is self.add and c[2] is self.erase:
            return c[3]
        final = np.zeros(self.shape, bool) if model is None else model.copy()
        if self.add is not None:
            final |= self.add
        if self.erase is not None:
            final &= ~self.erase
        final.flags.writeable = False
        self._cache = (model, self.add, self.erase, final)
        return final

    # ------------------------------------------------------------------ project form
    def to_rles(self) -> tuple[dict | LazyRLE | None, dict | LazyRLE | None]:
        """(add, erase) as COCO RLE, None for an empty layer: a layer changed since it was last
        encoded is a LazyRLE (layers are never written in place), encoded where it is first read."""
        if self._packed is not None:
            return self._packed
        out = []
        for name, layer in (("add", self._add), ("erase", self._erase)):
            known = self._rles.get(name)
            if known is None or known[0] is not layer:  # encoded once per version of the layer
                known = (layer, None if layer is None or not layer.any() else LazyRLE(layer))
                self._rles[name] = known
            out.append(known[1])
        return tuple(out)  # type: ignore[return-value]

    @classmethod
    def from_rles(cls, add: dict | LazyRLE | None, erase: dict | LazyRLE | None) -> "Corrections":
        add, erase = (r.resolve() if isinstance(r, LazyRLE) else r for r in (add, erase))
        a = None if add is None else decode_rle(add)
        e = None if erase is None else decode_rle(erase)
        if a is not None and e is not None and a.shape != e.shape:
            raise InputError(f"The stroke layers differ in size ({a.shape} and {e.shape}).")
        shape = (a if a is not None else e).shape if (a is not None or e is not None) else None
        if shape is None:
            return cls()
        a = np.zeros(shape, bool) if a is None else a
        e = np.zeros(shape, bool) if e is None else e
        return cls(a, e & ~a)


def restore_corrections(record: Any) -> Corrections:
    """A project record's stroke layers; none when they cannot be read (the record's final mask,
    which has them applied, still is: only a later point edit would lose them)."""
    try:
        return Corrections.from_rles(record.stroke_add_rle, record.stroke_erase_rle)
    except (InputError, TypeError, KeyError, ValueError):
        return Corrections()


class LayerEdit(MaskEdit):
    """A change of the layers, worked out when first done (against the mask as it is then)."""

    action = ""

    def __init__(self, image: Any, uid: str, *, target: Any = None) -> None:
        super().__init__(image, uid, target)
        self._change: LayerChange | None = None
        self._prepared = False
        self._staged: StagedLayers | None = None  # the new layers, worked out off the GUI thread (stage)

    def prepare(self) -> bool:
        """Work the change out now; False when it changes nothing (then it need not be pushed)."""
        if not self._prepared:
            self._change = self._compute()
            self._prepared = True
        return self._change is not None and self._change.changed

    def _compute(self) -> LayerChange | None:
        raise NotImplementedError

    @property
    def nbytes(self) -> int:
        return 0 if self._change is None else self._change.nbytes

    def do(self) -> None:
        staged, self._staged = self._staged, None
        if staged is not None and staged.version != self.image.object_state(self.uid).corrections.version:
            staged, self._prepared = None, False  # the layers changed since it was staged: work it out again
        if self.prepare():
            self.target.apply_corrections(self.image, self.uid, self._change, False, self.action, staged)
            self._unaccept()

    def undo(self) -> None:
        if self._change is not None and self._change.changed:
            self.target.apply_corrections(self.image, self.uid, self._change, True, self.action)
            self._reaccept()


class PaintStroke(LayerEdit):
    """A brush (``erase=False``) or eraser stroke: the disc of ``radius`` image pixels swept
    along ``points`` ((x, y) image pixels) is added to the mask, or taken out of it."""

    def __init__(self, image: Any, uid: str, points: Sequence[tuple[float, float]], radius: float,
                 erase: bool = False, *, target: Any = None) -> None:
        super().__init__(image, uid, target=target)
        self.points, self.radius, self.erase = [tuple(map(float, p)) for p in points], float(radius), bool(erase)
        self.text = "Erase" if erase else "Brush stroke"
        self.action = "erase" if erase else "stroke"

    def stage(self, layers: Layers, shape: tuple[int, int] | None) -> None:
        """Work the stroke out from ``layers`` (the object's :meth:`Corrections.layers`; ``shape``
        its :meth:`mask_shape_of`), with the new layers it makes: pure, so it may run on another
        thread before the edit is done. Doing it then swaps the layers in (see :meth:`do`)."""
        self._change = self._change_from(layers, shape)
        self._prepared = True
        change = self._change
        self._staged = None if change is None or not change.changed else \
            staged_put(layers, change.shape, change.y0, change.x0, *change.after)

    def _compute(self) -> LayerChange | None:
        corrections = self.image.object_state(self.uid).corrections
        return self._change_from(corrections.layers(), self.image.mask_shape_of(self.uid))

    def _change_from(self, layers: Layers, shape: tuple[int, int] | None) -> LayerChange | None:
        if shape is None:
            raise InputError("There is no image to paint on yet.")
        hit = stroke_patch(self.points, self.radius, shape)
        if hit is None:
            return None
        y0, x0, disc = hit
        before = layers.window(y0, x0, *disc.shape)
        add, erase = before
        after = (add & ~disc, erase | disc) if self.erase else (add | disc, erase & ~disc)
        return LayerChange(shape, y0, x0, before, after)


class ReplaceMask(LayerEdit):
    """Make the final mask ``target_mask`` ([H, W] bool) by setting the layers over the model's
    mask: pixels the model lacks are added, those it has too many are erased; earlier strokes
    that agree with the target are kept (they still apply after a later point edit).

    ``at`` (row, col): ``target_mask`` is only the ``[h, w]`` window of the final mask starting
    there, and the rest stays as it is (a polygon vertex edit on a 12-megapixel mask computes
    its window, not the whole image)."""

    def __init__(self, image: Any, uid: str, target_mask: np.ndarray, text: str, action: str = "replace mask",
                 *, at: tuple[int, int] | None = None, target: Any = None) -> None:
        super().__init__(image, uid, target=target)
        self.target_mask = np.asarray(target_mask, dtype=bool)
        self.text, self.action = text, action
        self.at = None if at is None else (int(at[0]), int(at[1]))

    def _compute(self) -> LayerChange | None:
        shape = self.image.mask_shape_of(self.uid)
        obj = self.image.object_state(self.uid)
        want = self.target_mask
        y0, x0 = self.at or (0, 0)
        h, w = want.shape
        fits = shape is not None and (want.shape == tuple(shape) if self.at is None else
                                      y0 >= 0 and x0 >= 0 and y0 + h <= shape[0] and x0 + w <= shape[1])
        if not fits:
            where = "" if self.at is None else f" at row {y0}, column {x0}"
            raise InputError(f"The new mask is {w} x {h} pixels{where}; "
                             f"the image is {'not read yet' if shape is None else f'{shape[1]} x {shape[0]}'}.")
        model = obj.model_mask
        model = np.zeros((h, w), bool) if model is None else model[y0:y0 + h, x0:x0 + w]
        add, erase = obj.corrections.window(y0, x0, h, w)
        new_add = (add & want) | (want & ~model)
        new_erase = (erase & ~want) | (model & ~want)
        self.target_mask = None  # worked out once: undo keeps only the change (an image-sized array less)
        return cropped_change(shape, (add, erase), (new_add, new_erase), (y0, x0))


class ClearStrokes(LayerEdit):
    """Remove every stroke: the final mask is the model's again."""

    text, action = "Clear strokes", "clear strokes"

    def _compute(self) -> LayerChange | None:
        corrections = self.image.object_state(self.uid).corrections
        shape = corrections.shape
        if shape is None:
            return None
        before = corrections.window(0, 0, *shape)
        return cropped_change(shape, before, (np.zeros(shape, bool), np.zeros(shape, bool)))
