"""A cancelled or failed ask puts the image back to its last complete state, without Qt: in the
annotation and in the project file (engine/annotation/last_complete.py)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.annotation import ImageAnnotation, ProjectStore, PromptState
from engine.imaging.images import image_from_array
from engine.project import Project
from engine.prompts import Point
from engine.results import AnswerResult, CaptionsResult, HeatmapResult
from fakes import fake_segmentation

FIRST = "what is it?"


def _heat(cell: int) -> HeatmapResult:
    heat = np.zeros((6, 6), np.float32)
    heat[cell, cell] = 1.0
    return HeatmapResult(question="q", question_map=heat, token_maps=heat[None], tokens=("it",), itm_probability=0.7)


def _ask(ann: ImageAnnotation, question: str, cell: int, ask_id: int, answer: str | None) -> None:
    """One ask as the app runs it: the stages arrive one by one; ``answer`` None stops before the answer."""
    ann.start_question(question)
    ann.asking = ask_id
    ann.set_heatmap(_heat(cell))
    points = (Point(5.0 * cell + 3, 4.0 * cell + 2, source="auto"),)
    ann.set_auto_points(points)
    prompts = PromptState(points)
    ann.set_prompts(prompts)
    ann.accept_segmentation(prompts, ann.generation, fake_segmentation(prompts))
    ann.set_captions(CaptionsResult(captions=(f"caption {cell}",), rounds=1, complete=True))
    if answer is not None:
        ann.set_answer(AnswerResult(answer))
        ann.finish_question(ask_id)


@pytest.fixture
def done(tmp_path):
    """An image with one complete ask (answered, labelled, accepted)."""
    path = tmp_path / "a.png"
    path.write_bytes(b"")
    project = Project.create(tmp_path / "p.qmask")
    image_id = project.add_image(path).id
    ann = ImageAnnotation(ProjectStore(project), path, image_id)
    ann.set_image(image_from_array(np.zeros((30, 40, 3), np.uint8)))
    _ask(ann, FIRST, 1, ask_id=1, answer="a cup")
    ann.set_label("mug")
    ann.set_accepted(True)
    yield ann, project
    project.close()


def _shown(ann: ImageAnnotation) -> dict:
    return {"question": ann.question, "heat": ann.question_map.tolist(), "auto": ann.auto_points,
            "prompts": ann.prompts.key(), "mask": ann.mask.tolist(), "captions": ann.captions,
            "answer": ann.answer, "label": ann.label, "accepted": ann.accepted, "status": ann.status,
            "fused": ann.fused_map.tolist()}


def _reopened(project: Project, ann: ImageAnnotation) -> tuple[list[str], ImageAnnotation]:
    """The questions in the file, and the image as a new app would open it."""
    with Project.open(project.path) as other:  # as another process reads it
        questions = [q.question for q in other.find_image(ann.path).questions]
        again = ImageAnnotation(ProjectStore(other), ann.path, ann.image_id)
    return questions, again


def test_a_cancelled_new_question_restores_everything_and_leaves_no_record(done):
    ann, project = done
    before = _shown(ann)
    _ask(ann, "where is the dog?", 3, ask_id=2, answer=None)
    assert ann.question == "where is the dog?" and ann.answer is None  # the mixed state a cancel ends
    seen: list[str] = []
    ann.notify = seen.append  # type: ignore[method-assign]
    assert ann.abandon_question(2)
    assert _shown(ann) == before
    assert {"question", "heatmap", "restored", "segmentation", "answer", "label", "accepted"} <= set(seen)
    assert "prompts" not in seen  # the app's live decoder must not replace the mask put back
    questions, again = _reopened(project, ann)
    assert questions == [FIRST]
    assert again.question == FIRST and again.answer.answer == "a cup" and again.accepted and again.label == "mug"
    assert np.array_equal(again.mask, np.asarray(before["mask"]))


def test_a_cancelled_ask_of_the_same_question_puts_its_earlier_record_back(done):
    ann, project = done
    before = _shown(ann)
    _ask(ann, FIRST, 3, ask_id=2, answer=None)
    assert not ann.accepted and ann.label == "mug"  # the typed label is kept for the same question
    assert ann.abandon_question(2)
    assert _shown(ann) == before
    questions, again = _reopened(project, ann)
    assert questions == [FIRST]
    assert again.accepted and again.answer.answer == "a cup"
    assert np.array_equal(again.question_map, np.asarray(before["heat"]))


def test_only_the_ask_in_flight_restores_and_a_completed_one_never(done):
    ann, _ = done
    before = _shown(ann)
    _ask(ann, "where is the dog?", 3, ask_id=2, answer=None)
    _ask(ann, "which colour?", 4, ask_id=3, answer=None)  # replaces ask 2 before it completed
    assert not ann.abandon_question(2)  # the replaced ask's cancel changes nothing
    assert ann.question == "which colour?"
    assert ann.abandon_question(3)  # back to the state before both, not to ask 2's half
    assert _shown(ann) == before
    _ask(ann, "where is the dog?", 3, ask_id=4, answer="a dog")
    after = _shown(ann)
    assert not ann.abandon_question(4)  # completed: nothing to undo
    assert _shown(ann) == after


def test_a_cancel_after_the_answer_came_keeps_the_answer(done):
    ann, project = done
    _ask(ann, "where is the dog?", 3, ask_id=2, answer=None)
    ann.set_answer(AnswerResult("in the garden"))  # the cancel arrives after the last stage
    assert not ann.abandon_question(2)
    assert ann.answer.answer == "in the garden"
    questions, _ = _reopened(project, ann)
    assert sorted(questions) == sorted([FIRST, "where is the dog?"])


def test_a_cancelled_first_ask_leaves_the_image_new(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"")
    with Project.create(tmp_path / "p.qmask") as project:
        ann = ImageAnnotation(ProjectStore(project), path, project.add_image(path).id)
        ann.set_image(image_from_array(np.zeros((30, 40, 3), np.uint8)))
        _ask(ann, FIRST, 1, ask_id=1, answer=None)
        assert ann.abandon_question(1)
        assert ann.question == "" and ann.question_map is None and ann.mask is None and ann.status == "new"
        questions, again = _reopened(project, ann)
        assert questions == [] and again.status == "new"


def test_brush_strokes_made_before_the_ask_come_back_with_it(done):
    from engine.annotation import History
    from engine.annotation.corrections import PaintStroke

    ann, project = done
    History().push(PaintStroke(ann, [(30.0, 20.0), (36.0, 20.0)], radius=2.0))
    painted = ann.mask.copy()
    assert painted[20, 33] and not ann.corrections.empty
    _ask(ann, "where is the dog?", 3, ask_id=2, answer=None)
    assert ann.corrections.empty  # a new question starts from the model's mask
    assert ann.abandon_question(2)
    assert not ann.corrections.empty and np.array_equal(ann.mask, painted)
    questions, again = _reopened(project, ann)
    assert questions == [FIRST] and np.array_equal(again.mask, painted)


def test_a_cancelled_ask_leaves_the_undo_history_as_it_was(done):
    """The ask's own step (its automatic points) and edits made while it ran are gone from the
    history: undo walks back over the steps that led to the restored state, redo brings nothing back."""
    from engine.annotation import History, SetPrompts
    from engine.annotation.corrections import PaintStroke

    ann, project = done
    ann.history = history = History()
    model = ann.mask.copy()
    history.push(PaintStroke(ann, [(30.0, 20.0), (36.0, 20.0)], radius=2.0))
    painted = ann.mask.copy()
    ann.start_question("where is the dog?")
    ann.asking = 2
    auto = PromptState((Point(18.0, 14.0, source="auto"),))
    history.push(SetPrompts(ann, ann.prompts, auto, "Automatic points", ann.chosen))
    history.push(SetPrompts(ann, ann.prompts, PromptState(auto.points + (Point(5.0, 5.0),)), "Add point"))
    history.undo()  # a redo-able step of the abandoned ask: gone too
    assert ann.abandon_question(2)
    assert np.array_equal(ann.mask, painted) and len(history) == 1 and not history.can_redo
    assert history.undo_text == history.snapshot()[0][0].text and history.undo()
    assert np.array_equal(ann.mask, model)
    assert history.redo() and np.array_equal(ann.mask, painted) and not history.can_redo


def test_a_completed_ask_keeps_its_steps(done):
    from engine.annotation import History, SetPrompts

    ann, project = done
    ann.history = history = History()
    ann.start_question("where is the dog?")
    ann.asking = 2
    history.push(SetPrompts(ann, ann.prompts, PromptState((Point(18.0, 14.0, source="auto"),)), "Automatic points"))
    ann.set_answer(AnswerResult("a dog"))
    ann.finish_question(2)
    assert not ann.abandon_question(2) and history.undo_text == "Automatic points"


def test_a_new_question_starts_a_fresh_undo_history(done):
    """The earlier question's edits do not stay undoable over the new question's mask: after a
    completed ask, undo stops at the ask's own first step."""
    from engine.annotation import History, SetPrompts
    from engine.annotation.corrections import PaintStroke

    ann, project = done
    ann.history = history = History()
    history.push(PaintStroke(ann, [(30.0, 20.0), (36.0, 20.0)], radius=2.0))
    ann.start_question("where is the dog?")
    assert len(history) == 0 and not history.can_undo
    ann.asking = 2
    auto = PromptState((Point(18.0, 14.0, source="auto"),))
    history.push(SetPrompts(ann, ann.prompts, auto, "Automatic points", ann.chosen))
    ann.set_answer(AnswerResult("a dog"))
    ann.finish_question(2)
    assert history.undo() and not history.can_undo
    assert ann.corrections.empty  # the first question's stroke is not undone into the new question
