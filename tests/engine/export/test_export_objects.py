"""Exports write one instance per object: a manual object too, COCO annotation ids the objects'
row ids (the same from one export to the next), the provenance file naming each object, its
run's answer and both edit logs, and PNG labels following the drawing order."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine.export import export_project
from engine.project import ObjectRecord, Project, QuestionRun
from engine.prompts import Point
from support.masks import blob, ring_with_hole

pycoco = pytest.importorskip("pycocotools.coco")


def _object(mask, question=None, **kw) -> ObjectRecord:
    o = ObjectRecord(question=question, source="question" if question else "manual", **kw)
    o.set_mask(mask, source="auto", score=0.9 if question else None)
    o.auto_mask_rle = dict(o.mask_rle)
    return o


@pytest.fixture()
def project(tmp_path) -> Project:
    """Four images: holes + parts (labelled) under a plain blob (no class), an edited accepted
    object beside a manual one, an object without a mask, a failed image; one image in a
    sub-folder with a name clash."""
    imgs = tmp_path / "images"
    (imgs / "sub").mkdir(parents=True)
    p = Project.create(tmp_path / "p.qmask")
    p.set_classes(["cat", "dog"])
    sizes = {"a.png": (30, 32), "b.jpg": (20, 16), "sub/a.png": (18, 24), "broken.png": (8, 8)}
    for name, (h, w) in sizes.items():
        Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(imgs / name)
        img = p.add_image(imgs / name, width=w, height=h)
        img.status = "ok"
        p.update_image(img)
    a, b, c, broken = p.iter_images()
    p.put_run(a, QuestionRun(question="where is the cat?", answer="on the mat", itm_probability=0.8,
                             models={"itm": "tiny"}, random_weights=True,
                             auto_points=[Point(10, 10, source="auto", score=0.9)]))
    cat = _object(ring_with_hole(30, 32), "where is the cat?", category="cat", order=0,
                  auto_points=[Point(10, 10, source="auto", score=0.9)], points=[Point(10, 10, source="auto", score=0.9)])
    p.put_object(a, cat, source="chain")
    p.put_run(a, QuestionRun(question="what is this?"))
    p.put_object(a, _object(blob(30, 32), "what is this?", order=1), source="chain")  # drawn on top of the cat
    p.put_run(b, QuestionRun(question="dog?", answer="yes"))
    dog = _object(blob(20, 16), "dog?", category="dog", accepted=True, order=0, auto_points=[Point(3, 3, source="auto")],
                  points=[Point(3, 3, source="auto"), Point(8, 8, label=0)])
    edited = blob(20, 16)
    edited[14:18, 3:5] = True
    dog.set_mask(edited, source="user")
    p.put_object(b, dog, source="user")
    manual = np.zeros((20, 16), bool)
    manual[1:4, 10:15] = True
    p.put_object(b, _object(manual, category="dog", order=1), source="user")  # drawn by hand: no question
    p.put_run(c, QuestionRun(question="empty?"))
    p.put_object(c, ObjectRecord(question="empty?", source="question"), source="chain")  # no mask: skipped
    broken.mark_failed("broken.png is truncated")
    p.update_image(broken)
    return p


def _masks_by_question(project):
    """(image path, question) -> mask of every object with a mask (a manual one's question is None)."""
    return {(img.path, o.question): o.mask() for img in project.iter_images() for o in img.objects
            if o.mask() is not None}


@pytest.mark.parametrize("polygons", [False, True])
def test_one_instance_per_object_with_ids_stable_across_exports(project, tmp_path, polygons):
    report = export_project(project, "coco", tmp_path / "coco" / "instances.json", polygons=polygons)
    assert report.annotations == 4 and report.images == 3
    assert "images/sub/a.png: object 1 has no mask" in report.skipped
    coco = pycoco.COCO(str(report.out))
    expected = _masks_by_question(project)
    questions = sorted((a["qmask"]["question"] or "") for a in coco.dataset["annotations"])
    assert questions == ["", "dog?", "what is this?", "where is the cat?"]  # the manual object has none
    for ann in coco.dataset["annotations"]:
        im = coco.imgs[ann["image_id"]]
        rel = next(img.path for img in project.iter_images(records=False) if img.path.endswith(im["file_name"]))
        np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), expected[(rel, ann["qmask"]["question"])])
    rows = {r["uid"]: r["id"] for rs in project.object_summaries().values() for r in rs}
    side = json.loads(report.sidecar.read_text())
    ids = {a["object"]: a["coco_annotation_id"] for img in side["images"] for a in img["annotations"]}
    assert ids == {uid: rows[uid] for uid in ids} and len(ids) == 4
    again = export_project(project, "coco", tmp_path / "again.json", polygons=polygons)
    assert [a["id"] for a in json.loads(again.out.read_text())["annotations"]] == \
        [a["id"] for a in coco.dataset["annotations"]]


def test_the_provenance_file_names_each_object_its_run_and_both_edit_logs(project, tmp_path):
    report = export_project(project, "coco", tmp_path / "c.json")
    side = json.loads(report.sidecar.read_text())
    assert side["schema"] == "qmask.provenance" and side["random_weights"] is True
    anns = {a["question"]: a for img in side["images"] for a in img["annotations"]}
    dog = anns["dog?"]
    assert dog["mask_source"] == "user" and dog["edited"] and dog["accepted"] and dog["label"] == "dog"
    assert len(dog["auto_points"]) == 1 and len(dog["user_points"]) == 1 and dog["user_points"][0]["label"] == 0
    b = project.find_image("images/b.jpg")
    auto, final = blob(20, 16), b.objects[0].mask()
    assert dog["auto_vs_final_iou"] == pytest.approx(auto.sum() / final.sum(), abs=1e-6)
    assert (dog["object"], dog["source"], dog["answer"]) == (b.objects[0].uid, "question", "yes")
    cat = anns["where is the cat?"]
    assert cat["auto_vs_final_iou"] == 1.0 and cat["models"] == {"itm": "tiny"} and cat["answer"] == "on the mat"
    manual = anns[None]  # an object drawn by hand: no run behind it
    assert (manual["source"], manual["label"], manual["answer"], manual["models"]) == ("manual", "dog", None, {})
    # each annotation's edit log, from the project: who wrote it, from which source (its run's and its own)
    assert [(e["source"], e["action"]) for e in dog["edits"]] == [("chain", "run"), ("user", "edit")]
    assert [(e["source"], e["action"]) for e in cat["edits"]] == [("chain", "run"), ("chain", "edit")]
    assert [(e["source"], e["action"]) for e in manual["edits"]] == [("user", "edit")]
    assert any("broken.png" in s for s in side["skipped"])


def test_png_labels_follow_the_drawing_order(project, tmp_path):
    report = export_project(project, "png", tmp_path / "png")
    out = report.out
    classes = (out / "classes.txt").read_text().splitlines()
    side = json.loads(report.sidecar.read_text())
    a = next(project.iter_images())
    entry = next(i for i in side["images"] if i["path"] == a.path)
    masks = _masks_by_question(project)
    label_file = out / entry["files"]["label"] if "label" in entry.get("files", {}) else out / "labels" / f"{entry['stem']}.png"
    with Image.open(label_file) as label:
        values = np.asarray(label)
    cat, obj = masks[(a.path, "where is the cat?")], masks[(a.path, "what is this?")]
    assert (cat & obj).any()
    assert (values[obj] == classes.index("object")).all()  # drawn on top: it wins where they overlap
    assert (values[cat & ~obj] == classes.index("cat")).all() and (values[~cat & ~obj] == 0).all()
    img = project.find_image(a.path)  # brought to the top, the cat wins instead
    cat_obj = next(o for o in img.objects if o.category == "cat")
    cat_obj.order = 5
    project.put_object(img, cat_obj)
    again = export_project(project, "png", tmp_path / "png2")
    with Image.open(again.out / label_file.relative_to(out)) as label:
        values = np.asarray(label)
    assert (values[cat] == classes.index("cat")).all() and (values[obj & ~cat] == classes.index("object")).all()
