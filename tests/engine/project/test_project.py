"""Project store: objects and question runs, one transaction per write, schema migrations, moved
images, review order, and the JSON interchange file."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import ProjectError
from engine.project import (ImageRecord, ObjectRecord, Project, QuestionRun, file_sha256, proposals_from_chain,
                            schema)
from engine.project import tables
from engine.project.codec import heatmap_from_json, heatmap_to_json
from engine.project.interchange import JSON_MIGRATIONS, JSON_VERSION, write_json_project
from engine.project.review import heat_mask_disagreement, object_review
from engine.prompts import Box, Point
from engine.results import (
    AnswerResult, CaptionsResult, ChainResult, FusionResult, HeatmapResult, MaskCandidate,
    SegmentationResult,
)


def _png(path: Path, w: int = 40, h: int = 30, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(path)
    return path


def _mask(h=30, w=40, box=(5, 10, 3, 20)) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[box[0]:box[1], box[2]:box[3]] = True
    return m


def _run(question="what is it?", heat=None, **kw) -> QuestionRun:
    return QuestionRun(question=question, heatmap=heat, **kw)


def _object(question: str | None = "what is it?", mask=None, **kw) -> ObjectRecord:
    """An object the run of ``question`` proposed (None: a manual one), with its automatic mask."""
    o = ObjectRecord(question=question, source="question" if question else "manual", **kw)
    if mask is not None:
        o.set_mask(mask, source="auto", score=0.9)
        o.auto_mask_rle = dict(o.mask_rle)
    return o


def _chain(mask: np.ndarray, question="what is it?") -> ChainResult:
    h, w = mask.shape
    heat = np.zeros((6, 6), np.float32)
    heat[1:3, 1:3] = 1.0
    auto = (Point(10.5, 7.5, score=0.8, source="auto"), Point(20.0, 5.0, score=0.4, source="auto"))
    cands = (MaskCandidate(mask=mask, low_res_logits=np.zeros((256, 256), np.float32), iou=0.87),
             MaskCandidate(mask=~mask, low_res_logits=np.zeros((256, 256), np.float32), iou=0.5))
    return ChainResult(
        image_id="abc", image_size=(w, h), question=question,
        heatmap=HeatmapResult(question=question, question_map=heat, token_maps=heat[None],
                              tokens=("it",), itm_probability=0.7),
        points=auto, segmentation=SegmentationResult(candidates=cands, points=auto),
        chosen=0, fusion=FusionResult(fused_map=heat, alpha=0.4),
        captions=CaptionsResult(captions=("a cat", "a dog"), rounds=1, complete=True),
        answer=AnswerResult(answer="cat"), timings={"heatmap": 0.1},
        models={"itm": "tiny-itm"}, random_weights=True)


def _debris(folder: Path) -> list[str]:
    return sorted(f.name for f in folder.iterdir() if f.name.endswith((".tmp", ".new", "-wal", "-shm", "-journal")))


def test_create_write_reopen_round_trip(tmp_path):
    _png(tmp_path / "imgs" / "a.png")
    p = Project.create(tmp_path / "p.qmask")
    img = p.add_image(tmp_path / "imgs" / "a.png", read_size=True)
    assert (img.path, img.width, img.height) == ("imgs/a.png", 40, 30)
    heat = np.random.default_rng(0).random((24, 24)).astype(np.float32) * 1e-4
    auto = [Point(1, 2, score=0.5, source="auto")]
    run = _run(heat=heat, captions=["a", "b"], answer="cat", itm_probability=0.3, auto_points=auto,
               points_asked=3, models={"itm": "x"}, random_weights=True, instances="several")
    obj = _object(mask=_mask(), auto_points=auto, points=auto + [Point(3, 4, label=0)], box=Box(1, 2, 30, 25),
                  category="cat", proposal=True, order=3)
    manual = _object(None, mask=_mask(box=(0, 4, 0, 4)), category="dog", accepted=True)
    run.object_uids = [obj.uid]
    p.put_changes(img, objects=[obj, manual], runs=[run], source="user")
    img.mark_ok(40, 30)
    p.update_image(img)
    p.set_meta("preset", "base")
    p.close()

    p2 = Project.open(tmp_path / "p.qmask")
    assert p2.count_images() == 1 and [c.name for c in p2.categories] == ["cat", "dog"]  # classes as they came
    assert p2.meta["preset"] == "base" and set(p2.meta) == {"created", "preset"}
    img2 = p2.find_image(tmp_path / "imgs" / "a.png")
    assert img2.status == "ok" and (img2.width, img2.height) == (40, 30)
    assert [o.uid for o in img2.objects] == [manual.uid, obj.uid]  # drawing order, bottom first
    o2 = img2.find_object(obj.uid)
    np.testing.assert_array_equal(o2.mask(), _mask())
    assert o2.points == obj.points and o2.auto_points == auto and o2.box == Box(1, 2, 30, 25)
    assert o2.points[1].label == 0 and o2.points[1].source == "user"
    assert (o2.category, o2.question, o2.source, o2.proposal, o2.order) == ("cat", "what is it?", "question", True, 3)
    assert o2.provenance_iou() == 1.0 and o2.edited and o2.touched  # a user point was added
    m2 = img2.find_object(manual.uid)
    assert (m2.category, m2.question, m2.source, m2.accepted) == ("dog", None, "manual", True)
    r2 = img2.find_run(" what is  it? ")
    np.testing.assert_allclose(r2.heatmap, heat, rtol=1e-3, atol=1e-3 * heat.max())
    assert (r2.answer, r2.captions, r2.random_weights, r2.models) == ("cat", ["a", "b"], True, {"itm": "x"})
    assert (r2.auto_points, r2.points_asked, r2.instances, r2.object_uids) == (auto, 3, "several", [obj.uid])
    assert r2.itm_probability == pytest.approx(0.3)
    assert p2.find_image("imgs/a.png").id == img2.id == p2.get_image(img2.id).id
    assert p2.find_image("imgs/other.png") is None and p2.get_image(img2.id + 1) is None
    row = p2.image_rows([img2.id])[img2.id]
    assert (row.objects, row.accepted_objects, row.accepted, row.question, row.answer) == (2, 1, False, "what is it?", "cat")
    p2.close()
    # the file is a QMask SQLite database at the current schema, and nothing else is left beside it
    con = sqlite3.connect(tmp_path / "p.qmask")
    assert con.execute("PRAGMA application_id").fetchone()[0] == schema.APPLICATION_ID
    assert con.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION == 3
    con.close()
    assert _debris(tmp_path) == []


def test_one_run_per_question_and_one_object_per_uid(tmp_path):
    img = ImageRecord(path="a.png", runs=[_run("what  is it?"), _run("where?")])
    assert img.find_run(" what is  it? ").question == "what  is it?" and img.find_run("who?") is None
    # the store keys runs by the normalised question, objects by their uid
    p = Project.create(tmp_path / "p.qmask")
    stored = p.add_image("a.png", width=4, height=4)
    p.put_run(stored, _run("what  is it?"))
    p.put_run(stored, _run("what is it?", answer="dog"))
    p.put_run(stored, _run("where?"))
    obj = _object(mask=_mask(4, 4, (0, 2, 0, 2)))
    p.put_object(stored, obj)
    obj.category = "dog"
    p.put_object(stored, obj)
    again = p.find_image("a.png")
    assert [r.answer for r in again.runs] == ["dog", None] and [r.key for r in again.runs] == ["what is it?", "where?"]
    assert [(o.uid, o.category) for o in again.objects] == [(obj.uid, "dog")]
    assert p.remove_run(again, "what is it?") and [r.key for r in p.find_image("a.png").runs] == ["where?"]
    assert not p.remove_run(again, "what is it?")
    assert [o.uid for o in p.find_image("a.png").objects] == [obj.uid]  # a run's objects are the image's
    p.remove_objects(again, [obj.uid])
    assert p.find_image("a.png").objects == [] and p.summary()["objects"] == 0


def test_failed_write_changes_nothing(tmp_path, monkeypatch):
    p = Project.create(tmp_path / "p.qmask")
    img = p.add_image("a.png", width=4, height=4)
    before = p.edits(img.id)

    def boom(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(tables, "log_edit", boom)  # fails after the object's row was written
    with pytest.raises(ProjectError, match="Nothing of this change was written"):
        p.put_changes(img, objects=[_object(mask=_mask(4, 4, (0, 2, 0, 2)))], runs=[_run(answer="a")])
    monkeypatch.undo()
    other = Project.open(p.path)  # another connection sees what is on disk
    again = other.find_image("a.png")
    assert again.objects == [] and again.runs == [] and other.edits(img.id) == before
    row = other.image_rows([img.id])[img.id]
    assert row.question is None and row.objects == 0
    other.close()
    p.close()
    assert _debris(tmp_path) == []


def test_every_write_is_committed_at_once_and_an_interrupted_one_rolls_back(tmp_path, monkeypatch):
    """No save: each write is on disk when the call returns (another connection sees it); a
    write interrupted mid-transaction (KeyboardInterrupt) leaves the previous state."""
    p = Project.create(tmp_path / "p.qmask")
    reader = Project.open(tmp_path / "p.qmask")
    version = reader.data_version()
    p.add_image("a.png", width=4, height=4)
    assert reader.count_images() == 1 and reader.data_version() != version
    seq = reader.last_seq()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tables, "refresh_summary", crash)
    img = p.find_image("a.png")
    with pytest.raises(KeyboardInterrupt):
        p.put_changes(img, objects=[_object()], runs=[_run()])
    monkeypatch.undo()
    again = reader.find_image("a.png")
    assert again.objects == [] and again.runs == [] and reader.last_seq() == seq
    p.put_changes(img, objects=[_object()], runs=[_run()])  # the connection is usable again
    changed, newest = reader.changed_since(seq)
    assert [r.name for r in changed] == ["a.png"] and newest > seq and changed[0].question == "what is it?"
    assert reader.changed_since(newest) == ([], newest)
    p.close()
    reader.close()
    assert _debris(tmp_path) == []


def test_newer_schema_is_refused_and_older_ones_migrate(tmp_path, monkeypatch):
    path = tmp_path / "p.qmask"
    Project.create(path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version={schema.SCHEMA_VERSION + 1}")
    con.close()
    before = path.read_bytes()
    with pytest.raises(ProjectError, match="newer QMask"):
        Project.open(path)
    assert path.read_bytes() == before

    # a migration: pretend this QMask has schema SCHEMA_VERSION + 1, which adds a column
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version={schema.SCHEMA_VERSION}")
    con.execute("INSERT INTO images (path, name, added) VALUES ('a.png', 'a.png', 0)")
    con.commit()
    con.close()
    monkeypatch.setitem(schema.MIGRATIONS, schema.SCHEMA_VERSION, "ALTER TABLE images ADD COLUMN rating INTEGER")
    monkeypatch.setattr(schema, "SCHEMA_VERSION", schema.SCHEMA_VERSION + 1)
    p = Project.open(path)
    assert [img.path for img in p.iter_images()] == ["a.png"]
    p.close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    assert "rating" in [r[1] for r in con.execute("PRAGMA table_info(images)")]
    con.close()
    # a step that fails rolls back: the schema stays as it was
    monkeypatch.setitem(schema.MIGRATIONS, schema.SCHEMA_VERSION, "ALTER TABLE nope ADD COLUMN x")
    monkeypatch.setattr(schema, "SCHEMA_VERSION", schema.SCHEMA_VERSION + 1)
    with pytest.raises(ProjectError, match="left as it was"):
        Project.open(path)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION - 1
    con.close()


def test_json_project_versions_migrate_and_newer_ones_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "p.qmask.json"
    path.write_text(json.dumps({"schema": "qmask.project", "version": JSON_VERSION + 1, "images": []}))
    with pytest.raises(ProjectError, match="newer QMask"):
        Project.open(path)
    assert not (tmp_path / "p.qmask").exists()

    def rename(doc):  # pretend the interchange format's next version renamed "images"
        doc["images"] = doc.pop("files")
        return doc

    monkeypatch.setitem(JSON_MIGRATIONS, JSON_VERSION, rename)
    monkeypatch.setattr("engine.project.interchange.JSON_VERSION", JSON_VERSION + 1)
    path.write_text(json.dumps({"schema": "qmask.project", "version": JSON_VERSION,
                                "files": [{"path": "a.png", "width": 2, "height": 2}]}))
    p = Project.open(path)
    assert [img.path for img in p.iter_images()] == ["a.png"] and p.path == tmp_path / "p.qmask"
    out = write_json_project(p, tmp_path / "out.qmask.json")
    assert json.loads(out.read_text())["version"] == JSON_VERSION + 1


@pytest.mark.parametrize("doc, match", [
    ("{not json", "broken JSON"),
    (json.dumps({"schema": "other"}), "not a QMask project"),
    (json.dumps({"schema": "qmask.project", "version": "1"}), "positive integer"),
    (json.dumps({"schema": "qmask.project", "version": 1, "images": [{"width": 3}]}), r"images\[0\]: missing field 'path'"),
    (json.dumps({"schema": "qmask.project", "version": 1, "images": [{"path": "a", "status": "??"}]}), "status"),
    (json.dumps({"schema": "qmask.project", "version": 1, "images": [
        {"path": "a", "width": 2, "height": 2, "questions": [{"question": "q", "mask": {"size": [2, 2], "counts": [1]}}]}]}),
     r"questions\[0\]\.mask: RLE counts cover 1 pixels"),
    (json.dumps({"schema": "qmask.project", "version": 1, "images": [
        {"path": "a", "width": 3, "height": 2, "questions": [{"question": "q", "mask": {"size": [2, 2], "counts": [4]}}]}]}),
     "does not match the image"),
    (json.dumps({"schema": "qmask.project", "version": 1, "images": [
        {"path": "a", "questions": [{"question": "q", "points": [{"x": 1, "y": 2, "label": 7}]}]}]}),
     r"points\[0\]"),
    (json.dumps({"schema": "qmask.project", "version": 1, "images": [{"path": "a"}, {"path": "a"}]}), "twice"),
    (json.dumps({"schema": "qmask.project", "version": 2, "images": [
        {"path": "a", "width": 3, "height": 2, "objects": [{"uid": "a1", "mask": {"size": [2, 2], "counts": [4]}}]}]}),
     r"objects\[0\]: mask size \[2, 2\] does not match the image"),
    (json.dumps({"schema": "qmask.project", "version": 2, "images": [
        {"path": "a", "objects": [{"uid": "a1"}]}, {"path": "b", "objects": [{"uid": "a1"}]}]}), "uid appears twice"),
    (json.dumps({"schema": "qmask.project", "version": 2, "images": [{"path": "a", "objects": [{"uid": "a/1"}]}]}),
     r"objects\[0\]\.uid"),
    (json.dumps({"schema": "qmask.project", "version": 2, "images": [{"path": "a", "runs": [{"answer": "x"}]}]}),
     r"runs\[0\]: missing field 'question'"),
    (json.dumps({"schema": "qmask.project", "version": 2, "images": [
        {"path": "a", "objects": [{"uid": "a1", "source": "magic"}]}]}), r"objects\[0\]\.source"),
])
def test_invalid_json_files_give_clear_errors(tmp_path, doc, match):
    path = tmp_path / "p.qmask.json"
    path.write_text(doc)
    with pytest.raises(ProjectError, match=match):
        Project.open(path)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["p.qmask.json"]  # nothing converted, no debris
    assert path.read_text() == doc


def test_missing_file_error(tmp_path):
    with pytest.raises(ProjectError, match="No project file"):
        Project.open(tmp_path / "nope.qmask")
    with pytest.raises(ProjectError, match="No project file"):
        Project.open(tmp_path / "nope.qmask.json")
    Project.create(tmp_path / "x.qmask").close()
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(tmp_path / "x.qmask")
    with pytest.raises(ProjectError, match="does not exist"):
        Project.create(tmp_path / "no" / "x.qmask")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["x.qmask"]


def test_missing_images_and_relocate(tmp_path):
    old = tmp_path / "old"
    a = _png(old / "sub" / "a.png", value=10)
    b = _png(old / "b.png", value=20)
    c = _png(old / "c.png", value=30)
    (tmp_path / "proj").mkdir()
    p = Project.create(tmp_path / "proj" / "p.qmask")
    for f in (a, b, c):
        p.add_image(f, read_size=True, sha256=file_sha256(f))
    p.close()
    # the images move to a new folder; c is replaced by a different picture of the same name
    new = tmp_path / "moved"
    _png(new / "sub" / "a.png", value=10)
    _png(new / "deep" / "er" / "b.png", value=20)
    _png(new / "c.png", value=99)
    for f in (a, b, c):
        f.unlink()
    p2 = Project.open(p.path)  # opening never fails on missing images
    assert {img.name for img in p2.missing_images()} == {"a.png", "b.png", "c.png"}
    report = p2.relocate(new)
    assert sorted(report.found) == ["../old/b.png", "../old/sub/a.png"]
    assert report.hash_mismatch == ["../old/c.png"]
    assert [img.name for img in p2.missing_images()] == ["c.png"]
    assert p2.find_image(new / "sub" / "a.png") is not None
    assert p2.find_image(new / "deep" / "er" / "b.png") is not None
    assert "1 with the same name but different content" in str(report)
    p2.close()
    p3 = Project.open(p.path)  # the relocation was committed
    assert p3.find_image("../moved/sub/a.png") is not None
    assert [e.action for e in p3.edits(p3.find_image("../moved/sub/a.png").id)] == ["relocate"]


def test_json_copy_elsewhere_rewrites_relative_paths(tmp_path):
    _png(tmp_path / "imgs" / "a.png")
    p = Project.create(tmp_path / "p.qmask")
    p.add_image(tmp_path / "imgs" / "a.png", read_size=True)
    (tmp_path / "elsewhere").mkdir()
    write_json_project(p, tmp_path / "elsewhere" / "q.qmask.json")
    q = Project.open(tmp_path / "elsewhere" / "q.qmask.json")
    assert q.path == tmp_path / "elsewhere" / "q.qmask"
    assert [img.path for img in q.iter_images()] == ["../imgs/a.png"] and not q.missing_images()


def test_record_from_chain(tmp_path):
    mask = _mask()
    chain = _chain(mask)
    p = Project.create(tmp_path / "p.qmask")
    run, (obj,) = p.record_chain(tmp_path / "img.png", chain, category="animal")
    img = p.find_image(tmp_path / "img.png")
    assert (img.width, img.height, img.status) == (40, 30, "ok")
    np.testing.assert_array_equal(obj.mask(), mask)
    np.testing.assert_array_equal(img.objects[0].mask(), mask)
    assert obj.auto_mask_rle == obj.mask_rle and obj.mask_score == pytest.approx(0.87)
    assert (obj.category, obj.question, obj.source, obj.proposal) == ("animal", "what is it?", "batch", True)
    assert obj.points == list(chain.points) and len(obj.auto_points) == 2 and not obj.edited and not obj.touched
    assert run.answer == "cat" and run.captions == ["a cat", "a dog"] and run.alpha == 0.4
    assert run.itm_probability == pytest.approx(0.7) and run.models == {"itm": "tiny-itm"}
    assert run.random_weights and len(run.auto_points) == 2 and run.object_uids == [obj.uid]
    assert img.runs[0].object_uids == [obj.uid]
    assert p.category("animal").id == 1
    # the user edits: the mask changes, provenance IoU drops, and the edit is logged as the user's
    edited = mask.copy()
    edited[10:20, 3:20] = True
    obj.set_mask(edited)
    assert obj.mask_source == "user" and obj.edited and obj.touched
    assert obj.provenance_iou() == pytest.approx(mask.sum() / edited.sum())
    p.put_object(img, obj, source="user")
    stored = p.find_image(tmp_path / "img.png").objects[0]
    assert stored.mask_source == "user" and stored.provenance_iou() == pytest.approx(mask.sum() / edited.sum())
    assert [(e.source, e.action, e.object_uid) for e in p.edits(img.id)] == [("chain", "chain", None),
                                                                            ("user", "edit", obj.uid)]
    assert p.image_rows([img.id])[img.id].state == "edited"
    direct_run, direct = proposals_from_chain(_chain(mask), category="x")
    assert [o.category for o in direct] == ["x"] and direct[0].points == list(_chain(mask).points)
    assert direct_run.object_uids == [direct[0].uid] and direct[0].proposal and not direct[0].accepted
    # rerunning the same question replaces the run instead of duplicating it, and keeps the object
    # the user edited beside the new proposal
    _, (fresh,) = p.record_chain(tmp_path / "img.png", _chain(mask))
    again = p.find_image(tmp_path / "img.png")
    assert len(again.runs) == 1 and again.runs[0].object_uids == [fresh.uid, obj.uid]
    assert {o.uid: o.mask_source for o in again.objects} == {obj.uid: "user", fresh.uid: "auto"}
    # and once more: the untouched proposal is replaced, the edited object stays
    _, (third,) = p.record_chain(tmp_path / "img.png", _chain(mask))
    assert {o.uid for o in p.find_image(tmp_path / "img.png").objects} == {obj.uid, third.uid}
    assert p.summary()["questions"] == 1 and p.summary()["objects"] == 2


def test_heatmap_compact_encoding():
    heat = np.random.default_rng(1).random((24, 24)).astype(np.float32) * 3e-6
    d = heatmap_to_json(heat)
    assert len(json.dumps(d)) < 2000
    np.testing.assert_allclose(heatmap_from_json(d), heat, atol=1e-3 * heat.max())
    zeros = heatmap_from_json(heatmap_to_json(np.zeros((3, 3))))
    assert zeros.shape == (3, 3) and not zeros.any()


def test_review_order(tmp_path):
    heat = np.zeros((4, 4), np.float32)
    heat[:2, :2] = 1.0
    good_mask = np.zeros((40, 40), bool)
    good_mask[:20, :20] = True
    wrong_mask = np.zeros((40, 40), bool)
    wrong_mask[20:, 20:] = True
    assert heat_mask_disagreement(heat, good_mask) == pytest.approx(0.0, abs=1e-6)
    assert heat_mask_disagreement(heat, wrong_mask) == 1.0

    p = Project.create(tmp_path / "p.qmask")

    def image(name, mask, itm, accepted=False):
        img = p.add_image(tmp_path / name, width=40, height=40)
        img.status = "ok"
        p.update_image(img)
        p.put_changes(img, runs=[_run(heat=heat, itm_probability=itm)],
                      objects=[_object(mask=mask, accepted=accepted)], source="chain")
        return p.find_image(name)

    bad = p.add_image(tmp_path / "bad.png")
    bad.mark_failed("corrupt")
    p.update_image(bad)
    images = [image("fine.png", good_mask, 0.95), image("wrong.png", wrong_mask, 0.95),
              image("doubt.png", good_mask, 0.05), image("done.png", wrong_mask, 0.01, accepted=True)]
    ids = p.image_ids("review")
    rows = p.image_rows(ids)
    order = [rows[i].path for i in ids]
    assert order[:3] == ["wrong.png", "doubt.png", "fine.png"] or order[:3] == ["doubt.png", "wrong.png", "fine.png"]
    assert order[3] == "done.png" and order[-1] == "bad.png"
    assert rows[ids[-1]].state == "failed" and rows[ids[3]].state == "accepted"

    def need(img):  # an image's need: its neediest object not yet accepted
        return max((object_review(o, img.runs[0], 1)[0] for o in img.objects if not o.accepted), default=0.0)

    assert need(images[3]) == 0.0 and images[3].objects[0].review == 0.0
    assert need(images[1]) > need(images[0]) and need(images[2]) > need(images[0])
    assert any("doubts" in r for r in images[2].objects[0].reasons)  # BLIP's doubt, in words
    for img in images:  # the stored column is what the objects say
        assert rows[img.id].review == pytest.approx(need(img))
        assert img.objects[0].review == pytest.approx(object_review(img.objects[0], img.runs[0], 1)[0])
    queue = p.review_queue()
    assert [uid for _, uid, _ in queue][:2] in ([images[1].objects[0].uid, images[2].objects[0].uid],
                                                [images[2].objects[0].uid, images[1].objects[0].uid])
    assert images[3].objects[0].uid not in [uid for _, uid, _ in queue]  # accepted: needs nobody
    assert [rows[i].path for i in p.image_ids("name")] == sorted(order)
    assert p.image_ids("added") == sorted(ids)


def test_the_list_reads_only_the_rows_it_shows(tmp_path):
    """A list screen of a 600-image project reads 50 image rows and no object or run; an
    image's objects and runs are read when it is shown."""
    p = Project.create(tmp_path / "big.qmask")
    rng = np.random.default_rng(0)
    images = [ImageRecord(path=f"images/{i:05d}.jpg", width=64, height=48, status="ok",
                          objects=[_object(f"q{i % 3}", mask=_mask(48, 64, (i % 20, 30, 2, 40)))],
                          runs=[_run(f"q{i % 3}", heat=rng.random((6, 6)).astype(np.float32), captions=["c"] * 5)])
              for i in range(600)]
    p.import_records(images)
    p.close()
    q = Project.open(tmp_path / "big.qmask")
    ids = q.image_ids("review")
    rows = q.image_rows(ids[:50])
    assert len(ids) == 600 and len(rows) == 50 and all(r.objects == 1 for r in rows.values())
    assert q.reads == {"images": 50, "objects": 0, "runs": 0}
    first = q.get_image(ids[0])
    assert len(first.objects) == 1 and len(first.runs) == 1 and q.reads == {"images": 51, "objects": 1, "runs": 1}
    assert q.summary()["questions"] == 600 == q.summary()["objects"]
    assert os.path.getsize(tmp_path / "big.qmask") > 0


def test_own_writes_are_told_from_others_even_while_the_next_one_is_in_its_transaction(tmp_path):
    """The app's watcher (gui.workspace.workspace.Workspace.check_external) skips the project's own writes. When the
    store thread is inside the next write of the same image (its change number already taken),
    the one before, committed, must still read as ours: else the window reloaded the image from
    the project and showed an older question over the one being asked."""
    import threading

    p = Project.create(tmp_path / "p.qmask")
    p.add_images(["a.png"])
    img = p.find_image("a.png")
    seen = p.last_seq()
    p.put_changes(img, objects=[_object()], runs=[_run()])
    rows: list = []
    with p._db.write() as con:  # the next write of the same image, not committed yet
        p._db.bump(con, img.id)
        # the watcher reads on its own thread (its own connection): it sees only the committed write
        t = threading.Thread(target=lambda: rows.extend(p.changed_since(seen)[0]))
        t.start()
        t.join()
    assert [r.name for r in rows] == ["a.png"]
    assert all(p.is_own_write(r.seq) for r in rows)
    other = Project.open(tmp_path / "p.qmask")  # another process's write is not ours
    other.put_run(other.find_image("a.png"), _run("and this?"))
    changed, newest = p.changed_since(seen)
    assert not p.is_own_write(changed[0].seq)
    p.forget_own_writes(newest)
    assert not any(p.is_own_write(s) for s in range(newest + 1))
    other.close()
    p.close()


@pytest.mark.parametrize("table, part, bad", [("objects", "strokes", {"add": [1, 2, 3]}), ("objects", "box", [1, 2]),
                                              ("runs", "previous_answers", [{"alpha": 0.5}]),
                                              ("runs", "points_asked", -2)])
def test_a_damaged_part_of_a_row_is_refused_as_damaged_naming_it(tmp_path, table, part, bad):
    """Another program wrote nonsense into a row's ``extra``: reading the image says the project is
    damaged and which part, never a bare validation message."""
    p = Project.create(tmp_path / "p.qmask")
    img = p.add_image("a.png", width=40, height=30)
    p.put_changes(img, objects=[_object(mask=_mask())], runs=[_run()])
    p.close()
    con = sqlite3.connect(tmp_path / "p.qmask")
    extra = json.loads(con.execute(f"SELECT extra FROM {table}").fetchone()[0])
    extra[part] = bad
    con.execute(f"UPDATE {table} SET extra = ?", (json.dumps(extra),))
    con.commit()
    con.close()
    what = "An object" if table == "objects" else "A question run"
    with Project.open(tmp_path / "p.qmask") as damaged, \
            pytest.raises(ProjectError, match=f"{what} of the project is damaged") as err:
        damaged.find_image("a.png")
    assert part in str(err.value)
