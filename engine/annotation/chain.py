"""The chain, once: heat map, points, mask, fusion, captions and answer for one question.

``qmask ask``, ``qmask batch`` (local and on Ray) and the app's engine thread all call
:func:`run_chain`. It reports each typed result through ``on_result`` as soon as it is ready
(the app shows them one by one), checks ``cancel()`` between stages and, inside the long ones,
between model blocks, and returns the whole :class:`~engine.results.ChainResult`.

The failure policy, the same everywhere:

- A mask that was asked for and cannot be made (a missing, broken or mismatched EfficientSAM
  checkpoint, a bad prompt, out of memory) does not stop the chain: captions and the answer are
  made from the plain heat map, and the result carries ``segmentation_error`` (a whole sentence
  saying why). Every front end then treats the result as failed: ``ask`` and ``batch`` exit
  non-zero with that sentence (``--no-segment`` is the way to go without masks); the app shows it
  as an error banner and keeps the heat map and the answer.
- Anything else (no heat map, no captions, no answer, cancel) raises, and what was reported
  through ``on_result`` so far is the caller's to keep.

``pipe`` is a :class:`~engine.annotation.pipeline_protocol.PipelineProtocol` (the
:class:`engine.annotation.pipeline.Pipeline`, or a test's stand-in) with its image set.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import CancelledError, CheckpointError, ModelMissingError, PromptError, ResourceError
from ..prompts import Box, Point
from ..results import ChainResult, ProposalsResult, SegmentationResult
from .pipeline_protocol import CancelFn, PipelineProtocol, ProgressFn

__all__ = ["ChainRequest", "AutoPoints", "run_chain", "SEGMENTATION_FAULTS", "segmentation_message",
           "raise_segmentation_error"]

# What a mask stage can fail with that the rest of the chain does not depend on.
SEGMENTATION_FAULTS = (CheckpointError, ModelMissingError, ResourceError, PromptError)

ResultFn = Callable[[Any], None]
# (segmentation, heat-map grid shape) -> the same result with each candidate's coverage filled in.
PrepareFn = Callable[[SegmentationResult, tuple[int, int]], SegmentationResult]


@dataclass(frozen=True)
class ChainRequest:
    """One question about the pipeline's current image. ``points`` None: automatic points."""

    question: str
    points: tuple[Point, ...] | None = None
    box: Box | None = None
    alpha: float | None = None  # None: the pipeline's setting
    segment: bool | None = None  # None: the pipeline's setting
    num_points: int | None = None  # automatic points; None: the pipeline's setting
    # "one" object from all the points (the published chain), "several" (one per separate hot
    # region of the heat map), or "auto": several when the question asks for several things
    # ("where are the dogs?", "how many ..."), else one.
    instances: str = "auto"


@dataclass(frozen=True)
class AutoPoints:
    """The points the heat map gave (reported before the mask); ``asked``: how many positive
    points were asked for (a record can then say why fewer came; None: not known)."""

    points: tuple[Point, ...]
    asked: int | None = None


def segmentation_message(err: BaseException) -> str:
    """The sentence a user reads when a mask was asked for and could not be made."""
    reason = str(err).strip()
    if not reason.endswith((".", "!", "?")):
        reason += "."
    return f"A mask was asked for but cannot be made. {reason} The heat map and the answer were made without it."


def raise_segmentation_error(result: ChainResult) -> None:
    """For front ends that fail a run without its mask (the command line): raise the result's
    segmentation failure with the class of the fault (out of memory stays a ResourceError, so a
    batch records that image as failed and goes on; a broken checkpoint stops it)."""
    if result.segmentation_error is None:
        return
    kind = {cls.__name__: cls for cls in SEGMENTATION_FAULTS}.get(result.segmentation_fault or "", CheckpointError)
    raise kind(result.segmentation_error + " To answer from the heat map alone, turn segmentation off "
               "(qmask ask/batch --no-segment).")


def run_chain(pipe: PipelineProtocol, request: ChainRequest, *, on_result: ResultFn | None = None,
              progress: ProgressFn | None = None, cancel: CancelFn | None = None,
              prepare_candidates: PrepareFn | None = None) -> ChainResult:
    """Run every stage of ``request`` on ``pipe``'s current image; see the module docstring.

    ``prepare_candidates`` (the app: :func:`engine.annotation.candidates.prepare_candidates`)
    completes the mask candidates before they are reported; the fusion then reads the best
    candidate's ``coverage`` instead of bringing its mask to the grid a second time.
    """
    report = on_result or (lambda _r: None)
    settings = pipe.settings
    question = request.question
    do_segment = settings.segment if request.segment is None else bool(request.segment)
    notes: list[str] = []
    timings: dict[str, float] = {}
    start_all = time.perf_counter()

    def step(stage: str, fraction: float) -> None:
        if progress is not None:
            progress(stage, fraction)

    def check() -> None:
        if cancel is not None and cancel():
            raise CancelledError("Cancelled.")

    def prepare(*roles: str) -> None:
        # The image's encoders for the next stage, stoppable between blocks (a stage alone is not).
        notes.extend(pipe.prepare(roles=roles, cancel=cancel).notes)

    step("heatmap", 0.0)
    prepare("itm")
    check()
    heat = pipe.heatmap(question)
    timings["heatmap"] = heat.seconds
    report(heat)
    check()

    t = time.perf_counter()
    asked: int | None = None  # kept with the result: a record can say why fewer points came
    if request.points is None:
        asked = settings.num_points if request.num_points is None else int(request.num_points)
        points = tuple(pipe.auto_points(heat, num_points=asked))
        report(AutoPoints(points, asked))
    else:
        points = tuple(request.points)
    timings["points"] = time.perf_counter() - t

    seg: SegmentationResult | None = None
    proposals: tuple[SegmentationResult, ...] = ()
    seg_error: str | None = None
    seg_fault: str | None = None
    instances = instances_for(request)
    if do_segment:
        step("segment", 0.0)
        if not points and request.box is None:
            notes.append("Segmentation skipped: the heat map has no salient point (it is flat); captions "
                         "use the plain heat map.")
        else:
            try:
                prepare("efficient_sam")
                t = time.perf_counter()
                if instances == "several" and request.points is None and request.box is None:
                    found = several_proposals(pipe, heat.question_map, settings, asked, prepare_candidates)
                else:
                    found = (pipe.segment(points, box=request.box),), 1
                    if prepare_candidates is not None:
                        found = (prepare_candidates(found[0][0], heat.question_map.shape),), 1
                proposals, regions = found
            except SEGMENTATION_FAULTS as err:
                seg_error, seg_fault = segmentation_message(err), type(err).__name__
            else:
                timings["segment"] = time.perf_counter() - t
                seg = proposals[0] if proposals else None
                notes.extend(dict.fromkeys(p.note for p in proposals if p.note))
                report(ProposalsResult(proposals, instances, regions, timings["segment"]))
        step("segment", 1.0)
        check()

    fusion = _fuse_proposals(pipe, heat.question_map, proposals, request.alpha)
    timings["fuse"] = fusion.seconds
    report(fusion)
    check()

    step("captions", 0.0)
    prepare("caption")
    caps = pipe.captions(fusion.fused_map, progress=progress, cancel=cancel)
    timings["captions"] = caps.seconds
    report(caps)
    if caps.cancelled:
        raise CancelledError(f"Cancelled after {len(caps.captions)} caption(s).")
    if not caps.complete:
        notes.append(f"Only {len(caps.captions)} distinct captions of {settings.num_captions} after "
                     f"{caps.rounds} rounds.")
    check()

    step("answer", 0.0)
    answer = pipe.answer(question, caps.captions, cancel=cancel)
    timings["answer"] = answer.seconds
    report(answer)
    step("answer", 1.0)
    use = pipe.question_use(question)
    if use.truncated:
        notes.insert(0, use.note())
    timings["total"] = time.perf_counter() - start_all
    return ChainResult(image_id=str(pipe.image_id or ""), image_size=pipe.image_size, question=question,
                       heatmap=heat, points=points, segmentation=seg, chosen=0, fusion=fusion, captions=caps,
                       answer=answer, timings=timings, models=pipe.model_ids(),
                       random_weights=bool(pipe.random_weights), notes=tuple(notes),
                       segmentation_error=seg_error, segmentation_fault=seg_fault, points_asked=asked,
                       proposals=proposals, instances=instances)


def instances_for(request: ChainRequest) -> str:
    """"one" or "several": the request's choice, or for "auto" what the question asks for."""
    if request.instances in ("one", "several"):
        return request.instances
    from ..vqa.counting import plural_question

    return "several" if plural_question(request.question) else "one"


def several_proposals(pipe: PipelineProtocol, heat_map: Any, settings: Any, asked: int | None,
                      prepare_candidates: PrepareFn | None) -> tuple[tuple[SegmentationResult, ...], int]:
    """One segmentation per separate hot region of the heat map (:mod:`.proposals`: points per
    region, decoded per region, duplicates merged by mask overlap), in heat order; and how many
    regions the map had."""
    from ..imaging.regions import hot_regions
    from .proposals import POINTS_PER_REGION, propose_instances

    decoded: dict[tuple, SegmentationResult] = {}

    def decode(points: Any) -> tuple[Any, float]:
        seg = pipe.segment(tuple(points))
        if prepare_candidates is not None:
            seg = prepare_candidates(seg, heat_map.shape)
        decoded[_points_key(points)] = seg
        return seg.best.mask, float(seg.best.iou)

    regions = hot_regions(heat_map)
    per_region = max(1, min(asked or POINTS_PER_REGION, POINTS_PER_REGION))
    found = propose_instances(heat_map, pipe.image_size, decode, points_per_region=per_region, regions=regions)
    out = []
    for proposal in found:
        # The kept mask's own prompts come first in a merged proposal's points.
        seg = next((decoded[k] for n in range(len(proposal.points), 0, -1)
                    if (k := _points_key(proposal.points[:n])) in decoded), None)
        if seg is None:  # (not expected: every kept mask was decoded from a prefix of its points)
            decode(proposal.points[:6])
            seg = decoded[_points_key(proposal.points[:6])]
        out.append(seg)
    return tuple(out), len(regions)


def _points_key(points: Any) -> tuple:
    return tuple((round(p.x, 3), round(p.y, 3), p.label) for p in points)


def _fuse_proposals(pipe: PipelineProtocol, heat_map: Any, proposals: tuple[SegmentationResult, ...],
                    alpha: float | None) -> Any:
    """The heat map fused with the proposals' masks: their best candidates' union on the grid (the
    largest coverage per cell; one proposal: exactly its mask's coverage, as the published chain)."""
    import numpy as np

    best = [p.best for p in proposals if p.candidates]
    if not best:
        return pipe.fuse(heat_map, None, alpha)
    if len(best) == 1 or any(c.coverage is None for c in best):
        if len(best) == 1:
            return pipe.fuse(heat_map, best[0].mask, alpha, coverage=best[0].coverage)
        union = np.logical_or.reduce([c.mask for c in best])
        return pipe.fuse(heat_map, union, alpha)
    return pipe.fuse(heat_map, None, alpha, coverage=np.maximum.reduce([c.coverage for c in best]))
