"""The chain proposes objects (issue 23): with ``instances="several"`` (or "auto" for a plural or
count question) one proposal per separate hot region of the heat map, else one from all the
points; the proposals become objects in the project (batch) and in an image (the app's ask).
A stand-in pipeline (tests/support/fakes.py): its heat map has three separate hot blobs, its decoder
gives a disk around the positive points (what EfficientSAM does on a round object)."""

from __future__ import annotations

import numpy as np

from support.annotation import open_annotation
from engine.annotation.candidates import prepare_candidates
from engine.annotation.chain import ChainRequest, instances_for, run_chain
from engine.annotation.settings import PipelineSettings
from engine.imaging.fusion import fuse
from engine.imaging.regions import hot_regions
from engine.project import Project, proposals_from_chain
from engine.prompts import POSITIVE
from engine.results import (AnswerResult, CaptionsResult, HeatmapResult, MaskCandidate, ProposalsResult,
                            SegmentationResult)
from support.fakes import PipelineStandIn

SIZE = (160, 120)  # W, H of the image (W != H)
BLOBS = [(4, 4, 1.0), (4, 18, 0.8), (18, 11, 0.6)]  # (row, col, peak) on the 24 x 24 grid


def _heat() -> np.ndarray:
    rr, cc = np.mgrid[0:24, 0:24]
    heat = np.zeros((24, 24), np.float32)
    for r, c, a in BLOBS:
        heat += a * np.exp(-((rr - r) ** 2 + (cc - c) ** 2) / (2 * 1.5 ** 2))
    return heat


def _blob_pixel(r: int, c: int) -> tuple[int, int]:
    """The image pixel (y, x) at the centre of grid cell (r, c)."""
    return int((r + 0.5) * SIZE[1] / 24), int((c + 0.5) * SIZE[0] / 24)


class DiskPipeline(PipelineStandIn):
    """A stand-in pipeline over a synthetic three-blob heat map; segment() is a disk of 18 pixels
    around the positive points' mean."""

    image_id = "three-blobs"
    image_size = SIZE

    def __init__(self) -> None:
        super().__init__(PipelineSettings(device="cpu", segment=True, num_points=5, num_captions=2, alpha=0.5))
        self.decoded: list[tuple] = []

    def heatmap(self, question: str) -> HeatmapResult:
        heat = _heat()
        return HeatmapResult(question=question, question_map=heat, token_maps=heat[None], tokens=("dogs",),
                             itm_probability=0.9)

    def segment(self, points=(), box=None, multimask=True) -> SegmentationResult:
        self.decoded.append(tuple(points))
        pos = [p for p in points if p.label == POSITIVE]
        cx, cy = np.mean([p.x for p in pos]), np.mean([p.y for p in pos])
        yy, xx = np.mgrid[0:SIZE[1], 0:SIZE[0]]
        mask = (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= 18 ** 2
        return SegmentationResult(candidates=(MaskCandidate(mask, np.zeros((4, 4), np.float32), 0.9),),
                                  points=tuple(points))

    def captions(self, sampling_map, progress=None, cancel=None, num_captions=None, seed="settings") -> CaptionsResult:
        return CaptionsResult(captions=("three dogs", "dogs on grass"), rounds=1, complete=True)

    def answer(self, question, captions, cancel=None) -> AnswerResult:
        return AnswerResult("3")


def test_three_hot_blobs_give_three_objects():
    pipe, seen = DiskPipeline(), []
    chain = run_chain(pipe, ChainRequest("where are the dogs?", instances="several"), on_result=seen.append)
    proposals = next(r for r in seen if isinstance(r, ProposalsResult))
    assert len(hot_regions(chain.heatmap.question_map)) == 3 and proposals.regions == 3
    assert proposals.instances == "several" and len(chain.proposals) == 3 and chain.instances == "several"
    masks = [p.best.mask for p in chain.proposals]
    for (r, c, _), mask in zip(BLOBS, masks):  # each over its own blob, in heat order, none over another's
        y, x = _blob_pixel(r, c)
        assert mask[y, x] and sum(m[y, x] for m in masks) == 1
    assert chain.segmentation is chain.proposals[0]
    run, objects = proposals_from_chain(chain, category="dog")
    assert len(objects) == 3 and run.object_uids == [o.uid for o in objects] and run.instances == "several"
    assert all(o.proposal and o.category == "dog" and o.question == "where are the dogs?" for o in objects)
    # the fused map holds all three
    union = np.logical_or.reduce(masks)
    assert np.allclose(chain.fusion.fused_map, fuse(chain.heatmap.question_map, union, 0.5), atol=1e-6)


def test_one_instance_is_one_object_from_all_the_points_and_auto_follows_the_question():
    pipe = DiskPipeline()
    chain = run_chain(pipe, ChainRequest("what is this?", instances="one"))
    assert len(chain.proposals) == 1 and chain.instances == "one" and len(pipe.decoded) == 1
    assert pipe.decoded[0] == chain.points  # every automatic point in one prompt
    assert instances_for(ChainRequest("where are the dogs?")) == "several"
    assert instances_for(ChainRequest("how many dogs are there?")) == "several"
    assert instances_for(ChainRequest("where is the dog?")) == "one"
    auto = run_chain(DiskPipeline(), ChainRequest("how many dogs are there?"))
    assert auto.instances == "several" and len(auto.proposals) == 3


def test_three_blobs_become_three_objects_in_the_project_and_in_the_image(tmp_path):
    chain = run_chain(DiskPipeline(), ChainRequest("where are the dogs?", instances="several"))
    with Project.create(tmp_path / "p.qmask") as project:
        run, objects = project.record_chain(tmp_path / "a.png", chain)
        img = project.find_image(tmp_path / "a.png")
        assert len(img.objects) == 3 and img.runs[0].object_uids == [o.uid for o in objects]
        for obj, seg in zip(img.objects, chain.proposals):
            np.testing.assert_array_equal(obj.mask(), seg.best.mask)
        # the app's ask: the results as they come, each proposal an object of the image
        ann = open_annotation(project, tmp_path / "b.png", rgb_shape=(SIZE[1], SIZE[0]))
        ann.asks.start("where are the dogs?", "several", 1)
        run_chain(DiskPipeline(), ChainRequest("where are the dogs?", instances="several"),
                  on_result=lambda r: ann.asks.take(r, 1), prepare_candidates=prepare_candidates)
        ann.asks.finish(1)
        assert len(ann.objects) == 3 and ann.runs["where are the dogs?"].record.instances == "several"
        assert ann.answer.answer == "3" and not any("count" in " ".join(o.record.reasons)
                                                       for o in ann.objects.values())
        stored = project.find_image(tmp_path / "b.png")
        assert len(stored.objects) == 3 and all(o.review < 0.5 for o in stored.objects)  # 3 kept, as the answer says


def test_a_count_answer_that_differs_from_the_objects_kept_is_a_review_reason(tmp_path):
    chain = run_chain(DiskPipeline(), ChainRequest("how many dogs are there?"))
    with Project.create(tmp_path / "p.qmask") as project:
        project.record_chain(tmp_path / "a.png", chain)
        img = project.find_image(tmp_path / "a.png")
        project.remove_objects(img, [img.objects[-1].uid])
        left = project.find_image(tmp_path / "a.png").objects
        assert len(left) == 2 and all(any("the answer says 3 but 2 objects are kept" in r for r in o.reasons)
                                      for o in left)
