"""Edits of an image's collection of objects, without Qt (engine/annotation/object_edits.py): accept
all, delete, merge, reorder, keep, each one undo step, written to the project; and an image
reloaded from the project when another process wrote it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from support.annotation import Decoding, add_object, ask, open_annotation, stored, stored_object
from engine.annotation import (DeleteObjects, History, KeepProposal, PromptState, Reorder, SetCategory, SetPrompts,
                               accept_all, merge_objects)
from engine.annotation.corrections import PaintStroke
from engine.export import export_project
from engine.project import Project
from engine.project.codec import object_to_json
from engine.prompts import Point
from support.fakes import fake_segmentation

H, W = 30, 40


@pytest.fixture
def image(tmp_path):
    """A real 40 x 30 image asked two questions (two proposals, then one) with one manual object."""
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(path)
    project = Project.create(tmp_path / "p.qmask")
    ann = open_annotation(project, path, Decoding)
    ann.history = History()
    cats = [fake_segmentation(PromptState((Point(8, 8, source="auto"),))),
            fake_segmentation(PromptState((Point(30, 8, source="auto"),)))]
    ask(ann, "where are the cats?", segmentations=cats, instances="several", answer="two")
    ask(ann, "where is the dog?", points=(Point(20, 22, source="auto"),), answer="on the floor")
    add_object(ann, ann.history, [Point(5, 25)], category="bowl")
    yield ann, project
    project.close()


def test_accept_all_accepts_every_object_of_the_image_in_one_step(image):
    ann, project = image
    history = ann.history
    assert len(ann.objects) == 4 and len(ann.runs) == 2 and not ann.done
    first = ann.ordered()[0].uid
    ann.set_accepted(True, uid=first)
    edit = accept_all(ann)
    assert edit.text == "Accept all (3)"
    history.push(edit)
    assert ann.done and all(o.record.accepted for o in ann.objects.values()) and ann.status == "accepted"
    objects, _ = stored(project, ann.path)
    assert len(objects) == 4 and all(o.accepted and not o.proposal for o in objects)
    row = project.image_rows([ann.image_id])[ann.image_id]
    assert (row.accepted, row.objects, row.accepted_objects, row.state) == (True, 4, 4, "accepted")
    assert accept_all(ann) is None  # nothing left to accept
    # an export of accepted objects only takes every one of them
    report = export_project(project, "coco", ann.path.parent / "accepted.json", only_accepted=True)
    doc = json.loads(report.out.read_text())
    assert report.annotations == 4 and len(doc["annotations"]) == 4 and len(doc["images"]) == 1
    assert sorted(a["qmask"]["question"] or "" for a in doc["annotations"]) == \
        ["", "where are the cats?", "where are the cats?", "where is the dog?"]
    history.undo()  # one step back: the three accepted by it are not any more, the first one still is
    assert [o.record.accepted for o in ann.ordered()] == [True, False, False, False]
    assert project.image_rows([ann.image_id])[ann.image_id].accepted_objects == 1


def test_delete_and_its_undo_give_back_each_object_as_it_was(image):
    ann, project = image
    history = ann.history
    cat, dog = ann.ordered()[0].uid, ann.ordered()[2].uid
    history.push(PaintStroke(ann, cat, [(2, 2), (2, 12)], 2))
    history.push(SetCategory(ann, cat, None, "cat"))
    before = {u: object_to_json(ann.objects[u].record) for u in (cat, dog)}
    masks = {u: ann.objects[u].mask.copy() for u in (cat, dog)}
    history.push(DeleteObjects(ann, [cat, dog]))
    assert cat not in ann.objects and dog not in ann.objects and ann.selected is None
    assert {o.uid for o in stored(project, ann.path)[0]} & {cat, dog} == set()
    assert ann.runs["where is the dog?"].record.object_uids == []  # the run lists what is left
    history.undo()
    for uid in (cat, dog):
        record = ann.objects[uid].record
        assert object_to_json(record) | {"updated": 0} == before[uid] | {"updated": 0}
        assert np.array_equal(ann.objects[uid].mask, masks[uid])
        assert object_to_json(stored_object(project, ann.path, uid)) | {"updated": 0} == before[uid] | {"updated": 0}
    assert not ann.objects[cat].corrections.empty and ann.runs["where is the dog?"].record.object_uids == [dog]
    with pytest.raises(Exception, match="Select an object"):
        DeleteObjects(ann, ["nope"])


def test_merge_makes_the_union_and_its_undo_splits_them_again(image):
    ann, project = image
    history = ann.history
    a, b = (o.uid for o in ann.ordered()[:2])
    ma, mb = ann.objects[a].mask.copy(), ann.objects[b].mask.copy()
    history.push(merge_objects(ann, [a, b]))
    assert b not in ann.objects and np.array_equal(ann.objects[a].mask, ma | mb)
    assert not ann.objects[a].record.proposal  # merged: a person's object
    assert np.array_equal(stored_object(project, ann.path, a).mask(), ma | mb)
    assert stored_object(project, ann.path, b) is None
    history.undo()
    assert np.array_equal(ann.objects[a].mask, ma) and np.array_equal(ann.objects[b].mask, mb)
    assert ann.objects[a].record.proposal and np.array_equal(stored_object(project, ann.path, b).mask(), mb)
    with pytest.raises(Exception, match="two or more"):
        merge_objects(ann, [a])


def test_reorder_and_keep_are_undo_steps_written_to_the_project(image):
    ann, project = image
    history = ann.history
    bottom = ann.ordered()[0].uid
    top = max(o.record.order for o in ann.objects.values())
    history.push(Reorder(ann, bottom, top + 1))
    assert ann.ordered()[-1].uid == bottom and [o.uid for o in stored(project, ann.path)[0]][-1] == bottom
    history.push(KeepProposal(ann, bottom))
    assert not stored_object(project, ann.path, bottom).proposal
    history.undo()
    history.undo()
    assert ann.ordered()[0].uid == bottom and stored_object(project, ann.path, bottom).proposal
    assert [o.uid for o in stored(project, ann.path)[0]][0] == bottom


def test_reload_from_project_takes_what_another_process_wrote_and_resets_every_live_state(image):
    """Another process wrote this image (the later write wins): the image shows what the project
    holds, and nothing live outlives it: a stale answer, a hidden flag, the decoded candidates,
    an object gone, an ask in flight."""
    ann, project = image
    history = ann.history
    dog = next(o.uid for o in ann.objects.values() if o.record.question == "where is the dog?")
    cat = ann.ordered()[0].uid
    history.push(SetPrompts(ann, dog, ann.objects[dog].prompts, PromptState((Point(25, 15),)), "Move"))
    assert ann.answer_stale and ann.run_key == "where is the dog?" and ann.objects[dog].segmentation is not None
    ann.set_hidden(cat, True)
    ask(ann, "what else?", points=(Point(35, 25, source="auto"),), ask_id=7)  # in flight: no answer yet
    with Project.open(project.path) as other:  # another process: a fresh answer, a deleted object
        img = other.find_image(ann.path)
        run = img.find_run("where is the dog?")
        run.answer, run.captions = "under the table", ["a dog under a table"]
        run.touch()
        other.put_run(img, run)
        other.remove_objects(img, [cat])
    ann.select(dog)
    ann.reload_from_project()
    assert ann.run_key == "where is the dog?" and ann.answer.answer == "under the table"
    assert not ann.answer_stale and ann.captions == ("a dog under a table",)
    assert cat not in ann.objects and not any(o.hidden for o in ann.objects.values())
    assert ann.selected == dog and ann.objects[dog].segmentation is None  # rebuilt from its record
    assert np.array_equal(ann.mask, stored_object(project, ann.path, dog).mask())
    assert not ann.asks.abandon(7)  # the ask in flight was forgotten: nothing is taken back over the reload
    assert "what else?" in ann.runs
