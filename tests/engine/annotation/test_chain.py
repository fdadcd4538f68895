"""The one chain (engine.annotation.chain.run_chain) on tiny random models: results reported in
stage order as they are ready (the mask as the question's proposals), the same result as
Pipeline.run, cancel between stages, and the one failure policy for a mask that cannot be made."""

from __future__ import annotations

import numpy as np
import pytest

from engine.annotation.chain import AutoPoints, ChainRequest, raise_segmentation_error, run_chain
from engine.errors import CancelledError, CheckpointError
from engine.annotation.pipeline import Pipeline
from engine.annotation.settings import PipelineSettings
from engine.prompts import Point
from engine.results import AnswerResult, CaptionsResult, FusionResult, HeatmapResult, ProposalsResult


@pytest.fixture(scope="module")
def pipe(tiny_models_dir):
    settings = PipelineSettings(device="cpu", num_captions=6, max_caption_rounds=3)
    p = Pipeline.from_settings(settings, models_dir=tiny_models_dir)
    p.set_image(np.random.default_rng(3).integers(0, 256, (90, 120, 3), dtype=np.uint8), "img-3")
    return p


def test_results_come_in_stage_order_and_equal_pipeline_run(pipe):
    seen = []
    chain = run_chain(pipe, ChainRequest("what is the man holding?"), on_result=seen.append)
    kinds = [type(r) for r in seen]
    assert kinds == [HeatmapResult, AutoPoints, ProposalsResult, FusionResult, CaptionsResult, AnswerResult]
    assert seen[0] is chain.heatmap and seen[2].segmentations == chain.proposals and seen[-1] is chain.answer
    assert seen[2].instances == chain.instances == "one" and chain.proposals == (chain.segmentation,)
    assert seen[1].points == chain.points and chain.segmentation_error is None
    again = pipe.run("what is the man holding?")  # the pipeline's own entry point runs the same chain
    assert again.answer.answer == chain.answer.answer and again.captions.captions == chain.captions.captions
    assert np.array_equal(again.mask, chain.mask) and again.points == chain.points


def test_given_points_and_no_segment(pipe):
    seen = []
    chain = run_chain(pipe, ChainRequest("what is it?", points=(Point(30, 40),)), on_result=seen.append)
    assert AutoPoints not in [type(r) for r in seen] and chain.points == (Point(30, 40),)
    assert chain.segmentation.points[0].x == 30
    plain = run_chain(pipe, ChainRequest("what is it?", segment=False))
    assert plain.segmentation is None and plain.mask is None and plain.answer is not None


def test_cancel_between_stages_keeps_what_was_reported(pipe):
    seen = []
    with pytest.raises(CancelledError):
        run_chain(pipe, ChainRequest("what is it?"), on_result=seen.append,
                  cancel=lambda: any(isinstance(r, FusionResult) for r in seen))
    assert [type(r) for r in seen][:4] == [HeatmapResult, AutoPoints, ProposalsResult, FusionResult]
    assert not any(isinstance(r, AnswerResult) for r in seen)


def test_a_mask_that_cannot_be_made_is_reported_and_the_rest_runs(pipe, monkeypatch):
    def broken(points, box=None):
        raise CheckpointError("The EfficientSAM checkpoint efficient_sam_vitt.pt is truncated.")

    monkeypatch.setattr(pipe, "segment", broken)
    seen = []
    chain = run_chain(pipe, ChainRequest("what is it?"), on_result=seen.append)
    assert chain.segmentation is None and chain.answer is not None and chain.captions.captions
    assert chain.segmentation_error.startswith("A mask was asked for but cannot be made. The EfficientSAM checkpoint")
    assert chain.segmentation_fault == "CheckpointError"
    assert chain.segmentation_error.endswith("The heat map and the answer were made without it.")
    with pytest.raises(CheckpointError, match=r"efficient_sam_vitt\.pt is truncated\. .*--no-segment"):
        raise_segmentation_error(chain)  # how the command line fails the run
    assert ProposalsResult not in [type(r) for r in seen] and chain.proposals == ()
    # captions came from the plain heat map
    assert np.allclose(chain.fusion.fused_map, pipe.fuse(chain.heatmap.question_map, None).fused_map)


def test_prepared_candidates_feed_the_fusion_without_a_second_pass(pipe, monkeypatch):
    """The app's chain completes the candidates (coverage, RLE) once; the fusion reads the
    best one's coverage and is bit for bit the fusion of its mask."""
    from engine.annotation.candidates import prepare_candidates
    from engine.imaging import fusion

    plain = run_chain(pipe, ChainRequest("what is it?"))
    to_grid = []
    real = fusion.mask_to_grid
    monkeypatch.setattr(fusion, "mask_to_grid", lambda mask, grid: to_grid.append(mask) or real(mask, grid))
    seen = []
    app = run_chain(pipe, ChainRequest("what is it?"), on_result=seen.append, prepare_candidates=prepare_candidates)
    ((reported,),) = [r.segmentations for r in seen if isinstance(r, ProposalsResult)]
    assert reported is app.segmentation and all(c.coverage is not None and c.rle is not None
                                                for c in reported.candidates)
    assert len(to_grid) == len(reported.candidates)  # each candidate once, none again for the fusion
    assert np.array_equal(app.mask, plain.mask)
    assert app.fusion.fused_map.dtype == plain.fusion.fused_map.dtype == np.float32
    assert np.array_equal(app.fusion.fused_map, plain.fusion.fused_map)
    monkeypatch.setattr(fusion, "mask_to_grid", real)
    assert np.array_equal(app.fusion.fused_map, fusion.fuse(app.heatmap.question_map, app.mask, pipe.settings.alpha))


def test_the_number_of_points_asked_for_reaches_the_run(pipe):
    from engine.project import run_from_chain

    asked = run_chain(pipe, ChainRequest("what is it?", segment=False, num_points=7))
    assert asked.points_asked == 7 and run_from_chain(asked).points_asked == 7
    default = run_chain(pipe, ChainRequest("what is it?", segment=False))
    assert default.points_asked == pipe.settings.num_points == run_from_chain(default).points_asked
    given = run_chain(pipe, ChainRequest("what is it?", points=(Point(30, 40),), segment=False))
    assert given.points_asked is None and run_from_chain(given).points_asked is None
