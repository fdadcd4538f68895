"""The annotation core without Qt: one image's state, every edit with do and undo, the history,
and what reaches the project file."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from engine.imaging import fusion
from engine.annotation import (ChooseCandidate, History, ImageAnnotation, PromptState, SetAccepted, SetAlpha,
                               SetLabel, SetPrompts, prepare_candidates)
from engine.annotation import ProjectStore
from engine.imaging.images import image_from_array
from engine.project import Project
from engine.prompts import Point
from fakes import fake_segmentation
from engine.results import AnswerResult, HeatmapResult


class Decoding(ImageAnnotation):
    """An annotation whose prompt edits are decoded at once by a fake decoder (as the app's worker would)."""

    def apply_prompts(self, image, prompts, chosen):
        image.set_prompts(prompts, chosen)
        if image.needs_segmentation():
            image.accept_segmentation(prompts, image.generation, fake_segmentation(prompts))


@pytest.fixture
def annotated(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"")
    project = Project.create(tmp_path / "p.qmask")
    image_id = project.add_image(path).id
    seen: list[str] = []
    ann = Decoding(ProjectStore(project), path, image_id)
    ann.notify = seen.append  # type: ignore[method-assign]
    ann.set_image(image_from_array(np.zeros((30, 40, 3), np.uint8)))
    ann.start_question("what is it?")
    heat = np.zeros((6, 6), np.float32)
    heat[1:3, 1:3] = 1.0
    ann.set_heatmap(HeatmapResult(question="what is it?", question_map=heat, token_maps=heat[None],
                                  tokens=("it",), itm_probability=0.7))
    yield ann, project, seen
    project.close()


def _stored(project: Project, path):
    with Project.open(project.path) as other:  # as another process reads it
        return other.find_image(path).find_question("what is it?")


def test_edits_do_undo_redo_and_reach_the_project(annotated):
    ann, project, seen = annotated
    history = History()
    one = PromptState((Point(10, 10),))
    two = PromptState((Point(10, 10), Point(30, 20)))
    history.push(SetPrompts(ann, ann.prompts, one, "Add positive point"))
    history.push(SetPrompts(ann, one, two, "Add positive point", ann.chosen))
    history.push(ChooseCandidate(ann, ann.chosen, 2))
    history.push(SetAlpha(ann, 0.5, 0.4, gesture=1))
    history.push(SetAlpha(ann, 0.4, 0.3, gesture=1))  # same drag: merged into one edit
    history.push(SetLabel(ann, "", "cup"))
    history.push(SetAccepted(ann, True))
    assert len(history) == 6 and history.undo_text == "Accept mask"
    assert ann.prompts == two and ann.chosen == 2 and ann.alpha == pytest.approx(0.3) and ann.accepted
    rec = _stored(project, ann.path)
    assert rec.accepted and rec.label == "cup" and rec.alpha == pytest.approx(0.3)
    assert len(rec.points) == 2 and rec.mask_source == "user"
    assert np.array_equal(rec.mask(), fake_segmentation(two).candidates[2].mask)
    assert {"prompts", "segmentation", "choice", "alpha", "fusion", "label", "accepted"} <= set(seen)

    for _ in range(5):
        assert history.undo()
    assert ann.prompts == one and ann.chosen == 0 and ann.alpha == pytest.approx(0.5)
    assert ann.label == "" and not ann.accepted
    rec = _stored(project, ann.path)
    assert not rec.accepted and len(rec.points) == 1 and rec.alpha == pytest.approx(0.5)
    assert np.array_equal(rec.mask(), fake_segmentation(one).candidates[0].mask)
    assert history.redo() and ann.prompts == two and history.redo_text == "Choose mask 3"
    # A new edit after an undo drops what was undone.
    history.push(SetLabel(ann, "", "bowl"))
    assert not history.can_redo and len(history) == 3
    with Project.open(project.path) as other:
        sources = {e.source for e in other.edits(other.find_image(ann.path).id)}
        assert {"user", "chain"} <= sources  # the heat map came from the chain, the rest from a person


def test_undo_to_the_empty_prompt_clears_the_mask(annotated):
    ann, project, _ = annotated
    history = History()
    history.push(SetPrompts(ann, ann.prompts, PromptState((Point(10, 10),)), "Add"))
    assert _stored(project, ann.path).mask_rle is not None
    history.undo()
    assert ann.mask is None and _stored(project, ann.path).mask_rle is None


def test_fusion_uses_the_coverage_computed_with_the_candidates(annotated):
    ann, _, _ = annotated
    prompts = PromptState((Point(10, 10),))
    seg = prepare_candidates(fake_segmentation(prompts), ann.question_map.shape)
    for c in seg.candidates:
        assert np.allclose(c.coverage, fusion.mask_to_grid(c.mask, (6, 6)))
        assert c.rle["size"] == [30, 40]
    ann.set_prompts(prompts)
    ann.accept_segmentation(prompts, ann.generation, seg)
    expected = fusion.fuse(ann.question_map, seg.candidates[0].mask, alpha=ann.alpha)
    assert np.allclose(ann.fused_map, expected, atol=1e-6)
    ann.set_alpha(0.2)
    assert np.allclose(ann.fused_map, fusion.fuse(ann.question_map, seg.candidates[0].mask, alpha=0.2), atol=1e-6)
    # The mask reached the record from the prepared RLE (no encoding here), with its coverage,
    # so the project write computes the review need without going back to the runs.
    assert ann.record.mask_rle == seg.candidates[0].rle
    assert ann.record.known_coverage((6, 6)) is seg.candidates[0].coverage


def test_an_answer_after_a_mask_edit_is_marked_stale(annotated):
    ann, _, _ = annotated
    history = History()
    history.push(SetPrompts(ann, ann.prompts, PromptState((Point(10, 10),)), "Add"))
    ann.set_answer(AnswerResult("a cup"))
    assert not ann.answer_stale
    history.push(SetPrompts(ann, ann.prompts, PromptState((Point(30, 20),)), "Move"))
    assert ann.answer_stale


def test_the_annotation_core_imports_no_qt():
    code = ("import sys, engine.annotation, engine.annotation.state, engine.annotation.edits; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph', 'gui')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_long_answer_gives_a_short_default_label(annotated):
    ann, project, _ = annotated
    ann.set_answer(AnswerResult("the man is holding a red umbrella over his head because it is raining " * 2))
    assert ann.record.label == "the man is"
    ann.set_accepted(True)
    assert [c.name for c in project.categories] == ["the man is"]
    ann.set_label("umbrella")
    assert ann.record.label == "umbrella"
