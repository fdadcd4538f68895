"""Every edit of an image's objects as a command with do and undo, and an undo history, in plain Python.

A command holds the values before and after and calls one setter of its target
(:class:`EditTarget`): the :class:`~engine.annotation.state.ImageAnnotation` it edits, unless
another target is given (a test's fake decoder). Each command names the object it is about
(``uid``), so undoing it edits that object whatever is selected now (and selects it, so the user
sees what changed). Whatever must be recomputed follows from the annotation's change notice (in
the app, the live segmenter hears of new prompts). ``do`` runs when a command is pushed, so
pushing *is* applying. The app keeps one Qt undo stack per image wrapping these commands;
:class:`History` is the same behaviour without Qt. Edits of the collection (add, delete, merge,
reorder objects; accept all) are in :mod:`.object_edits`.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

from .prompts import PromptState

__all__ = ["EditTarget", "Edit", "MaskEdit", "SetPrompts", "ChooseCandidate", "SetAlpha", "SetCategory", "SetAccepted",
           "Group", "History", "UNDO_BUDGET_BYTES", "steps_over_budget"]


class EditTarget(Protocol):
    def apply_prompts(self, image: Any, uid: str, prompts: PromptState, chosen: int) -> None: ...

    def apply_choice(self, image: Any, uid: str, index: int) -> None: ...

    def apply_alpha(self, image: Any, run_key: str, alpha: float) -> None: ...

    def apply_category(self, image: Any, uid: str, category: str | None) -> None: ...

    def apply_accepted(self, image: Any, uid: str, accepted: bool) -> None: ...

    def apply_corrections(self, image: Any, uid: str, change: Any, undo: bool, action: str,
                          staged: Any = None) -> None: ...


class Edit:
    """One undoable change of one object (``uid``) of one image. ``merge`` absorbs a following
    edit of the same gesture. ``target`` applies it; by default the image itself."""

    text = ""
    nbytes = 0  # the memory of the arrays it keeps for undo (what an undo history's budget counts)

    def __init__(self, image: Any, uid: str | None = None, target: EditTarget | None = None) -> None:
        self.image = image
        self.uid = uid
        self.target: EditTarget = image if target is None else target

    def do(self) -> None:
        raise NotImplementedError

    def undo(self) -> None:
        raise NotImplementedError

    def merge(self, other: "Edit") -> bool:
        return False


class MaskEdit(Edit):
    """An edit that changes an object's mask. An accepted mask is no longer what was accepted, so
    the same undo step clears "accepted" (:meth:`_unaccept` after doing), and undo restores it."""

    _was_accepted = False

    def _unaccept(self) -> None:
        self._was_accepted = bool(self.image.is_accepted(self.uid)) if hasattr(self.image, "is_accepted") else False
        if self._was_accepted:
            self.target.apply_accepted(self.image, self.uid, False)

    def _reaccept(self) -> None:
        if self._was_accepted:
            self.target.apply_accepted(self.image, self.uid, True)


class SetPrompts(MaskEdit):
    """Points or box changed (add, remove, move, box, clear, reset, automatic points)."""

    def __init__(self, image: Any, uid: str, before: PromptState, after: PromptState, text: str,
                 chosen_before: int = 0, *, target: EditTarget | None = None) -> None:
        super().__init__(image, uid, target)
        self.before, self.after, self.text, self.chosen_before = before, after, text, chosen_before

    def do(self) -> None:
        self.target.apply_prompts(self.image, self.uid, self.after, 0)
        self._unaccept()

    def undo(self) -> None:
        self.target.apply_prompts(self.image, self.uid, self.before, self.chosen_before)
        self._reaccept()


class ChooseCandidate(MaskEdit):
    def __init__(self, image: Any, uid: str, before: int, after: int, *, target: EditTarget | None = None) -> None:
        super().__init__(image, uid, target)
        self.before, self.after, self.text = before, after, f"Choose mask {after + 1}"

    def do(self) -> None:
        self.target.apply_choice(self.image, self.uid, self.after)
        self._unaccept()

    def undo(self) -> None:
        self.target.apply_choice(self.image, self.uid, self.before)
        self._reaccept()


class SetAlpha(Edit):
    """Fusion alpha of a question run (``run_key``). The steps of one slider drag (same
    ``gesture``) merge into one edit."""

    def __init__(self, image: Any, run_key: str, before: float, after: float, gesture: int, *,
                 target: EditTarget | None = None) -> None:
        super().__init__(image, None, target)
        self.run_key, self.before, self.after, self.gesture = run_key, before, after, gesture
        self.text = f"Fusion alpha {after:.2f}"

    def merge(self, other: Edit) -> bool:
        if not isinstance(other, SetAlpha) or other.image is not self.image or other.gesture != self.gesture \
                or other.run_key != self.run_key:
            return False
        self.after = other.after
        self.text = f"Fusion alpha {self.after:.2f}"
        return True

    def do(self) -> None:
        self.target.apply_alpha(self.image, self.run_key, self.after)

    def undo(self) -> None:
        self.target.apply_alpha(self.image, self.run_key, self.before)


class SetCategory(Edit):
    """An object's class (a name of the project's class list; None: unlabelled)."""

    def __init__(self, image: Any, uid: str, before: str | None, after: str | None, *,
                 target: EditTarget | None = None) -> None:
        super().__init__(image, uid, target)
        self.before, self.after = before, after
        self.text = f"Class '{after}'" if after else "Clear class"

    def do(self) -> None:
        self.target.apply_category(self.image, self.uid, self.after)

    def undo(self) -> None:
        self.target.apply_category(self.image, self.uid, self.before)


class SetAccepted(Edit):
    def __init__(self, image: Any, uid: str, accepted: bool, *, target: EditTarget | None = None) -> None:
        super().__init__(image, uid, target)
        self.accepted = accepted
        self.text = "Accept object" if accepted else "Un-accept object"

    def do(self) -> None:
        self.target.apply_accepted(self.image, self.uid, self.accepted)

    def undo(self) -> None:
        self.target.apply_accepted(self.image, self.uid, not self.accepted)


class Group(Edit):
    """Several edits as one undo step (done in order, undone in reverse)."""

    def __init__(self, image: Any, edits: Sequence[Edit], text: str) -> None:
        super().__init__(image, edits[0].uid if edits else None)
        self.edits, self.text = list(edits), text

    @property
    def nbytes(self) -> int:  # type: ignore[override]
        return sum(e.nbytes for e in self.edits)

    def do(self) -> None:
        for e in self.edits:
            e.do()

    def undo(self) -> None:
        for e in reversed(self.edits):
            e.undo()


UNDO_BUDGET_BYTES = 32 * 2**20  # per image: ~5 whole-image clean-ups at 12 MP, thousands of brush strokes


def steps_over_budget(sizes: Sequence[int], budget: int | None) -> int:
    """How many of the oldest steps (``sizes``: each one's ``nbytes``, oldest first) to drop so the
    rest hold at most ``budget`` bytes; the newest step always stays. Once over, down to 3/4 of
    the budget, so a history at its limit is not trimmed again on every push."""
    total = sum(sizes)
    if budget is None or total <= budget:
        return 0
    dropped = 0
    while dropped < len(sizes) - 1 and total > budget * 3 // 4:
        total -= sizes[dropped]
        dropped += 1
    return dropped


class History:
    """An undo history: ``push`` applies an edit; ``undo``/``redo`` walk it; a push after an
    undo drops what was undone. ``on_change()`` is called after each of them.

    The arrays its edits keep are bounded by ``budget`` bytes (None: unbounded): a push beyond it
    drops the oldest steps (:func:`steps_over_budget`); :attr:`dropped` counts them."""

    def __init__(self, on_change: Callable[[], None] | None = None, budget: int | None = UNDO_BUDGET_BYTES) -> None:
        self._edits: list[Edit] = []
        self._index = 0  # edits[:index] are applied
        self.on_change = on_change
        self.budget = budget
        self.dropped = 0

    def push(self, edit: Edit) -> None:
        edit.do()
        del self._edits[self._index:]
        if self._edits and self._edits[-1].merge(edit):
            pass
        else:
            self._edits.append(edit)
        drop = steps_over_budget([e.nbytes for e in self._edits], self.budget)
        del self._edits[:drop]
        self.dropped += drop
        self._index = len(self._edits)
        self._changed()

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._edits)

    def undo(self) -> bool:
        if not self.can_undo:
            return False
        self._index -= 1
        self._edits[self._index].undo()
        self._changed()
        return True

    def redo(self) -> bool:
        if not self.can_redo:
            return False
        self._edits[self._index].do()
        self._index += 1
        self._changed()
        return True

    def clear(self) -> None:
        self._edits.clear()
        self._index = 0
        self._changed()

    def snapshot(self) -> tuple[tuple[Edit, ...], int]:
        """The history as it is now (its edits and how many are applied), for :meth:`restore`."""
        return tuple(self._edits), self._index

    def restore(self, snapshot: tuple[tuple[Edit, ...], int]) -> None:
        """Put back a :meth:`snapshot` without doing or undoing anything: the state it stood for
        is put back by its caller (a cancelled ask's steps leave the history with its state)."""
        edits, index = snapshot
        self._edits, self._index = list(edits), index
        self._changed()

    @property
    def can_undo(self) -> bool:
        return self._index > 0

    @property
    def can_redo(self) -> bool:
        return self._index < len(self._edits)

    @property
    def undo_text(self) -> str:
        return self._edits[self._index - 1].text if self.can_undo else ""

    @property
    def redo_text(self) -> str:
        return self._edits[self._index].text if self.can_redo else ""

    def __len__(self) -> int:
        return len(self._edits)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
