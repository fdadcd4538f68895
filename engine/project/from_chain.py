"""What the chain made of a question, as the project keeps it: a run and its proposed objects."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..imaging import masks as M
from .objects import ObjectRecord, ObjectSource
from .runs import QuestionRun

__all__ = ["proposals_from_chain", "run_from_chain"]


def run_from_chain(chain: Any) -> QuestionRun:
    """The run of an :class:`engine.results.ChainResult` (its evidence; no objects yet)."""
    now = time.time()
    return QuestionRun(
        question=chain.question,
        answer=chain.answer.answer if chain.answer is not None else None,
        captions=list(chain.captions.captions) if chain.captions is not None else [],
        itm_probability=float(chain.heatmap.itm_probability),
        heatmap=np.asarray(chain.heatmap.question_map, dtype=np.float32),
        auto_points=[p for p in chain.points if p.source == "auto"],
        points_asked=getattr(chain, "points_asked", None),
        alpha=float(chain.fusion.alpha) if chain.fusion is not None else 0.5,
        instances=getattr(chain, "instances", "one"),
        models=dict(chain.models), random_weights=bool(chain.random_weights),
        timings=dict(chain.timings), notes=[str(n) for n in getattr(chain, "notes", ()) or ()],
        created=now, updated=now)


def proposals_from_chain(chain: Any, *, category: str | None = None,
                         source: ObjectSource = "batch") -> tuple[QuestionRun, list[ObjectRecord]]:
    """The run and one proposed object per proposal of the chain (its best candidate's mask, the
    points it was decoded from), in the chain's order (best first). ``category``: the class the
    objects get (None: unlabelled)."""
    run = run_from_chain(chain)
    objects = []
    for seg in getattr(chain, "proposals", None) or ((chain.segmentation,) if chain.segmentation else ()):
        if not seg.candidates:
            continue
        best = seg.candidates[0]
        rle = best.rle if best.rle is not None else M.encode_rle(best.mask)
        objects.append(ObjectRecord(category=category, mask_rle=rle, auto_mask_rle=dict(rle),
                                    mask_score=float(best.iou), mask_source="auto", points=list(seg.points),
                                    auto_points=list(seg.points), box=seg.box, source=source,
                                    question=chain.question, proposal=True, created=run.created,
                                    updated=run.created))
    run.object_uids = [o.uid for o in objects]
    return run, objects
