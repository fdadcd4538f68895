"""Shared helpers for the engine's annotation tests (no Qt).

- :class:`Decoding`: an :class:`ImageAnnotation` whose prompt edits are decoded at once by the fake
  decoder (:func:`fakes.fake_segmentation`), as the app's engine thread would decode them;
- :func:`ask`: a question asked stage by stage, as the app's engine thread reports the chain's
  results (heat map, automatic points, proposals, captions, answer);
- :func:`add_object`: a new manual object from prompts, one undo step each;
- :func:`reopened`: the image as another process (the next start of the app) reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from engine.annotation import AddObject, ImageAnnotation, ProjectStore, PromptState, SetPrompts, new_object
from engine.annotation.chain import AutoPoints
from engine.annotation.run_state import RunState
from engine.project import ImageRecord, ObjectRecord, Project, QuestionRun
from engine.prompts import Point
from engine.results import AnswerResult, CaptionsResult, HeatmapResult, ProposalsResult, SegmentationResult
from engine.vqa.question import normalise_question
from support.fakes import fake_segmentation

H, W = 30, 40


def image_shape(image: ImageAnnotation) -> tuple[int, int]:
    return tuple(image.image.rgb.shape[:2]) if image.image is not None else (H, W)  # type: ignore[return-value]


class Decoding(ImageAnnotation):
    """An annotation whose prompt edits are decoded at once by the fake decoder (as the app's worker would)."""

    def apply_prompts(self, image, uid, prompts, chosen):
        image.set_prompts(prompts, chosen, uid=uid)
        if image.needs_segmentation(uid):
            obj = image.objects[uid]
            image.accept_segmentation(prompts, obj.generation, fake_segmentation(prompts, *image_shape(image)),
                                      uid=uid)


def heat_result(question: str, heat: np.ndarray, itm: float = 0.7) -> HeatmapResult:
    heat = np.asarray(heat, np.float32)
    return HeatmapResult(question=question, question_map=heat, token_maps=heat[None], tokens=("it",),
                         itm_probability=itm)


def spot_heat(cell: int = 1, size: int = 6) -> np.ndarray:
    heat = np.zeros((size, size), np.float32)
    heat[cell:cell + 2, cell:cell + 2] = 1.0
    return heat


def ask(image: ImageAnnotation, question: str, *, heat: np.ndarray | None = None,
        points: Sequence[Point] | None = None, asked: int | None = None,
        segmentations: Sequence[SegmentationResult] | None = None, captions: Sequence[str] = ("a caption",),
        answer: str | None = None, ask_id: object = None, instances: str = "one",
        prepare: bool = False) -> RunState:
    """Ask ``question`` as the app runs it: each stage's result in turn. ``points``: the automatic
    points (default one at (10, 10)); ``segmentations``: the proposals (default one, the fake
    decoder's mask of the points; ``()``: none); ``answer`` None stops before the answer (an ask
    still in flight, to be finished or abandoned by the caller)."""
    heat = spot_heat() if heat is None else heat
    points = (Point(10.0, 10.0, score=0.9, source="auto"),) if points is None else tuple(points)
    image.asks.start(question, instances, ask_id)
    image.asks.take(heat_result(question, heat), ask_id)
    image.asks.take(AutoPoints(points, asked), ask_id)
    if segmentations is None:
        segmentations = (fake_segmentation(PromptState(points), *image_shape(image)),) if points else ()
    if prepare:
        from engine.annotation import prepare_candidates

        segmentations = [prepare_candidates(s, heat.shape) for s in segmentations]
    image.asks.take(ProposalsResult(tuple(segmentations), instances, max(1, len(segmentations))), ask_id)
    image.asks.take(CaptionsResult(captions=tuple(captions), rounds=1, complete=True), ask_id)
    if answer is not None:
        image.asks.take(AnswerResult(answer), ask_id)
        image.asks.finish(ask_id)
    return image.runs[normalise_question(question)]


def add_object(image: ImageAnnotation, history, points: Sequence[Point] = (), category: str | None = None) -> str:
    """A new manual object (one undo step), then its prompts (another); returns its uid."""
    state = new_object(image, category)
    history.push(AddObject(image, state))
    if points:
        history.push(SetPrompts(image, state.uid, state.prompts, PromptState(tuple(points)), "Add point",
                                state.chosen))
    return state.uid


def open_annotation(project: Project, path: Path, cls: type = ImageAnnotation, rgb_shape: tuple[int, int] | None = (H, W),
                    store: ProjectStore | None = None) -> ImageAnnotation:
    """The image of ``path`` (added to the project if new) as the app opens it, pixels set."""
    from engine.imaging.images import image_from_array

    record = project.find_image(path, records=False) or project.add_image(path)
    ann = cls(store or ProjectStore(project), path, record.id)
    if rgb_shape is not None:
        ann.set_image(image_from_array(np.zeros((*rgb_shape, 3), np.uint8)))
    return ann


def reopened(project: Project, path: Path, cls: type = ImageAnnotation) -> ImageAnnotation:
    """The image as the next start of the app opens it (another connection; the records read then)."""
    with Project.open(project.path) as other:
        return cls(ProjectStore(other), path, other.find_image(path, records=False).id)


def stored(project: Project, path: Path) -> tuple[list[ObjectRecord], list[QuestionRun]]:
    """The image's objects and runs as another process reads them from the file."""
    with Project.open(project.path) as other:
        img = other.find_image(path)
        return img.objects, img.runs


def stored_object(project: Project, path: Path, uid: str) -> ObjectRecord | None:
    return next((o for o in stored(project, path)[0] if o.uid == uid), None)


def stored_run(project: Project, path: Path, question: str) -> QuestionRun | None:
    key = normalise_question(question)
    return next((r for r in stored(project, path)[1] if r.key == key), None)


def put_answered(project: Project, img: ImageRecord, question: str, mask: np.ndarray | None, *,
                 label: str | None = None, answer: str | None = None, accepted: bool = False,
                 run: dict | None = None, obj: dict | None = None, edited: np.ndarray | None = None,
                 source: str = "chain") -> ObjectRecord:
    """The run of ``question`` (with ``run`` fields) and its object of class ``label`` whose mask
    is ``mask`` (the automatic mask; ``edited``: a person's final mask over it), put straight into
    ``project`` (the export and import tests)."""
    project.put_run(img, QuestionRun(question=question, answer=answer, **(run or {})))
    o = ObjectRecord(category=label, question=question, accepted=accepted, source="question", **(obj or {}))
    if mask is not None:
        o.set_mask(mask, source="auto", score=0.9)
        o.auto_mask_rle = dict(o.mask_rle)
    if edited is not None:
        o.set_mask(edited, source="user")
    return project.put_object(img, o, source=source)


def brush_reference(points, radius, shape: tuple[int, int]) -> np.ndarray:
    """Brute force: pixels whose centre is within ``radius`` of the polyline (the definition)."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    cx, cy = cols + 0.5, rows + 0.5
    best = np.full(shape, np.inf)
    pts = np.asarray(points, float)
    segs = [(pts[0], pts[0])] if len(pts) == 1 else list(zip(pts[:-1], pts[1:]))
    for a, b in segs:
        d = b - a
        t = 0.0 if not d.any() else np.clip(((cx - a[0]) * d[0] + (cy - a[1]) * d[1]) / (d @ d), 0, 1)
        best = np.minimum(best, np.hypot(cx - a[0] - t * d[0], cy - a[1] - t * d[1]))
    return best <= radius
