"""Asking a question about an image: the chain's results arriving, and the objects they propose.

:class:`AskFlow` is held by an :class:`~engine.annotation.state.ImageAnnotation` (``image.asks``).
``start`` begins a run for the question (replacing the evidence of an earlier run of the same
question, whose answer is kept among the previous answers); ``take`` applies each result of the
chain as it comes (heat map, automatic points, proposals, fused map, captions, answer); ``finish``
ends the ask; ``abandon`` (a cancel or failure before the answer) takes the ask back.

The proposals become objects (``proposal=True``): each replaces nothing a person made. The run's
earlier proposals that nobody touched (kept, edited, labelled, accepted) are replaced; a proposal
whose mask is the same as an existing object's (IoU >= :data:`DUPLICATE_IOU`) is not added again,
the run links that object instead. A proposal takes the class its question's noun names in the
class list (then the answer's, when it comes), else the last class used; never the answer's text.

Frames: heat maps on the ``[G, G]`` grid; points, boxes and masks in (x, y) image pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..imaging.rle import rle_iou
from ..project import ObjectRecord, QuestionRun
from ..results import AnswerResult, CaptionsResult, FusionResult, HeatmapResult, ProposalsResult
from ..vqa.question import normalise_question
from .chain import AutoPoints
from .object_state import ObjectState
from .run_state import RunState

__all__ = ["AskFlow", "DUPLICATE_IOU", "forget_steps"]

DUPLICATE_IOU = 0.85  # a proposal this close to an object already there is that object


@dataclass
class _Before:
    """What an ask changed, to take it back: the run it replaced, the run and object shown, the
    proposals it removed (stale) and the ones it added."""

    key: str
    run: RunState | None
    run_key: str | None
    selected: str | None
    removed: list[ObjectState] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    answered: bool = False


class AskFlow:
    """See the module docstring. ``asking`` is the caller's id of the ask in flight (the app's
    request id), or None."""

    def __init__(self, image: Any) -> None:
        self.image = image
        self.asking: object = None
        self._before: _Before | None = None

    @property
    def run(self) -> RunState | None:
        return None if self._before is None else self.image.runs.get(self._before.key)

    def forget(self) -> None:
        """Whatever is in flight is no longer taken back (the project was reloaded)."""
        self._before, self.asking = None, None

    def start(self, question: str, instances: str = "one", ask_id: object = None) -> RunState:
        """A new ask of ``question`` (``instances``: "one" object, or "several", one per separate
        hot region of the heat map). An ask still in flight ends first, keeping what it made."""
        image = self.image
        if self._before is not None:
            self.finish(self.asking)
        question = question.strip()
        key = normalise_question(question)
        earlier = image.runs.get(key)
        self._before = _Before(key, earlier, image.run_key, image.selected)
        self.asking = ask_id
        previous = [] if earlier is None else earlier.record.with_replaced_answer()
        record = QuestionRun(question=question, alpha=image.store.default_alpha if earlier is None else earlier.alpha,
                             instances=instances if instances in ("one", "several") else "one",  # type: ignore[arg-type]
                             previous_answers=previous,
                             created=earlier.record.created if earlier is not None else time.time())
        record.object_uids = [] if earlier is None else list(earlier.record.object_uids)
        run = RunState(record)
        image.runs[key] = run
        image.select(None)
        image.show_run(key)
        return run

    def take(self, result: Any, ask_id: object = None) -> None:
        """One result of the chain for the ask ``ask_id`` (others are ignored)."""
        run = self.run
        if run is None or ask_id != self.asking:
            return
        image = self.image
        if isinstance(result, HeatmapResult):
            run.set_heatmap(result)
            image.save_run(run, "heatmap")
            image.notify("heatmap")
        elif isinstance(result, AutoPoints):
            run.set_auto_points(tuple(result.points), result.asked)
            image.notify("prompts")  # (the points and why fewer came are shown with the prompts)
        elif isinstance(result, ProposalsResult):
            self._propose(run, result)
        elif isinstance(result, FusionResult):
            run.fused_map = result.fused_map
            image.notify("fusion")
        elif isinstance(result, CaptionsResult):
            run.captions = tuple(result.captions)
            image.notify("captions")
        elif isinstance(result, AnswerResult):
            self.answer(run, result.answer)
            if self._before is not None:
                self._before.answered = True

    def answer(self, run: RunState, answer: str, captions: tuple[str, ...] | None = None) -> None:
        """A new answer for ``run`` (an ask's, or a re-run on the corrected map): kept with the
        answer it replaces; the run's objects' review needs follow (a count can disagree now)."""
        image = self.image
        members = image.run_objects(run)
        run.set_answer(answer, tuple(run.captions if captions is None else captions),
                       any(o.edited for o in members))
        fresh = [o for o in members if not o.record.touched and o.record.category is None]
        category = _match(image, run.question, answer)
        for obj in fresh:
            obj.record.category = category
        image.save_changes(objects=members, runs=[run], action="answer", source="chain")
        for obj in fresh:
            image.notify_object(obj.uid, "category")
        if run.key == image.run_key:
            image.notify("answer")
            image.notify("category")

    def finish(self, ask_id: object = None) -> None:
        """The ask ``ask_id`` completed: its results are now the image's."""
        if ask_id == self.asking:
            self._before, self.asking = None, None

    def abandon(self, ask_id: object = None) -> bool:
        """The ask ``ask_id`` was cancelled or failed before its answer: its run is put back as it
        was, its proposals that nobody touched go (with the undo steps about them), the proposals it
        replaced come back, and the project follows. True when something was put back."""
        before = self._before
        if ask_id != self.asking or before is None:
            return False
        self._before, self.asking = None, None
        if before.answered:
            return False
        image = self.image
        gone = [uid for uid in before.added if uid in image.objects and not image.objects[uid].record.touched]
        forget_steps(image, gone)
        for uid in gone:
            del image.objects[uid]
        for obj in before.removed:
            image.objects[obj.uid] = obj
        if before.run is not None:
            image.runs[before.key] = before.run
        else:
            image.runs.pop(before.key, None)
        image.run_key = before.run_key if before.run_key in image.runs else None
        image.selected = before.selected if before.selected in image.objects else None
        image.save_changes(objects=before.removed, removed=gone, runs=[before.run] if before.run else [],
                           action="restore")
        if before.run is None:
            record, question = image.store.image_record(image), before.key
            image.store.write(lambda p: p.remove_run(record, question))
        for uid in gone:
            image.notify_object(uid, "removed")
        for obj in before.removed:
            image.notify_object(obj.uid, "added")
        for aspect in image.ASPECTS[1:]:
            if aspect != "prompts":  # "restored" shows the points: the masks put back need no decoder
                image.notify(aspect)
        return True

    # ------------------------------------------------------------------ proposals
    def _propose(self, run: RunState, result: ProposalsResult) -> None:
        image, before = self.image, self._before
        stale = [o for o in image.run_objects(run) if not o.record.touched]
        for obj in stale:
            del image.objects[obj.uid]
        before.removed.extend(stale)
        forget_steps(image, [o.uid for o in stale])
        existing = list(image.objects.values())
        top = max((o.record.order for o in existing), default=-1) + 1
        category = _match(image, run.question, None)
        added: list[ObjectState] = []
        linked: list[str] = []
        for seg in result.segmentations:
            if not seg.candidates:
                continue
            best = seg.candidates[0]
            rle = best.rle if best.rle is not None else _encode(best.mask)
            twin = _duplicate(rle, existing + added)
            if twin is not None:
                linked.append(twin.uid)
                continue
            record = ObjectRecord(category=category, mask_rle=rle, auto_mask_rle=dict(rle), mask_score=float(best.iou),
                                  mask_source="auto", points=list(seg.points), auto_points=list(seg.points),
                                  box=seg.box, source="question", question=run.question, proposal=True,
                                  order=top + len(added))
            if best.coverage is not None:
                record.remember_coverage(best.coverage)
            state = ObjectState(record)
            state.cache_segmentation(state.prompts, seg)
            state.segmentation = seg
            added.append(state)
        for state in added:
            image.objects[state.uid] = state
        before.added.extend(s.uid for s in added)
        kept = [o.uid for o in image.run_objects(run) if o.uid not in {s.uid for s in added}]
        run.record.object_uids = list(dict.fromkeys(  # (a twin within the ask is linked to the one added)
            [s.uid for s in added] + [u for u in kept + linked if u in image.objects]))
        image.save_changes(objects=added, removed=[o.uid for o in stale], runs=[run], action="ask", source="chain")
        for obj in stale:
            image.notify_object(obj.uid, "removed")
        for state in added:
            image.notify_object(state.uid, "added")
        image.notify("objects")
        image.select(added[0].uid if added else (linked[0] if linked else None))
        image.update_fusion(run)


def forget_steps(image: Any, uids: list[str]) -> None:
    """Drop the steps of the image's undo history (if it keeps one) that are about objects an ask
    took away (untouched proposals: replaced, or taken back with a cancelled ask): they could be
    neither done nor undone again (their object is gone), and a redo of one would fail."""
    history, gone = getattr(image, "history", None), set(uids)
    if history is None or not gone:
        return
    edits, index = history.snapshot()
    keep = [not (_uids_of(e) & gone) for e in edits]
    if not all(keep):
        history.restore((tuple(e for e, k in zip(edits, keep) if k), sum(keep[:index])))


def _uids_of(edit: Any) -> set[str]:
    """The objects an edit (or a group of edits) is about."""
    found = {edit.uid} if getattr(edit, "uid", None) is not None else set()
    found.update(getattr(edit, "uids", None) or ())
    for part in getattr(edit, "edits", None) or ():
        found |= _uids_of(part)
    return found


def _encode(mask: Any) -> dict:
    from ..imaging.masks import encode_rle

    return encode_rle(mask)


def _duplicate(rle: dict, objects: list[ObjectState]) -> ObjectState | None:
    """The object whose mask is the same as ``rle``'s (IoU >= DUPLICATE_IOU), or None."""
    for obj in objects:
        if obj.record.has_mask and obj.record.mask_size == tuple(rle["size"]) \
                and rle_iou(rle, obj.record.mask_rle) >= DUPLICATE_IOU:
            return obj
    return None


def _match(image: Any, question: str, answer: str | None) -> str | None:
    """The class a question's proposals get: the class list's name its noun (or the answer's)
    names, else the last class used, else None (unlabelled). Never the answer's own words."""
    from .class_match import match_class

    classes = list(image.store.classes())
    found = match_class(question, answer or "", classes) if classes else None
    if found is not None:
        return found
    last = getattr(image.store, "last_category", None)
    return last if last in classes else None
