"""One image's annotation, without Qt: its objects, its question runs, and what a person made of them.

:class:`ImageAnnotation` holds an image's pixels (once read), its objects
(:class:`~engine.annotation.object_state.ObjectState`, each a labelled instance with its prompts,
mask and corrections), its question runs (:class:`~engine.annotation.run_state.RunState`, the
evidence that proposed objects), which object is selected and which run is shown. Editing tools
act on the selected object only; the properties ``prompts``, ``mask``, ``segmentation``, ... read
the selected object, and ``question``, ``heatmap``, ``answer``, ... the run shown (the selected
object's run, else the latest asked).

Every change is written to the project at once through its :class:`AnnotationStore` (one
transaction) and announced through :meth:`notify` (an aspect of the selection or the run shown)
and :meth:`notify_object` (which object changed, for views that draw all of them). The app gives
each image a listener (``gui.workspace.session.SessionSignals``: Qt signals and a Qt undo stack); scripts use
:class:`engine.annotation.annotator.Annotator`.

Frames: points, boxes and masks in (x, y) image pixels of the displayed image; heat maps,
coverage and fused maps on the ``[G, G]`` Grad-CAM grid.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from ..imaging.images import LoadedImage
from ..project import ImageRecord, ObjectRecord
from ..results import SegmentationResult
from .asking import AskFlow
from .object_state import SEG_CACHE_SIZE, ObjectState
from .prompts import PromptState
from .run_state import AnswerView, RunState
from .stores import AnnotationListener, AnnotationStore

__all__ = ["ImageAnnotation", "AnswerView", "SEG_CACHE_SIZE", "ASPECTS"]

ASPECTS = ("image", "question", "heatmap", "prompts", "segmentation", "choice", "alpha", "fusion",
           "captions", "answer", "category", "accepted", "status", "mask",  # mask: strokes or clean-up changed it
           "restored",  # restored: the whole state put back (a cancelled ask), with no decoder work
           "objects", "selection")  # objects: added, removed, reordered; selection: another object selected


def _of_selected(name: str, default=None) -> property:
    """A read-only attribute of the selected object (``default`` while none is selected)."""
    return property(lambda self: default if self.selected_object is None else getattr(self.selected_object, name),
                    doc=f"The selected object's ``{name}``.")


def _of_run(name: str, default=None) -> property:
    """A read-only attribute of the run shown (``default`` while none is)."""
    return property(lambda self: default if self.current_run is None else getattr(self.current_run, name),
                    doc=f"The shown run's ``{name}``.")


class ImageAnnotation:
    """See the module docstring. Also an :class:`~engine.annotation.edits.EditTarget` of itself,
    so a :class:`~engine.annotation.edits.History` of edits works on it without any app around.
    ``asks`` (:class:`~engine.annotation.asking.AskFlow`) takes a question's results as they come."""

    ASPECTS = ASPECTS
    history = None  # the image's undo history, if it keeps one (snapshot()/restore(), as edits.History)

    prompts = _of_selected("prompts", PromptState())
    segmentation = _of_selected("segmentation")
    chosen = _of_selected("chosen", 0)
    corrections = _of_selected("corrections")
    generation = _of_selected("generation", 0)
    mask = _of_selected("mask")
    model_mask = _of_selected("model_mask")
    candidate = _of_selected("candidate")
    edited = _of_selected("edited", False)
    question = _of_run("question", "")
    heatmap = _of_run("heatmap")
    question_map = _of_run("question_map")
    word_maps = _of_run("word_maps", ())
    points_note = _of_run("points_note")
    fused_map = _of_run("fused_map")
    captions = _of_run("captions", ())
    answer = _of_run("answer")
    previous_answer = _of_run("previous_answer")
    answer_stale = _of_run("answer_stale", False)

    @property
    def selected_object(self) -> ObjectState | None:
        return self.objects.get(self.selected) if self.selected is not None else None

    @property
    def current_run(self) -> RunState | None:
        return self.runs.get(self.run_key) if self.run_key is not None else None

    @property
    def record(self) -> ObjectRecord | None:
        """The selected object's record."""
        obj = self.selected_object
        return None if obj is None else obj.record

    @property
    def category(self) -> str | None:
        obj = self.selected_object
        return None if obj is None else obj.record.category

    @property
    def accepted(self) -> bool:
        obj = self.selected_object
        return obj is not None and obj.record.accepted

    @property
    def auto_points(self) -> tuple:
        run = self.current_run
        return () if run is None else tuple(run.record.auto_points)

    @property
    def alpha(self) -> float:
        run = self.current_run
        return self.store.default_alpha if run is None else run.alpha

    @property
    def image_size(self) -> tuple[int, int] | None:
        return None if self.image is None else self.image.size

    @property
    def name(self) -> str:
        return self.path.name

    def __init__(self, store: "AnnotationStore", path: Path, image_id: int,
                 listener: AnnotationListener | None = None) -> None:
        self.store = store
        self.listener = listener  # told of every change (notify, notify_object)
        self.image_id = int(image_id)
        self.path = Path(path)
        self.key = str(self.path)
        self.image: LoadedImage | None = None
        self.error: str | None = None
        self.missing = False  # the file is not at ``path`` (moved or deleted); see Workspace.relocate
        self.loading = False
        self.objects: dict[str, ObjectState] = {}
        self.runs: dict[str, RunState] = {}
        self.selected: str | None = None
        self.run_key: str | None = None  # the run shown
        self.asks = AskFlow(self)
        self._restore_from_project()

    def notify(self, aspect: str) -> None:
        """Called after every change of the selection or the run shown (passed to the listener)."""
        if self.listener is not None:
            self.listener.notify(aspect)

    def notify_object(self, uid: str, what: str) -> None:
        """Called after a change of one object (``what``: added, removed, mask, category, accepted,
        order, hidden, proposal), whether selected or not (the app redraws that object)."""
        if self.listener is not None:
            self.listener.notify_object(uid, what)

    # ------------------------------------------------------------------ the collection
    def ordered(self) -> list[ObjectState]:
        """Every object in drawing order (bottom first)."""
        return sorted(self.objects.values(), key=lambda o: o.record.order)

    def object_state(self, uid: str | None) -> ObjectState:
        state = self.objects.get(uid) if uid is not None else None
        if state is None:
            from ..errors import InputError

            raise InputError("Select an object first (click it in the objects panel, or press a new object's key).")
        return state

    def mask_shape_of(self, uid: str) -> tuple[int, int] | None:
        """(H, W) of an object's masks: the image's, else its mask's or its layers'."""
        if self.image is not None:
            return tuple(self.image.rgb.shape[:2])  # type: ignore[return-value]
        return self.object_state(uid).mask_shape

    def is_accepted(self, uid: str | None) -> bool:
        state = self.objects.get(uid) if uid is not None else None
        return state is not None and state.record.accepted

    @property
    def done(self) -> bool:
        """Every object accepted (and there is at least one): the image is done."""
        return bool(self.objects) and all(o.record.accepted for o in self.objects.values())

    def select(self, uid: str | None) -> None:
        """Make ``uid`` the object the tools edit (None: none; the next click starts a new object).
        The run shown follows the selected object's question."""
        if uid is not None and uid not in self.objects:
            return
        if uid == self.selected:
            return
        before = self.objects.get(self.selected) if self.selected is not None else None
        if before is not None:
            before.release()  # its decoded arrays go; the record keeps its mask
        self.selected = uid
        obj = self.objects.get(uid) if uid is not None else None
        if obj is not None and obj.record.question is not None:
            key = self._run_key_of(obj.record)
            if key in self.runs and key != self.run_key:
                self.show_run(key)
        for aspect in ("selection", "prompts", "segmentation", "category", "accepted"):
            self.notify(aspect)

    def show_run(self, key: str | None) -> None:
        """Show the run of this question key (its heat map, answer, fused map)."""
        self.run_key = key if key in self.runs else None
        run = self.current_run
        if run is not None and run.fused_map is None:
            self.update_fusion(run)
        for aspect in ("question", "heatmap", "fusion", "alpha", "captions", "answer"):
            self.notify(aspect)

    @staticmethod
    def _run_key_of(record: ObjectRecord) -> str | None:
        from ..vqa.question import normalise_question

        return None if record.question is None else normalise_question(record.question)

    def run_objects(self, run: RunState) -> list[ObjectState]:
        return [o for o in self.objects.values() if self._run_key_of(o.record) == run.key]

    # ------------------------------------------------------------------ image
    def set_image(self, image: LoadedImage) -> None:
        self.image, self.error, self.loading = image, None, False
        record = self.store.image_record(self)
        if (record.status, record.width, record.height) != ("ok", *image.size):
            record.mark_ok(*image.size)
            self.store.write(lambda p: p.update_image(record))
        shape = image.rgb.shape[:2]
        for obj in self.objects.values():
            if obj.corrections.shape not in (None, shape):
                obj.corrections.clear()
        self.notify("image")

    def release_memory(self) -> None:
        """Drop the pixels and decoded masks (a long folder must not fill the memory). What the
        user made stays: objects, runs, the undo history. The image is read again when shown."""
        if self.image is None:
            return
        self.image = None
        for obj in self.objects.values():
            obj.release()

    def set_missing(self, missing: bool) -> bool:
        """Mark the file as not found (or found again); True when that changed. Not saved: a
        missing file is a fact about this machine, not about the image."""
        missing = bool(missing)
        if missing == self.missing:
            return False
        self.missing = missing
        self.notify("status")
        return True

    def move_to(self, path: Path) -> None:
        """The file was found at ``path`` (after a relocation): the session follows it."""
        self.path = Path(path)
        self.key = str(self.path)
        self.missing = not self.path.is_file()
        if not self.missing and self.image is None:
            self.error = None  # an earlier "cannot read" may have been the missing file
        self.notify("status")

    def set_failed(self, message: str) -> None:
        self.error, self.loading = message, False
        record = self.store.image_record(self)
        record.mark_failed(message)
        self.store.write(lambda p: p.update_image(record))
        self.notify("status")

    @property
    def status(self) -> str:
        """For the image list: missing, failed, accepted (every object), edited, answered, asked, new."""
        if self.missing:
            return "missing"
        if self.error:
            return "failed"
        if self.done:
            return "accepted"
        if any(o.record.mask_source == "user" or o.record.source == "manual" for o in self.objects.values()):
            return "edited"
        if any(r.answer is not None for r in self.runs.values()):
            return "answered"
        if self.runs or self.objects:
            return "asked"
        return "new"

    # ------------------------------------------------------------------ writing
    def save_object(self, obj: ObjectState, action: str, source: str = "user") -> None:
        """Write one object's record to the project: one transaction, one edit-log entry."""
        record, image = copy.copy(obj.record), self.store.image_record(self)
        record.points, record.reasons = list(record.points), list(record.reasons)
        self.store.write(lambda p: p.put_object(image, record, source=source, action=action))

    def save_changes(self, *, objects: list[ObjectState] = (), removed: list[str] = (),  # type: ignore[assignment]
                     runs: list[RunState] = (), action: str, source: str = "user") -> None:  # type: ignore[assignment]
        """Changes in one transaction (an edit; an ask's proposals, accept all, a merge). The review
        needs the store computes come back to the objects (:meth:`take_reviews`), from whichever
        thread writes (the app's store thread)."""
        records = [copy.copy(o.record) for o in objects]
        for record in records:
            record.points = list(record.points)
        run_records = [copy.copy(r.record) for r in runs]
        image, gone = self.store.image_record(self), list(removed)
        self.store.write(lambda p: self.take_reviews(p.put_changes(image, objects=records, removed=gone,
                                                                   runs=run_records, source=source, action=action)))

    def take_reviews(self, reviews: dict[str, tuple[float, list[str]]]) -> None:
        """The review needs a write computed, into the live objects (each a whole-value assignment,
        so a reader on another thread sees the old or the new value); announced per object."""
        for uid, (need, reasons) in reviews.items():
            obj = self.objects.get(uid)
            if obj is not None and (obj.record.review, obj.record.reasons) != (need, reasons):
                obj.record.review, obj.record.reasons = need, list(reasons)
                self.notify_object(uid, "review")

    def save_run(self, run: RunState, action: str, source: str = "chain") -> None:
        record, image = copy.copy(run.record), self.store.image_record(self)
        self.store.write(lambda p: p.put_run(image, record, source=source, action=action))

    # ------------------------------------------------------------------ edit targets (uid first)
    def apply_prompts(self, image: "ImageAnnotation", uid: str, prompts: PromptState, chosen: int) -> None:
        image.set_prompts(prompts, chosen, uid=uid)

    def apply_choice(self, image: "ImageAnnotation", uid: str, index: int) -> None:
        image.set_chosen(index, uid=uid)

    def apply_alpha(self, image: "ImageAnnotation", run_key: str, alpha: float) -> None:
        image.set_alpha(alpha, run_key=run_key)

    def apply_category(self, image: "ImageAnnotation", uid: str, category: str | None) -> None:
        image.set_category(category, uid=uid)

    def apply_accepted(self, image: "ImageAnnotation", uid: str, accepted: bool) -> None:
        image.set_accepted(accepted, uid=uid)

    def apply_corrections(self, image: "ImageAnnotation", uid: str, change, undo: bool, action: str,
                          staged=None) -> None:
        """``staged``: the layers ``change`` makes, worked out already (PaintStroke.stage)."""
        obj = image._target(uid)
        add, erase = change.before if undo else change.after
        if staged is None or not obj.corrections.install(staged):
            obj.corrections.put(change.shape, change.y0, change.x0, add, erase)
        image._mask_changed(obj, ("undo " if undo else "") + action)
        if uid == image.selected:
            image.notify("mask")

    def _target(self, uid: str | None) -> ObjectState:
        """The object an edit (or its undo) is about, selected so the user sees the change."""
        obj = self.object_state(uid if uid is not None else self.selected)
        if obj.uid != self.selected:
            self.select(obj.uid)
        return obj

    # ------------------------------------------------------------------ object changes
    def set_prompts(self, prompts: PromptState, chosen: int = 0, uid: str | None = None) -> None:
        """New prompts for an object (an edit, undo or redo). The caller arranges for segmentation."""
        obj = self._target(uid)
        obj.prompts, obj.chosen = prompts, chosen
        obj.generation += 1
        obj.record.points, obj.record.box = list(prompts.points), prompts.box
        obj.record.touch()
        self.notify("prompts")
        cached = obj.cached_segmentation(prompts)
        if prompts.empty:
            self._apply_segmentation(obj, None)
        elif cached is not None:
            self._apply_segmentation(obj, cached)
        else:
            self.save_object(obj, "points")

    def preview_prompts(self, prompts: PromptState) -> None:
        """A drag in progress on the selected object: shown and segmented, not an undo step, not saved."""
        obj = self.selected_object
        if obj is None:
            return
        obj.prompts = prompts
        obj.generation += 1
        self.notify("prompts")
        cached = obj.cached_segmentation(prompts)
        if cached is not None:
            self._apply_segmentation(obj, cached, save=False)

    def accept_segmentation(self, prompts: PromptState, generation: int, result: SegmentationResult,
                            uid: str | None = None) -> bool:
        """A decoder reply for an object (the selected one by default); applied only if it is for
        its current prompts (latest wins)."""
        obj = self.objects.get(uid if uid is not None else self.selected or "")
        if obj is None:
            return False
        obj.cache_segmentation(prompts, result)
        if generation != obj.generation or prompts.key() != obj.prompts.key():
            return False
        self._apply_segmentation(obj, result)
        return True

    def needs_segmentation(self, uid: str | None = None) -> bool:
        obj = self.objects.get(uid if uid is not None else self.selected or "")
        return obj is not None and obj.needs_segmentation()

    def _apply_segmentation(self, obj: ObjectState, result: SegmentationResult | None, save: bool = True) -> None:
        obj.segmentation = result
        if result is not None:
            obj.chosen = min(obj.chosen, len(result.candidates) - 1)
        if save:
            self._mask_changed(obj, "mask")
        if obj.uid == self.selected:
            self.notify("segmentation")

    def _mask_changed(self, obj: ObjectState, action: str) -> None:
        obj.write_mask()
        self.save_object(obj, action, source="user" if obj.edited or obj.record.source == "manual" else "chain")
        self.notify_object(obj.uid, "mask")
        run = self.runs.get(self._run_key_of(obj.record) or "")
        if run is not None:
            self.update_fusion(run)

    def set_chosen(self, index: int, uid: str | None = None) -> None:
        obj = self._target(uid)
        obj.chosen = int(index)
        self._mask_changed(obj, "choose")
        self.notify("choice")

    def set_category(self, category: str | None, uid: str | None = None) -> None:
        """An object's class (a name; it joins the project's class list if new; None: unlabelled)."""
        obj = self._target(uid)
        obj.record.category = category or None
        obj.record.proposal = False  # a labelled proposal is kept
        obj.record.touch()
        if category:
            remember = getattr(self.store, "remember_category", None)
            if callable(remember):
                remember(category)
        self.save_object(obj, "category")
        self.notify_object(obj.uid, "category")
        self.notify("category")

    def set_accepted(self, accepted: bool, uid: str | None = None) -> None:
        obj = self._target(uid)
        obj.record.accepted = bool(accepted)
        if accepted:
            obj.record.proposal = False
        obj.record.touch()
        self.save_object(obj, "accept" if accepted else "unaccept")
        self.notify_object(obj.uid, "accepted")
        self.notify("accepted")

    def set_proposal(self, proposal: bool, uid: str | None = None) -> None:
        """Keep a proposal (False) or make it one again (undo of keep)."""
        obj = self._target(uid)
        obj.record.proposal = bool(proposal)
        obj.record.touch()
        self.save_object(obj, "keep" if not proposal else "unkeep")
        self.notify_object(obj.uid, "proposal")

    def add_objects(self, states: list[ObjectState], select: str | None = None) -> None:
        """Put objects on the image (a new object, a delete undone), written in one transaction."""
        for state in states:
            self.objects[state.uid] = state
        self.save_changes(objects=states, action="add")
        for state in states:
            self.notify_object(state.uid, "added")
        self.notify("objects")
        if select is not None:
            self.select(select)
        self._refuse_runs_of(states)

    def remove_objects(self, uids: list[str]) -> list[ObjectState]:
        """Take objects off the image (written in one transaction); returns them, for undo."""
        gone = [self.objects.pop(uid) for uid in uids if uid in self.objects]
        if self.selected not in self.objects:
            self.selected = None
            self.notify("selection")
        self.save_changes(removed=[o.uid for o in gone], action="remove")
        for obj in gone:
            self.notify_object(obj.uid, "removed")
        self.notify("objects")
        self._refuse_runs_of(gone)
        return gone

    def _refuse_runs_of(self, states: list[ObjectState]) -> None:
        for key in {self._run_key_of(o.record) for o in states} - {None}:
            run = self.runs.get(key)
            if run is not None:
                run.record.object_uids = [o.uid for o in self.run_objects(run)]
                self.update_fusion(run)

    def set_order(self, uid: str, order: int) -> None:
        """An object's place in the drawing order (higher is drawn on top)."""
        obj = self.objects.get(uid)
        if obj is None or obj.record.order == int(order):
            return
        obj.record.order = int(order)
        obj.record.touch()
        self.save_object(obj, "reorder")
        self.notify_object(uid, "order")
        self.notify("objects")

    def set_hidden(self, uid: str, hidden: bool) -> None:
        """The panel's eye: a view setting, not saved, not undone."""
        obj = self.objects.get(uid)
        if obj is not None and obj.hidden != bool(hidden):
            obj.hidden = bool(hidden)
            self.notify_object(uid, "hidden")

    def set_alpha(self, alpha: float, run_key: str | None = None) -> None:
        run = self.runs.get(run_key if run_key is not None else self.run_key or "")
        if run is None:
            return
        run.record.alpha = float(np.clip(alpha, 0.0, 1.0))
        run.record.touch()
        self.save_run(run, "alpha", source="user")
        if run.key == self.run_key:
            self.notify("alpha")
        self.update_fusion(run)

    def update_fusion(self, run: RunState | None = None) -> None:
        """Fuse a run's heat map (the shown one by default) with its objects' masks at its alpha:
        from each object's coverage of the grid, never a whole-image pass per object."""
        run = run if run is not None else self.current_run
        if run is not None and self._fuse(run) and run.key == self.run_key:
            self.notify("fusion")

    def _fuse(self, run: RunState) -> bool:
        """Fuse ``run``'s map with its objects' coverage (no notice); False without a heat map."""
        if run.question_map is None:
            return False
        members = [o for o in self.run_objects(run) if o.record.has_mask or o.segmentation is not None]
        coverage = np.zeros(run.question_map.shape, np.float32)
        for obj in members:
            coverage = np.maximum(coverage, obj.coverage(run.question_map.shape))
        run.fuse(None, coverage if members else None)
        return True

    # ------------------------------------------------------------------ from the project
    def reload_from_project(self, record: ImageRecord | None = None) -> None:
        """Another process wrote this image (the later write wins): show what the project holds
        (``record``, the image's record with its objects and runs, when the caller read it
        already; else it is read now). Every object and run is rebuilt from its record, so
        nothing live (a stale answer flag, a selection of an object that is gone) outlives it."""
        self.error = None if self.image is not None else self.error
        selected = self.selected
        self.objects, self.runs, self.selected, self.run_key = {}, {}, None, None
        self.asks.forget()
        self._restore_from_project(record)
        if selected in self.objects:
            self.selected = selected
        for aspect in self.ASPECTS[1:]:
            self.notify(aspect)

    def _restore_from_project(self, record: ImageRecord | None = None) -> None:
        img = record if record is not None else self.store.image_record(self, refresh=True)
        if img is None:
            return
        if img.status == "failed" and img.error:
            self.error = img.error
        self.objects = {o.uid: ObjectState(o) for o in img.objects}
        self.runs = {r.key: RunState(r) for r in img.runs}
        if self.runs:
            latest = max(self.runs.values(), key=lambda r: r.record.updated)
            self.run_key = latest.key
            self._fuse(latest)  # (no notice: this runs while the session is being made)
