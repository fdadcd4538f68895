"""Exports, one instance per object: COCO (RLE, polygons) read back by pycocotools, YOLO, LabelMe, PNG, sidecar."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.commands import cli
from engine.commands import export as export_cmd
from engine.errors import ExportError
from engine.export import export_project
from engine.export.labelme import decode_mask_shape
from engine.imaging.masks import mask_area, mask_bbox, mask_has_holes, polygons_to_mask
from engine.project import ObjectRecord, Project, QuestionRun
from engine.prompts import Point

pycoco = pytest.importorskip("pycocotools.coco")
pycocoeval = pytest.importorskip("pycocotools.cocoeval")


def ring_with_hole(h, w):
    m = np.zeros((h, w), bool)
    m[4:20, 5:25] = True
    m[8:12, 10:15] = False  # hole
    m[24:28, 2:6] = True  # second part
    m[9:11, 11:13] = True  # island inside the hole
    return m


def blob(h, w):
    m = np.zeros((h, w), bool)
    m[2:10, 3:9] = True
    m[10:14, 3:5] = True
    return m


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
def test_coco_loads_in_pycocotools_pixel_exact(project, tmp_path, polygons):
    out = tmp_path / "coco" / "instances.json"
    report = export_project(project, "coco", out, polygons=polygons)
    assert report.out == out and report.annotations == 4 and report.images == 3
    assert any("broken.png" in s for s in report.skipped)
    assert "images/sub/a.png: object 1 has no mask" in report.skipped
    coco = pycoco.COCO(str(out))
    expected = _masks_by_question(project)
    root = Path(json.loads(out.read_text())["info"]["qmask"]["images_root"])
    names = {c["id"]: c["name"] for c in coco.dataset["categories"]}
    assert set(names.values()) == {"cat", "dog", "object"}
    for ann in coco.dataset["annotations"]:
        im = coco.imgs[ann["image_id"]]
        assert (root / im["file_name"]).is_file()
        rel = project.rel_path(root / im["file_name"])
        mask = expected[(rel, ann["attributes"]["question"])]
        np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), mask)
        assert ann["area"] == mask_area(mask) and ann["bbox"] == mask_bbox(mask)
        assert ann["iscrowd"] == 0
        assert isinstance(ann["attributes"]["accepted"], bool)  # a boolean, not the string 'False'
        assert (im["height"], im["width"]) == mask.shape
        if polygons:
            assert isinstance(ann["segmentation"], list)
        else:
            assert isinstance(ann["segmentation"]["counts"], str)
    cat_ann = next(a for a in coco.dataset["annotations"] if a["attributes"]["question"] == "where is the cat?")
    assert names[cat_ann["category_id"]] == "cat"
    if polygons:
        assert len(cat_ann["segmentation"]) == 3  # ring (keyhole), island, second part
    # one instance per object, its id the object's row id: the same from one export to the next
    rows = {r["uid"]: r["id"] for rs in project.object_summaries().values() for r in rs}
    side = json.loads(report.sidecar.read_text())
    ids = {a["object"]: a["coco_annotation_id"] for img in side["images"] for a in img["annotations"]}
    assert ids == {uid: rows[uid] for uid in ids} and len(ids) == 4
    again = export_project(project, "coco", tmp_path / "again.json", polygons=polygons)
    assert [a["id"] for a in json.loads(again.out.read_text())["annotations"]] == \
        [a["id"] for a in coco.dataset["annotations"]]
    # Evaluating the ground truth against itself gives AP 1: pycocotools reads every part.
    dets = [dict(a, score=1.0) for a in coco.dataset["annotations"]]
    res = coco.loadRes(dets)
    ev = pycocoeval.COCOeval(coco, res, "segm")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)


def test_coco_into_folder_and_filters(project, tmp_path):
    report = export_project(project, "coco", tmp_path / "out", only_accepted=True)
    assert report.out == tmp_path / "out" / "annotations.json"
    doc = json.loads(report.out.read_text())
    assert [a["attributes"]["question"] for a in doc["annotations"]] == ["dog?"]
    assert len(doc["images"]) == 1
    one = export_project(project, "coco", tmp_path / "one.json", image_filter=[next(project.iter_images())])
    assert one.annotations == 2 and one.images == 1
    pred = export_project(project, "coco", tmp_path / "pred.json", image_filter=lambda img: img.name == "b.jpg")
    assert pred.annotations == 2


def test_sidecar_provenance(project, tmp_path):
    report = export_project(project, "coco", tmp_path / "c.json")
    assert report.sidecar == tmp_path / "c.qmask_provenance.json"
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
    assert "coco_annotation_id" in cat
    manual = anns[None]  # an object drawn by hand: no run behind it
    assert (manual["source"], manual["label"], manual["answer"], manual["models"]) == ("manual", "dog", None, {})
    # each annotation's edit log, from the project: who wrote it, from which source (its run's and its own)
    assert [(e["source"], e["action"]) for e in dog["edits"]] == [("chain", "run"), ("user", "edit")]
    assert [(e["source"], e["action"]) for e in cat["edits"]] == [("chain", "run"), ("chain", "edit")]
    assert [(e["source"], e["action"]) for e in manual["edits"]] == [("user", "edit")]
    assert all(e["writer"].startswith("qmask@") for e in cat["edits"] + dog["edits"])
    assert any("broken.png" in s for s in side["skipped"])


def test_yolo(project, tmp_path):
    report = export_project(project, "yolo", tmp_path / "y")
    out = report.out
    classes = (out / "classes.txt").read_text().splitlines()
    assert classes == ["cat", "dog", "object"]
    assert "names:" in (out / "data.yaml").read_text()
    side = json.loads((out / "qmask_provenance.json").read_text())
    stems = {i["path"]: i["stem"] for i in side["images"]}
    # a.png and sub/a.png got different stems
    assert len(set(stems.values())) == 3
    for img in list(project.iter_images())[:3]:
        lines = (out / "labels" / f"{stems[img.path]}.txt").read_text().splitlines()
        assert (out / "images" / (stems[img.path] + Path(img.path).suffix)).is_file()
        by_class: dict[str, np.ndarray] = {}
        for line in lines:
            parts = line.split()
            cls = classes[int(parts[0])]
            xy = np.array(parts[1:], float).reshape(-1, 2) * [img.width, img.height]
            m = polygons_to_mask([xy.ravel().tolist()], img.height, img.width)
            by_class[cls] = by_class.get(cls, np.zeros_like(m)) | m
        expected: dict[str, np.ndarray] = {}
        for o in img.objects:
            if o.mask() is not None:
                name = o.category or "object"
                expected[name] = expected.get(name, np.zeros_like(o.mask())) | o.mask()
        assert by_class.keys() == expected.keys()
        for k in expected:
            np.testing.assert_array_equal(by_class[k], expected[k])  # holes kept (keyhole)


def test_labelme(project, tmp_path):
    report = export_project(project, "labelme", tmp_path / "lm")
    masks = _masks_by_question(project)
    side = json.loads((report.out / "qmask_provenance.json").read_text())
    stems = {i["path"]: i["stem"] for i in side["images"]}
    a = next(project.iter_images())
    doc = json.loads((report.out / f"{stems[a.path]}.json").read_text())
    assert (report.out / doc["imagePath"]).resolve() == project.abs_path(a).resolve()
    assert (doc["imageWidth"], doc["imageHeight"]) == (a.width, a.height)
    cat_shapes = [s for s in doc["shapes"] if s["description"] == "where is the cat?"]
    assert len(cat_shapes) == 1 and cat_shapes[0]["shape_type"] == "mask"  # it has a hole
    assert mask_has_holes(masks[(a.path, "where is the cat?")])
    np.testing.assert_array_equal(decode_mask_shape(cat_shapes[0], a.height, a.width),
                                  masks[(a.path, "where is the cat?")])
    blob_shapes = [s for s in doc["shapes"] if s["description"] == "what is this?"]
    assert {s["shape_type"] for s in blob_shapes} == {"polygon"}
    assert len({s["group_id"] for s in blob_shapes}) == 1
    polys = [np.asarray(s["points"]).ravel().tolist() for s in blob_shapes]
    np.testing.assert_array_equal(polygons_to_mask(polys, a.height, a.width), masks[(a.path, "what is this?")])
    forced = export_project(project, "labelme", tmp_path / "lm2", labelme_force_mask=True)
    doc2 = json.loads((forced.out / f"{stems[a.path]}.json").read_text())
    assert {s["shape_type"] for s in doc2["shapes"]} == {"mask"}


def test_png(project, tmp_path):
    report = export_project(project, "png", tmp_path / "png")
    out = report.out
    classes = (out / "classes.txt").read_text().splitlines()
    assert classes[0] == "background"
    side = json.loads((out / "qmask_provenance.json").read_text())
    a = next(project.iter_images())
    entry = next(i for i in side["images"] if i["path"] == a.path)
    masks = _masks_by_question(project)
    for ann in entry["annotations"]:
        with Image.open(out / ann["mask_png"]) as im:
            m = np.asarray(im)
        assert m.dtype == np.uint8 and set(np.unique(m)) <= {0, 255}
        np.testing.assert_array_equal(m == 255, masks[(a.path, ann["question"])])
    with Image.open(out / "labels" / f"{entry['stem']}.png") as label:
        assert label.mode == "P"
        values = np.asarray(label)
    cat = masks[(a.path, "where is the cat?")]
    obj = masks[(a.path, "what is this?")]
    # the object drawn on top ("what is this?") wins where they overlap
    assert (cat & obj).any()
    assert (values[obj] == classes.index("object")).all()
    assert (values[cat & ~obj] == classes.index("cat")).all()
    assert (values[~cat & ~obj] == 0).all()
    # brought to the top, the cat wins instead
    img = project.find_image(a.path)
    cat_obj = next(o for o in img.objects if o.category == "cat")
    cat_obj.order = 5
    project.put_object(img, cat_obj)
    again = export_project(project, "png", tmp_path / "png2")
    with Image.open(again.out / "labels" / f"{entry['stem']}.png") as label:
        values = np.asarray(label)
    assert (values[cat] == classes.index("cat")).all() and (values[obj & ~cat] == classes.index("object")).all()


def test_errors(project, tmp_path):
    with pytest.raises(ExportError, match="Unknown export format"):
        export_project(project, "voc", tmp_path / "x")
    with pytest.raises(ExportError, match="Nothing to export"):
        export_project(project, "coco", tmp_path / "x.json", image_filter=lambda img: False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="not a folder"):
        export_project(project, "yolo", tmp_path / "file")


def _run(module, argv):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    args._command, args.command = module, "export"
    return cli.run_parsed(args)


def test_cli(project, tmp_path, capsys):
    rc = _run(export_cmd, [str(project.path), "--format", "coco", "--out", str(tmp_path / "d.json"), "--polygons"])
    assert rc == 0 and "Exported 4 annotation(s)" in capsys.readouterr().out
    pycoco.COCO(str(tmp_path / "d.json"))
    rc = _run(export_cmd, [str(tmp_path / "nope.qmask"), "--format", "coco", "--out", str(tmp_path / "e.json")])
    assert rc == 1 and "No project file" in capsys.readouterr().err
