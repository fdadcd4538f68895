"""The annotation core without Qt: one image's objects and runs, every edit with do and undo, the
history, and what reaches the project file."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from support.annotation import Decoding, add_object, ask, open_annotation, stored, stored_object, stored_run
from engine.annotation import (ChooseCandidate, History, PromptState, SetAccepted, SetAlpha, SetCategory,
                               SetPrompts, prepare_candidates)
from engine.imaging import fusion
from engine.project import Project
from engine.prompts import Point
from support.fakes import fake_segmentation

AUTO = Point(10.0, 10.0, score=0.9, source="auto")


@pytest.fixture
def annotated(tmp_path):
    """An image asked "what is it?": its run (a heat map) and one proposal from the automatic point."""
    path = tmp_path / "a.png"
    path.write_bytes(b"")
    project = Project.create(tmp_path / "p.qmask")
    ann = open_annotation(project, path, Decoding)
    seen: list[str] = []
    ann.notify = seen.append  # type: ignore[method-assign]
    ask(ann, "what is it?", points=(AUTO,))
    yield ann, project, seen
    project.close()


def test_edits_do_undo_redo_and_reach_the_project(annotated):
    ann, project, seen = annotated
    uid, key = ann.selected, ann.run_key
    assert uid is not None and ann.record.proposal and key == "what is it?"
    history = History()
    one = PromptState((AUTO, Point(30, 20)))
    two = PromptState((AUTO, Point(30, 20), Point(5, 25)))
    history.push(SetPrompts(ann, uid, ann.prompts, one, "Add positive point", ann.chosen))
    history.push(SetPrompts(ann, uid, one, two, "Add positive point", ann.chosen))
    history.push(ChooseCandidate(ann, uid, ann.chosen, 2))
    history.push(SetAlpha(ann, key, 0.5, 0.4, gesture=1))
    history.push(SetAlpha(ann, key, 0.4, 0.3, gesture=1))  # same drag: merged into one edit
    history.push(SetCategory(ann, uid, None, "cup"))
    history.push(SetAccepted(ann, uid, True))
    assert len(history) == 6 and history.undo_text == "Accept object"
    assert ann.prompts == two and ann.chosen == 2 and ann.alpha == pytest.approx(0.3) and ann.accepted
    obj = stored_object(project, ann.path, uid)
    assert obj.accepted and obj.category == "cup" and not obj.proposal
    assert stored_run(project, ann.path, "what is it?").alpha == pytest.approx(0.3)
    assert len(obj.points) == 3 and obj.mask_source == "user" and obj.edited
    assert np.array_equal(obj.mask(), fake_segmentation(two).candidates[2].mask)
    assert [c.name for c in project.categories] == ["cup"]  # a typed class joins the class list
    assert {"prompts", "segmentation", "choice", "alpha", "fusion", "category", "accepted"} <= set(seen)

    for _ in range(5):
        assert history.undo()
    assert ann.prompts == one and ann.chosen == 0 and ann.alpha == pytest.approx(0.5)
    assert ann.category is None and not ann.accepted
    obj = stored_object(project, ann.path, uid)
    assert not obj.accepted and obj.category is None and len(obj.points) == 2
    assert stored_run(project, ann.path, "what is it?").alpha == pytest.approx(0.5)
    assert np.array_equal(obj.mask(), fake_segmentation(one).candidates[0].mask)
    assert history.redo() and ann.prompts == two and history.redo_text == "Choose mask 3"
    # A new edit after an undo drops what was undone.
    history.push(SetCategory(ann, uid, None, "bowl"))
    assert not history.can_redo and len(history) == 3
    with Project.open(project.path) as other:
        edits = other.edits(other.find_image(ann.path).id)
        assert {"user", "chain"} <= {e.source for e in edits}  # the heat map came from the chain, the rest from a person
        assert {e.object_uid for e in edits if e.source == "user"} == {uid}  # each edit names its object


def test_an_edit_undone_while_another_object_is_selected_edits_its_own_object(annotated):
    ann, project, _ = annotated
    history = History()
    first = ann.selected
    before = ann.mask.copy()
    history.push(SetPrompts(ann, first, ann.prompts, PromptState((AUTO, Point(30, 20))), "Add", ann.chosen))
    second = add_object(ann, history, [Point(5, 25)])
    assert ann.selected == second and len(ann.objects) == 2
    history.undo()  # the second object's prompts
    history.undo()  # the second object itself
    assert second not in ann.objects and stored_object(project, ann.path, second) is None
    history.undo()  # the first object's point: it is selected again, its mask back
    assert ann.selected == first and np.array_equal(ann.mask, before)
    assert np.array_equal(stored_object(project, ann.path, first).mask(), before)


def test_undo_to_the_empty_prompt_clears_the_mask(annotated):
    ann, project, _ = annotated
    history = History()
    uid = add_object(ann, history, [Point(30, 20)])
    assert stored_object(project, ann.path, uid).mask_rle is not None
    history.undo()
    assert ann.selected == uid and ann.mask is None and stored_object(project, ann.path, uid).mask_rle is None


def test_fusion_uses_the_coverage_computed_with_the_candidates(annotated):
    ann, _, _ = annotated
    uid = ann.selected
    prompts = PromptState((Point(10, 10),))
    seg = prepare_candidates(fake_segmentation(prompts), ann.question_map.shape)
    for c in seg.candidates:
        assert np.allclose(c.coverage, fusion.mask_to_grid(c.mask, (6, 6)))
        assert c.rle["size"] == [30, 40]
    ann.set_prompts(prompts, uid=uid)
    ann.accept_segmentation(prompts, ann.generation, seg, uid=uid)
    expected = fusion.fuse(ann.question_map, seg.candidates[0].mask, alpha=ann.alpha)
    assert np.allclose(ann.fused_map, expected, atol=1e-6)
    ann.set_alpha(0.2)
    assert np.allclose(ann.fused_map, fusion.fuse(ann.question_map, seg.candidates[0].mask, alpha=0.2), atol=1e-6)
    # The mask reached the record from the prepared RLE (no encoding here), with its coverage,
    # so the project write computes the review need without going back to the runs.
    assert ann.record.mask_rle == seg.candidates[0].rle
    assert ann.record.known_coverage((6, 6)) is seg.candidates[0].coverage


def test_the_fused_map_holds_every_object_of_its_run_and_no_other(annotated):
    ann, _, _ = annotated
    first = ann.objects[ann.selected].mask.copy()
    other = fake_segmentation(PromptState((Point(32, 22, source="auto"),)))
    ask(ann, "where are they?", points=(Point(32, 22, source="auto"),), segmentations=(other,))
    history = History()
    add_object(ann, history, [Point(5, 25)])  # a manual object: no run's evidence
    ann.show_run("what is it?")
    assert np.allclose(ann.fused_map, fusion.fuse(ann.question_map, first, alpha=ann.alpha), atol=1e-6)
    ann.show_run("where are they?")
    assert np.allclose(ann.fused_map, fusion.fuse(ann.question_map, other.best.mask, alpha=ann.alpha), atol=1e-6)


def test_an_answer_after_a_mask_edit_is_marked_stale(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"")
    with Project.create(tmp_path / "p.qmask") as project:
        ann = open_annotation(project, path, Decoding)
        ask(ann, "what is it?", points=(AUTO,), answer="a cup")
        assert ann.answer.answer == "a cup" and not ann.answer_stale
        history = History()
        history.push(SetPrompts(ann, ann.selected, ann.prompts, PromptState((Point(30, 20),)), "Move"))
        assert ann.answer_stale


def test_the_annotation_core_imports_no_qt():
    code = ("import sys, engine.annotation, engine.annotation.state, engine.annotation.edits; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph', 'gui')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


LONG = "the man is holding a red umbrella over his head because it is raining " * 2


def test_an_answer_never_becomes_a_class(annotated):
    """A proposal's class comes from the class list (the name its question, else its answer,
    names); the answer's own words never become a class, not even when the object is accepted."""
    ann, project, _ = annotated
    ask(ann, "what is the man holding?", points=(Point(30, 20, source="auto"),), answer=LONG)
    held = ann.selected
    assert ann.category is None
    ann.set_accepted(True)
    assert project.categories == [] and stored_object(project, ann.path, held).category is None
    project.set_classes(["umbrella", "person"])
    ask(ann, "where is the person?", points=(Point(5, 25, source="auto"),), answer=LONG)
    assert ann.category == "person"  # the question names a class
    ask(ann, "what does he hold?", points=(Point(20, 5, source="auto"),), answer="an umbrella")
    assert ann.category == "umbrella"  # the question names none: the answer does
    ann.set_category("parasol")  # a typed class joins the list
    assert [c.name for c in project.categories] == ["umbrella", "person", "parasol"]
    objects, _ = stored(project, ann.path)
    assert sorted(o.category or "" for o in objects) == ["", "", "parasol", "person"]
