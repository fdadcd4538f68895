"""Asking (issue 23): a question's proposals become objects; asking it again replaces only the
proposals nobody touched and never changes an object a person edited, kept, labelled or accepted;
another question adds its own proposals; a proposal that duplicates an object already there is
linked to the run, not added again. Engine only (hand-made decoder results, no Qt)."""

from __future__ import annotations

import numpy as np
import pytest

from support.annotation import Decoding, ask, open_annotation, stored
from engine.annotation import History, KeepProposal, PromptState, SetAccepted, SetCategory, SetPrompts
from engine.project import Project
from engine.project.codec import object_to_json
from engine.prompts import Point
from engine.results import MaskCandidate, SegmentationResult

H, W = 30, 40
QUESTION = "where are the cats?"


def _box(r0: int, c0: int, size: int = 4) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[r0:r0 + size, c0:c0 + size] = True
    return m


def _proposal(mask: np.ndarray) -> SegmentationResult:
    """A decoder result whose best candidate is ``mask``, from one automatic point at its centre."""
    rows, cols = np.nonzero(mask)
    point = Point(float(cols.mean()) + 0.5, float(rows.mean()) + 0.5, score=0.9, source="auto")
    return SegmentationResult(candidates=(MaskCandidate(mask, np.zeros((4, 4), np.float32), 0.9),
                                          MaskCandidate(~mask, np.zeros((4, 4), np.float32), 0.3)), points=(point,))


FIRST = [_box(2, 2), _box(2, 12), _box(2, 22), _box(2, 32), _box(12, 2)]  # five cats, one each
AGAIN = [_box(20, 2), _box(20, 12), _box(20, 22)]  # asked again: three new places


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"")
    project = Project.create(tmp_path / "p.qmask")
    ann = open_annotation(project, path, Decoding)
    ann.history = History()
    yield ann, project
    project.close()


def _ask(ann, question: str, masks: list[np.ndarray], answer: str = "five") -> list[str]:
    """Ask with these proposals (instances: several); returns the uids the run lists."""
    run = ask(ann, question, points=(Point(20, 15, source="auto"),), segmentations=[_proposal(m) for m in masks],
              instances="several", answer=answer)
    return list(run.record.object_uids)


def _touch_four(ann, uids: list[str]) -> dict[str, dict]:
    """A person edits the first proposal's prompts, keeps the second, labels the third, accepts
    the fourth; the fifth stays untouched. Returns how each touched object looks now."""
    history = ann.history
    edit, kept, labelled, accepted = uids[:4]
    obj = ann.objects[edit]
    history.push(SetPrompts(ann, edit, obj.prompts, PromptState(obj.prompts.points + (Point(8, 8),)), "Add point"))
    history.push(KeepProposal(ann, kept))
    history.push(SetCategory(ann, labelled, None, "cat"))
    history.push(SetAccepted(ann, accepted, True))
    return {uid: object_to_json(ann.objects[uid].record) for uid in uids[:4]}


def test_asking_again_replaces_only_the_untouched_proposals(image):
    ann, project = image
    first = _ask(ann, QUESTION, FIRST)
    assert len(first) == 5 and all(ann.objects[u].record.proposal for u in first)
    touched = _touch_four(ann, first)
    assert all(ann.objects[u].record.touched for u in first[:4]) and not ann.objects[first[4]].record.touched
    again = _ask(ann, QUESTION, AGAIN, answer="three")
    new = [u for u in again if u not in first]
    assert len(new) == 3 and again == new + first[:4]  # the run: its new proposals, then the ones a person made theirs
    assert first[4] not in ann.objects  # the untouched proposal was replaced
    assert {u: object_to_json(ann.objects[u].record) for u in first[:4]} == touched  # the others, exactly as they were
    for uid, mask in zip(new, AGAIN):
        assert np.array_equal(ann.objects[uid].mask, mask) and ann.objects[uid].record.proposal
    objects, runs = stored(project, ann.path)  # the project holds the same
    assert {o.uid for o in objects} == set(first[:4]) | set(new)
    assert {o.uid: object_to_json(o) for o in objects if o.uid in touched} == touched
    assert [r.object_uids for r in runs] == [again] and runs[0].previous_answers[-1].answer == "five"
    assert [o.order for o in sorted(objects, key=lambda o: o.order)] == sorted({o.order for o in objects})  # no two alike


def test_asking_again_drops_the_undo_steps_about_the_proposals_it_replaces(image):
    ann, project = image
    history = ann.history
    first = _ask(ann, QUESTION, FIRST)
    history.push(KeepProposal(ann, first[4]))
    history.undo()  # a proposal again (untouched), the step redo-able
    assert not ann.objects[first[4]].record.touched and history.can_redo
    _ask(ann, QUESTION, AGAIN)
    assert first[4] not in ann.objects
    assert not history.can_redo and not history.redo()  # its redo could not be done: the step is gone
    history.push(KeepProposal(ann, ann.runs[QUESTION].record.object_uids[0]))  # the history goes on as usual
    assert history.undo() and history.redo()


def test_another_question_adds_its_proposals_and_changes_nothing_else(image):
    ann, project = image
    first = _ask(ann, QUESTION, FIRST)
    before = {u: object_to_json(o.record) for u, o in ann.objects.items()}
    dogs = _ask(ann, "where is the dog?", [_box(20, 30, 6)], answer="on the grass")
    assert len(dogs) == 1 and dogs[0] not in first and len(ann.objects) == 6
    assert {u: object_to_json(ann.objects[u].record) for u in first} == before  # untouched proposals of the first stay
    assert ann.objects[dogs[0]].record.question == "where is the dog?" and ann.run_key == "where is the dog?"
    assert sorted(r.key for r in ann.runs.values()) == ["where are the cats?", "where is the dog?"]
    assert ann.runs["where are the cats?"].record.object_uids == first
    objects, runs = stored(project, ann.path)
    assert len(objects) == 6 and len(runs) == 2


def test_a_proposal_duplicating_an_object_is_linked_not_added(image):
    ann, project = image
    first = _ask(ann, QUESTION, FIRST)
    ann.history.push(KeepProposal(ann, first[1]))
    near = FIRST[1].copy()
    near[2, 11] = True  # one pixel more: IoU 16/17, the same object
    linked = _ask(ann, "where is the tabby?", [near, _box(20, 20)], answer="there")
    assert len(ann.objects) == 6  # one new object, not two
    added = [u for u in linked if u not in first]
    assert len(added) == 1 and np.array_equal(ann.objects[added[0]].mask, _box(20, 20))
    assert set(linked) == {added[0], first[1]}  # the twin is the run's too
    assert ann.objects[first[1]].record.question == QUESTION  # it stays the first question's object
    # twins within one ask: one object
    twice = _ask(ann, "where is the ginger one?", [_box(12, 30), _box(12, 30)], answer="here")
    assert len(twice) == 1 and len(ann.objects) == 7
    objects, runs = stored(project, ann.path)
    assert len(objects) == 7 and {r.question: len(r.object_uids) for r in runs}["where is the tabby?"] == 2
