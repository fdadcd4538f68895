"""A cancelled or failed ask puts the image back as it was before the ask, without Qt: in the
annotation and in the project file (engine/annotation/asking.py, ``AskFlow.abandon``). The ask's
run is taken back (or its earlier run of the same question put back), its proposals nobody touched
go, the proposals it replaced come back; the objects a person made or edited stay."""

from __future__ import annotations

import numpy as np
import pytest

from support.annotation import ask, open_annotation, reopened, stored
from engine.annotation import History, ImageAnnotation, PromptState, SetPrompts
from engine.annotation.corrections import PaintStroke
from engine.project import Project
from engine.prompts import Point
from engine.results import AnswerResult

FIRST = "what is it?"


def _ask(ann: ImageAnnotation, question: str, cell: int, ask_id: int, answer: str | None) -> None:
    """One ask as the app runs it: the stages arrive one by one; ``answer`` None stops before the answer."""
    heat = np.zeros((6, 6), np.float32)
    heat[cell, cell] = 1.0
    ask(ann, question, heat=heat, points=(Point(5.0 * cell + 3, 4.0 * cell + 2, source="auto"),),
        captions=(f"caption {cell}",), answer=answer, ask_id=ask_id)


@pytest.fixture
def done(tmp_path):
    """An image with one complete ask (answered), its proposal labelled and accepted."""
    path = tmp_path / "a.png"
    path.write_bytes(b"")
    project = Project.create(tmp_path / "p.qmask")
    ann = open_annotation(project, path)
    _ask(ann, FIRST, 1, ask_id=1, answer="a cup")
    ann.set_category("mug")
    ann.set_accepted(True)
    yield ann, project
    project.close()


def _shown(ann: ImageAnnotation) -> dict:
    """Everything the image shows: each object and each run, the selection and the run shown."""
    objects = {uid: (o.mask.tolist() if o.mask is not None else None, o.prompts.key(), o.record.category,
                     o.record.accepted, o.record.proposal, o.record.order, o.corrections.empty)
               for uid, o in ann.objects.items()}
    runs = {key: (r.question, None if r.question_map is None else r.question_map.tolist(), r.record.auto_points,
                  r.captions, r.answer, r.previous_answer, r.alpha, sorted(r.record.object_uids),
                  None if r.fused_map is None else r.fused_map.tolist())
            for key, r in ann.runs.items()}
    return {"objects": objects, "runs": runs, "selected": ann.selected, "run_key": ann.run_key,
            "status": ann.status, "question": ann.question}


def _file(project: Project, ann: ImageAnnotation) -> tuple[list[str], dict]:
    """The questions in the file, and each object's (class, accepted, mask) there."""
    objects, runs = stored(project, ann.path)
    return [r.question for r in runs], {o.uid: (o.category, o.accepted, o.mask().tolist()) for o in objects}


def test_a_cancelled_new_question_restores_everything_and_leaves_no_run(done):
    ann, project = done
    before, file_before = _shown(ann), _file(project, ann)
    _ask(ann, "where is the dog?", 3, ask_id=2, answer=None)
    assert ann.question == "where is the dog?" and ann.answer is None and len(ann.objects) == 2  # the state a cancel ends
    seen: list[str] = []
    ann.notify = seen.append  # type: ignore[method-assign]
    assert ann.asks.abandon(2)
    assert _shown(ann) == before
    assert {"question", "heatmap", "restored", "segmentation", "answer", "category", "accepted", "objects"} <= set(seen)
    assert "prompts" not in seen  # the app's live decoder must not replace the masks put back
    assert _file(project, ann) == file_before == ([FIRST], file_before[1])
    again = reopened(project, ann.path)
    again.select(ann.selected)
    assert again.question == FIRST and again.answer.answer == "a cup" and again.accepted and again.category == "mug"
    assert np.array_equal(again.mask, ann.mask)


def test_a_cancelled_ask_of_the_same_question_puts_its_earlier_run_back(done):
    ann, project = done
    before, file_before = _shown(ann), _file(project, ann)
    mug = ann.selected
    _ask(ann, FIRST, 3, ask_id=2, answer=None)
    assert ann.objects[mug].record.accepted and ann.objects[mug].record.category == "mug"  # a person's object: left alone
    assert len(ann.objects) == 2 and ann.runs[FIRST].answer is None
    assert ann.asks.abandon(2)
    assert _shown(ann) == before
    assert _file(project, ann) == file_before
    again = reopened(project, ann.path)
    assert again.answer.answer == "a cup" and again.is_accepted(mug)
    assert np.array_equal(again.question_map, np.asarray(before["runs"][FIRST][1]))


def test_a_cancelled_ask_brings_back_the_proposals_it_replaced(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"")
    with Project.create(tmp_path / "p.qmask") as project:
        ann = open_annotation(project, path)
        _ask(ann, FIRST, 1, ask_id=1, answer="a cup")  # an untouched proposal: the next ask replaces it
        before, file_before = _shown(ann), _file(project, ann)
        _ask(ann, FIRST, 3, ask_id=2, answer=None)
        assert len(ann.objects) == 1 and set(ann.objects) != set(before["objects"])
        assert ann.asks.abandon(2)
        assert _shown(ann) == before and _file(project, ann) == file_before


def test_only_the_ask_in_flight_restores_and_a_completed_one_never(done):
    ann, project = done
    _ask(ann, "where is the dog?", 3, ask_id=2, answer=None)
    after_two = _shown(ann)
    _ask(ann, "which colour?", 4, ask_id=3, answer=None)  # ask 2 gave way to ask 3: it keeps what it made
    assert not ann.asks.abandon(2)  # the replaced ask's cancel changes nothing
    assert ann.question == "which colour?"
    assert ann.asks.abandon(3)  # back to the state before ask 3, ask 2's proposal and run kept
    assert _shown(ann) == after_two
    assert _file(project, ann)[0] == [FIRST, "where is the dog?"]
    _ask(ann, "where is the dog?", 3, ask_id=4, answer="a dog")
    after = _shown(ann)
    assert not ann.asks.abandon(4)  # completed: nothing to undo
    assert _shown(ann) == after


def test_a_cancel_after_the_answer_came_keeps_the_answer(done):
    ann, project = done
    _ask(ann, "where is the dog?", 3, ask_id=2, answer=None)
    ann.asks.take(AnswerResult("in the garden"), 2)  # the cancel arrives after the last stage
    assert not ann.asks.abandon(2)
    assert ann.answer.answer == "in the garden"
    questions, objects = _file(project, ann)
    assert sorted(questions) == sorted([FIRST, "where is the dog?"]) and len(objects) == 2


def test_a_cancelled_first_ask_leaves_the_image_new(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"")
    with Project.create(tmp_path / "p.qmask") as project:
        ann = open_annotation(project, path)
        _ask(ann, FIRST, 1, ask_id=1, answer=None)
        assert ann.asks.abandon(1)
        assert ann.question == "" and ann.question_map is None and ann.mask is None and ann.status == "new"
        assert ann.objects == {} and ann.runs == {}
        assert _file(project, ann) == ([], {})
        again = reopened(project, ann.path)
        assert again.status == "new" and project.image_rows([ann.image_id])[ann.image_id].state == "new"


def test_brush_strokes_on_an_object_stay_through_an_ask_and_its_cancel(done):
    ann, project = done
    mug = ann.selected
    History().push(PaintStroke(ann, mug, [(30.0, 20.0), (36.0, 20.0)], radius=2.0))
    painted = ann.mask.copy()
    assert painted[20, 33] and not ann.corrections.empty
    _ask(ann, "where is the dog?", 3, ask_id=2, answer=None)
    assert np.array_equal(ann.objects[mug].mask, painted)  # a new question is another object's business
    assert ann.asks.abandon(2)
    assert not ann.objects[mug].corrections.empty and np.array_equal(ann.objects[mug].mask, painted)
    questions, objects = _file(project, ann)
    assert questions == [FIRST] and objects[mug][2] == painted.tolist()


def test_a_cancelled_ask_drops_the_undo_steps_about_the_proposals_it_takes_back(done):
    """A step about a proposal the cancel takes away could be neither done nor undone again; the
    other steps stay, and undo and redo walk them as before."""
    ann, project = done
    mug = ann.selected
    ann.history = history = History()
    model = ann.mask.copy()
    history.push(PaintStroke(ann, mug, [(30.0, 20.0), (36.0, 20.0)], radius=2.0))
    painted = ann.mask.copy()
    _ask(ann, "where is the dog?", 3, ask_id=2, answer=None)
    dog = ann.selected
    assert dog != mug and ann.objects[dog].record.proposal
    history.push(SetPrompts(ann, dog, ann.prompts, PromptState(ann.prompts.points + (Point(5.0, 5.0),)), "Add point"))
    history.undo()  # the proposal is untouched again, and this step redo-able: the cancel takes both away
    assert len(history) == 2 and history.can_redo
    assert ann.asks.abandon(2)
    assert dog not in ann.objects and len(history) == 1 and not history.can_redo
    assert history.undo_text == "Brush stroke" and history.undo()
    assert np.array_equal(ann.objects[mug].mask, model)
    assert history.redo() and np.array_equal(ann.objects[mug].mask, painted) and not history.can_redo


def test_a_proposal_edited_during_a_cancelled_ask_stays_with_its_steps(done):
    ann, project = done
    ann.history = history = History()
    _ask(ann, "where is the dog?", 3, ask_id=2, answer=None)
    dog = ann.selected
    history.push(SetPrompts(ann, dog, ann.prompts, PromptState(ann.prompts.points + (Point(5.0, 5.0),)), "Add point"))
    assert ann.asks.abandon(2)
    assert dog in ann.objects and ann.objects[dog].edited  # a person's work is not taken back
    assert len(history) == 1 and history.undo() and not ann.objects[dog].edited
    assert dog in _file(project, ann)[1]


def test_a_completed_ask_keeps_its_steps(done):
    ann, project = done
    ann.history = history = History()
    _ask(ann, "where is the dog?", 3, ask_id=2, answer=None)
    dog = ann.selected
    history.push(SetPrompts(ann, dog, ann.prompts, PromptState((Point(18.0, 14.0),)), "Move point"))
    ann.asks.take(AnswerResult("a dog"), 2)
    ann.asks.finish(2)
    assert not ann.asks.abandon(2) and history.undo_text == "Move point"


def test_a_new_question_leaves_earlier_edits_undoable_on_their_own_object(done):
    """Before objects, a new question replaced the mask, and its history started afresh; now the
    earlier question's object stays, so its edits stay undoable, and undoing one changes that
    object only, never the new question's proposals."""
    ann, project = done
    mug = ann.selected
    ann.history = history = History()
    model = ann.mask.copy()
    history.push(PaintStroke(ann, mug, [(30.0, 20.0), (36.0, 20.0)], radius=2.0))
    _ask(ann, "where is the dog?", 3, ask_id=2, answer="a dog")
    dog = ann.selected
    dog_mask = ann.objects[dog].mask.copy()
    assert history.undo_text == "Brush stroke" and history.undo()
    assert ann.selected == mug and np.array_equal(ann.mask, model)
    assert np.array_equal(ann.objects[dog].mask, dog_mask) and not history.can_undo
    assert ann.objects[mug].record.accepted  # the stroke had un-accepted it; its undo accepts it again
