"""Projects from before objects open converted (issue 23): a schema-1 SQLite project is migrated in
place, a version-1 ``.qmask.json`` converted beside it. Each question record becomes a run (its
evidence: heat map, captions, answer, previous answers, ...) and, when it holds a mask, prompts
or an accept flag, an object (mask, automatic mask, points, box, stroke layers, accept flag);
a label a person typed or accepted is a class and stays the object's class, a label derived from
the answer does not; an imported record is an object alone. Nothing is lost. And the version-2
JSON interchange round trips exactly."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from support.annotation import open_annotation
from engine.imaging.masks import decode_rle, encode_rle
from engine.project import ObjectRecord, PreviousAnswer, Project, QuestionRun, schema
from engine.project.codec import object_to_json, point_to_json, run_to_json
from engine.project.interchange import write_json_project
from engine.prompts import Box, Point
from support.legacy_v1 import point, v1_question, write_v1_json, write_v1_sqlite


def _rect(h, w, r0, r1, c0, c1) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[r0:r1, c0:c1] = True
    return m


A, N = point(12, 10, score=0.9), point(30, 22, label=0, source="user", score=None, created=2.0)
B, C = point(5, 25, score=0.7), point(8, 6, score=0.8)
M = {
    "cat_auto": _rect(30, 40, 5, 18, 8, 26), "add": _rect(30, 40, 18, 20, 8, 30), "erase": _rect(30, 40, 5, 7, 8, 12),
    "colour": _rect(30, 40, 22, 28, 2, 10), "dog": _rect(20, 24, 2, 12, 3, 15), "imported": _rect(20, 24, 14, 19, 1, 9),
}
M["cat"] = (_rect(30, 40, 5, 18, 8, 30) | M["add"]) & ~M["erase"]
HEAT = {k: np.random.default_rng(i).random((6, 6)).astype(np.float32) for i, k in enumerate(("cat", "colour", "dog"))}
EARLIER = {"answer": "lying", "alpha": 0.5, "edited": False, "time": 100.0}


def _doc() -> dict:
    """Three images as version-1 QMask kept them: a typed and accepted label with strokes, a box,
    user points and previous answers; a label derived from the answer; an accepted label; an
    imported mask; a question without a mask; a failed image."""
    cat = v1_question("what is the cat doing?", mask=M["cat"], auto_mask=M["cat_auto"], heat=HEAT["cat"],
                      answer="sleeping", label="cat", mask_source="user", accepted=True, points=[A, N],
                      auto_points=[A], captions=["a cat", "a sleeping cat"], itm=0.8, score=0.91, alpha=0.3,
                      models={"itm": "blip-large"}, timings={"heatmap": 0.5}, notes=["a note"],
                      strokes={"add": M["add"], "erase": M["erase"]}, box=[2.0, 3.0, 30.0, 25.5],
                      previous_answers=[EARLIER], points_asked=3, created=10.0, updated=20.0)
    colour = v1_question("what colour is it?", mask=M["colour"], heat=HEAT["colour"], answer="black and white",
                         label="black and white", points=[B], auto_points=[B], captions=["a cat"], itm=0.6,
                         score=0.8, created=11.0, updated=21.0)
    dog = v1_question("where is the dog?", mask=M["dog"], heat=HEAT["dog"], answer="on the sofa", label="dog",
                      accepted=True, points=[C], auto_points=[C], itm=0.9, score=0.95, created=12.0, updated=22.0)
    imported = v1_question("dog (2)", mask=M["imported"], mask_source="import", label="dog", created=13.0,
                           updated=13.0)
    raining = v1_question("is it raining?", heat=HEAT["dog"], answer="no", captions=["a dog"], itm=0.4,
                          created=14.0, updated=24.0)
    return {"created": 1.5, "meta": {"preset": "base"},
            "categories": [{"id": 4, "name": "cat"}, {"id": 9, "name": "dog"}],
            "images": [
                {"path": "images/im0.png", "width": 40, "height": 30, "status": "ok", "added": 5.0,
                 "questions": [cat, colour]},
                {"path": "images/im1.png", "width": 24, "height": 20, "status": "ok", "added": 6.0,
                 "questions": [dog, imported, raining]},
                {"path": "images/im2.png", "width": None, "height": None, "status": "failed", "error": "unreadable",
                 "added": 7.0, "questions": []}]}


def _points(points) -> list[dict]:
    return [point_to_json(p) for p in points]


def _check_converted(p: Project) -> dict[str, str]:
    """Every mask, class, accept flag and piece of evidence as the version-1 records held them;
    returns the question key -> object uid."""
    assert [(c.id, c.name) for c in p.categories] == [(4, "cat"), (9, "dog")]  # "black and white" is no class
    assert p.meta["preset"] == "base"
    im0, im1, im2 = (p.find_image(f"images/im{i}.png") for i in range(3))
    cat, colour = im0.objects
    np.testing.assert_array_equal(cat.mask(), M["cat"])
    np.testing.assert_array_equal(cat.auto_mask(), M["cat_auto"])
    np.testing.assert_array_equal(decode_rle(cat.stroke_add_rle), M["add"])
    np.testing.assert_array_equal(decode_rle(cat.stroke_erase_rle), M["erase"])
    assert (_points(cat.points), _points(cat.auto_points), cat.box) == ([A, N], [A], Box(2.0, 3.0, 30.0, 25.5))
    assert (cat.category, cat.source, cat.question, cat.accepted, cat.proposal, cat.mask_source) == \
        ("cat", "question", "what is the cat doing?", True, False, "user")
    assert (cat.mask_score, cat.created, cat.updated, cat.order, cat.review) == (0.91, 10.0, 20.0, 0, 0.0)
    np.testing.assert_array_equal(colour.mask(), M["colour"])
    assert (colour.category, colour.accepted, colour.mask_source, colour.order) == (None, False, "auto", 1)
    assert colour.provenance_iou() == 1.0 and _points(colour.points) == [B] and not colour.edited
    r_cat, r_colour = im0.runs
    np.testing.assert_allclose(r_cat.heatmap, HEAT["cat"], atol=1e-3)
    assert (r_cat.question, r_cat.answer, r_cat.captions, r_cat.itm_probability) == \
        ("what is the cat doing?", "sleeping", ["a cat", "a sleeping cat"], 0.8)
    assert (r_cat.alpha, r_cat.models, r_cat.timings, r_cat.notes, r_cat.points_asked, r_cat.instances) == \
        (0.3, {"itm": "blip-large"}, {"heatmap": 0.5}, ["a note"], 3, "one")
    assert r_cat.previous_answers == [PreviousAnswer("lying", 0.5, False, 100.0)] and _points(r_cat.auto_points) == [A]
    assert (r_cat.object_uids, r_cat.created, r_cat.updated) == ([cat.uid], 10.0, 20.0)
    assert (r_colour.answer, r_colour.object_uids) == ("black and white", [colour.uid])  # the answer stays in the run
    dog, imported = im1.objects
    np.testing.assert_array_equal(dog.mask(), M["dog"])
    np.testing.assert_array_equal(imported.mask(), M["imported"])
    assert (dog.category, dog.accepted, dog.question, dog.review) == ("dog", True, "where is the dog?", 0.0)
    assert (imported.category, imported.source, imported.question, imported.mask_source, imported.accepted) == \
        ("dog", "import", None, "import", False)  # an imported mask: an object alone, no run
    assert [(r.question, r.answer, r.object_uids) for r in im1.runs] == \
        [("where is the dog?", "on the sofa", [dog.uid]), ("is it raining?", "no", [])]
    assert (im2.status, im2.error, im2.objects, im2.runs) == ("failed", "unreadable", [], [])
    rows = p.image_rows([im0.id, im1.id, im2.id])
    assert [(rows[i.id].objects, rows[i.id].accepted_objects, rows[i.id].accepted) for i in (im0, im1)] == \
        [(2, 1, False), (2, 1, False)]
    assert (rows[im0.id].state, rows[im1.id].state, rows[im2.id].state) == ("edited", "answered", "failed")
    assert p.summary() == {"images": 3, "ok": 2, "failed": 1, "pending": 0, "objects": 4, "accepted": 2,
                           "questions": 4}
    return {"what is the cat doing?": cat.uid, "what colour is it?": colour.uid, "where is the dog?": dog.uid,
            "dog (2)": imported.uid}


def test_a_schema_1_project_is_converted_when_opened(tmp_path):
    path = write_v1_sqlite(tmp_path / "old.qmask", _doc())
    con = sqlite3.connect(path)
    logged = con.execute("SELECT id, question_key, action FROM edits ORDER BY id").fetchall()
    con.close()
    with Project.open(path) as p:
        uids = _check_converted(p)
        edits = p.edits()
        # the edit log is kept whole, and each entry of a question names its object
        assert [(e.id, e.question_key, e.action) for e in edits] == logged
        expected = {**uids, "is it raining?": None, None: None}
        assert all(e.object_uid == expected[e.question_key] for e in edits) and len(edits) == 11
        assert {e.question_key for e in edits} == set(expected)
        # the app opens it: the object's stroke layers are back, its run shown with it
        ann = open_annotation(p, tmp_path / "images" / "im0.png")
        ann.select(uids["what is the cat doing?"])
        assert np.array_equal(ann.corrections.add, M["add"]) and np.array_equal(ann.corrections.erase, M["erase"])
        assert np.array_equal(ann.mask, M["cat"]) and ann.answer.answer == "sleeping"
        assert ann.previous_answer.answer == "lying" and ann.category == "cat" and ann.accepted
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION == 3
    assert con.execute("PRAGMA application_id").fetchone()[0] == schema.APPLICATION_ID
    assert "questions" not in {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    con.close()
    with Project.open(path) as again:  # converted once: the same objects, nothing done again
        assert _check_converted(again) == uids
    assert sorted(f.name for f in tmp_path.iterdir()) == ["old.qmask"]  # no journal or copy left beside it


def test_a_failed_conversion_leaves_the_schema_1_project_as_it_was(tmp_path, monkeypatch):
    path = write_v1_sqlite(tmp_path / "old.qmask", _doc())
    from engine.project import legacy

    def boom(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(legacy, "objects_from_question_rows", boom)
    with pytest.raises(Exception, match="left as it was"):
        Project.open(path)
    monkeypatch.undo()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    assert con.execute("SELECT COUNT(*) FROM questions").fetchone()[0] == 5
    con.close()
    with Project.open(path) as p:  # the next open converts it
        _check_converted(p)


def test_a_version_1_json_is_converted_the_same_way(tmp_path):
    path = write_v1_json(tmp_path / "old.qmask.json", _doc())
    raw = path.read_bytes()
    with Project.open(path) as p:
        assert p.path == tmp_path / "old.qmask" and "was converted into old.qmask" in p.notice
        uids = _check_converted(p)
        assert {e.action for e in p.edits()} == {"convert"}
    assert path.read_bytes() == raw  # the JSON is left as it was
    with Project.open(path) as again:  # the earlier conversion is used
        assert "converted earlier" in again.notice and _check_converted(again) == uids


def _v2_project(tmp_path) -> Project:
    """A project of objects and runs with every field set somewhere."""
    p = Project.create(tmp_path / "p.qmask")
    p.set_classes(["cat", "dog"])
    p.set_category_color("dog", (10, 200, 30))
    p.set_meta("preset", "base")
    a = p.add_image(tmp_path / "a.png", width=40, height=30, sha256="ab" * 32)
    a.mark_ok(40, 30)
    p.update_image(a)
    run = QuestionRun(question="where are the cats?", answer="two", captions=["two cats", "cats"], itm_probability=0.7,
                      heatmap=HEAT["cat"], auto_points=[Point(12, 10, score=0.9, source="auto")], points_asked=4,
                      alpha=0.35, instances="several", models={"itm": "x", "qa": "y"}, random_weights=True,
                      timings={"heatmap": 0.25}, notes=["Only 3 distinct captions"],
                      previous_answers=[PreviousAnswer("three", 0.5, True, 123.5)], created=50.0, updated=60.0)
    kept = ObjectRecord(category="cat", source="question", question=run.question, proposal=False,
                        auto_points=list(run.auto_points), points=list(run.auto_points), mask_score=0.88, order=0)
    kept.set_mask(M["cat_auto"], source="auto", score=0.88)
    kept.auto_mask_rle = dict(kept.mask_rle)
    proposal = ObjectRecord(category="cat", source="question", question=run.question, proposal=True, order=1)
    proposal.set_mask(M["colour"], source="auto", score=0.7)
    proposal.auto_mask_rle = dict(proposal.mask_rle)
    manual = ObjectRecord(category="dog", source="manual", accepted=True, order=2, box=Box(1.5, 2, 20, 25.25),
                          points=[Point(5, 6), Point(7, 8, label=0)])
    manual.set_mask(M["cat"], source="user")
    manual.stroke_add_rle, manual.stroke_erase_rle = encode_rle(M["add"]), encode_rle(M["erase"])
    imported = ObjectRecord(category=None, source="import", mask_source="import", order=3, attributes={"iscrowd": 0})
    imported.set_mask(_rect(30, 40, 0, 3, 0, 3), source="import")
    run.object_uids = [kept.uid, proposal.uid]
    p.put_changes(a, runs=[run, QuestionRun(question="is it dark?", answer="no")],
                  objects=[kept, proposal, manual, imported])
    b = p.add_image(tmp_path / "b.png")
    b.mark_failed("cannot be read")
    p.update_image(b)
    p.add_image(tmp_path / "c.png")
    return p


def _everything(p: Project) -> tuple:
    images = [(i.path, i.status, i.error, i.width, i.height, i.sha256,
               [object_to_json(o) for o in i.objects], [(o.uid, o.review, o.reasons) for o in i.objects],
               [run_to_json(r) for r in i.runs]) for i in p.iter_images()]
    return images, [(c.id, c.name, c.color) for c in p.categories], p.meta.get("preset")


def test_a_version_2_json_round_trip_gives_the_same_objects_and_runs(tmp_path):
    p = _v2_project(tmp_path)
    before = _everything(p)
    assert len(before[0][0][6]) == 4 and len(before[0][0][8]) == 2
    (tmp_path / "copy").mkdir()
    out = write_json_project(p, tmp_path / "copy" / "p.qmask.json")
    doc = json.loads(out.read_text())
    assert doc["version"] == 2 and [len(i["objects"]) for i in doc["images"]] == [4, 0, 0]
    p.close()
    with Project.open(out) as back:
        images, categories, preset = _everything(back)
    assert (categories, preset) == before[1:]
    for got, want in zip(images, before[0]):
        assert got[0] == "../" + want[0]  # relative to the JSON's folder, the same file
        assert got[1:] == want[1:]
    assert len(images) == 3
