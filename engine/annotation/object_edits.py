"""Edits of an image's collection of objects: new, delete, keep a proposal, merge, reorder, accept all.

Like :mod:`.edits`, each is a command with do and undo over an
:class:`~engine.annotation.state.ImageAnnotation`; pushed on a history, it is applied.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..project import ObjectRecord
from .corrections import ReplaceMask
from .edits import Edit, Group, SetAccepted
from .object_state import ObjectState

__all__ = ["AddObject", "DeleteObjects", "KeepProposal", "Reorder", "accept_all", "merge_objects", "new_object"]


def new_object(image: Any, category: str | None = None, *, record: ObjectRecord | None = None) -> ObjectState:
    """A new, empty manual object drawn on top of the others (its mask comes from its prompts,
    strokes or a polygon); not yet on the image: push :class:`AddObject` with it."""
    top = max((o.record.order for o in image.objects.values()), default=-1) + 1
    rec = record if record is not None else ObjectRecord(category=category, source="manual", order=top)
    rec.order = top
    return ObjectState(rec)


class AddObject(Edit):
    """Put a (new) object on the image and select it; undo takes it off again."""

    def __init__(self, image: Any, state: ObjectState, text: str = "New object") -> None:
        super().__init__(image, state.uid)
        self.state, self.text = state, text

    def do(self) -> None:
        self.image.add_objects([self.state], select=self.state.uid)

    def undo(self) -> None:
        self.image.remove_objects([self.state.uid])


class DeleteObjects(Edit):
    """Delete objects; undo puts them back as they were (mask, strokes, prompts, class, flags)."""

    def __init__(self, image: Any, uids: Sequence[str], text: str | None = None) -> None:
        super().__init__(image, uids[0] if uids else None)
        self.uids = [u for u in uids if u in image.objects]
        if not self.uids:
            raise InputError("Select an object to delete first.")
        self.states: list[ObjectState] = []
        self.text = text or (f"Delete {len(self.uids)} objects" if len(self.uids) > 1 else "Delete object")

    def do(self) -> None:
        self.states = self.image.remove_objects(self.uids)

    def undo(self) -> None:
        self.image.add_objects(self.states, select=self.states[0].uid if self.states else None)


class KeepProposal(Edit):
    """Keep a question's proposal: it is the user's object now (asking again leaves it alone)."""

    text = "Keep proposal"

    def __init__(self, image: Any, uid: str) -> None:
        super().__init__(image, uid)
        self.before = bool(image.objects[uid].record.proposal)

    def do(self) -> None:
        self.image.set_proposal(False, uid=self.uid)

    def undo(self) -> None:
        self.image.set_proposal(self.before, uid=self.uid)


class Reorder(Edit):
    """Move an object in the drawing order."""

    def __init__(self, image: Any, uid: str, after: int) -> None:
        super().__init__(image, uid)
        self.before, self.after = image.objects[uid].record.order, int(after)
        self.text = "Bring forward" if self.after > self.before else "Send backward"

    def do(self) -> None:
        self.image.set_order(self.uid, self.after)

    def undo(self) -> None:
        self.image.set_order(self.uid, self.before)


def accept_all(image: Any) -> Group | None:
    """One step accepting every object of the image not accepted yet (None: nothing to accept)."""
    todo = [SetAccepted(image, o.uid, True) for o in image.ordered() if not o.record.accepted and o.record.has_mask]
    return Group(image, todo, f"Accept all ({len(todo)})") if todo else None


def merge_objects(image: Any, uids: Sequence[str]) -> Group:
    """One step making the first object's mask the union of all of them and deleting the others
    (their strokes and prompts go with them; the union is a correction over the first's mask)."""
    states = [image.objects[u] for u in uids if u in image.objects]
    if len(states) < 2:
        raise InputError("Select two or more objects to merge.")
    masks = [s.mask for s in states]
    if any(m is None for m in masks):
        raise InputError("Every object to merge needs a mask.")
    union = np.logical_or.reduce(masks)
    keep = states[0]
    return Group(image, [ReplaceMask(image, keep.uid, union, "Merge", "merge"), KeepProposal(image, keep.uid),
                         DeleteObjects(image, [s.uid for s in states[1:]])], f"Merge {len(states)} objects")
