"""Exports: COCO (RLE, polygons) read back by pycocotools, YOLO (as Ultralytics reads it), LabelMe (as
labelme reads it), PNG, the provenance file. Every shape kind against every reader: test_export_readers.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from engine.errors import ExportError
from engine.export import export_project
from engine.export.labelme import decode_mask_shape
from engine.imaging.masks import mask_area, mask_bbox, mask_has_holes
from engine.project import Project
from engine.prompts import Point

from support.annotation import put_answered
from support.dataset_readers import labelme_instances, labelme_label_file, ultralytics_instances
from support.commands import run_qmask
from support.masks import blob, ring_with_hole

pycoco = pytest.importorskip("pycocotools.coco")
pycocoeval = pytest.importorskip("pycocotools.cocoeval")


@pytest.fixture()
def project(tmp_path) -> Project:
    """Four images: holes + parts (labelled), a plain blob (no label), an edited accepted
    annotation, a failed image; one image in a sub-folder with a name clash."""
    imgs = tmp_path / "images"
    (imgs / "sub").mkdir(parents=True)
    p = Project.create(tmp_path / "p.qmask")
    p.ensure_category("cat")
    p.ensure_category("dog")
    sizes = {"a.png": (30, 32), "b.jpg": (20, 16), "sub/a.png": (18, 24), "broken.png": (8, 8)}
    for name, (h, w) in sizes.items():
        Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(imgs / name)
        img = p.add_image(imgs / name, width=w, height=h)
        img.status = "ok"
        p.update_image(img)
    a, b, c, broken = p.iter_images()
    put_answered(p, a, "where is the cat?", ring_with_hole(30, 32), label="cat", answer="on the mat",
                 run={"itm_probability": 0.8, "models": {"itm": "tiny"}, "random_weights": True},
                 obj={"auto_points": [Point(10, 10, source="auto", score=0.9)],
                      "points": [Point(10, 10, source="auto", score=0.9)]})
    put_answered(p, a, "what is this?", blob(30, 32))
    edited = blob(20, 16)
    edited[14:18, 3:5] = True
    put_answered(p, b, "dog?", blob(20, 16), label="dog", accepted=True, edited=edited, source="user",
                 obj={"auto_points": [Point(3, 3, source="auto")],
                      "points": [Point(3, 3, source="auto"), Point(8, 8, label=0)]})
    put_answered(p, c, "empty?", None)  # no mask: skipped
    broken.mark_failed("broken.png is truncated")
    p.update_image(broken)
    return p


def _masks_by_question(project):
    return {(img.path, o.question): o.mask() for img in project.iter_images() for o in img.objects
            if o.mask() is not None}


@pytest.mark.parametrize("polygons", [False, True])
def test_coco_loads_in_pycocotools_pixel_exact(project, tmp_path, polygons):
    out = tmp_path / "coco" / "instances.json"
    report = export_project(project, "coco", out, polygons=polygons)
    assert report.out == out and report.annotations == 3 and report.images == 3
    assert any("broken.png" in s for s in report.skipped) and any("has no mask" in s for s in report.skipped)
    coco = pycoco.COCO(str(out))
    expected = _masks_by_question(project)
    root = Path(json.loads(out.read_text())["info"]["qmask"]["images_root"])
    names = {c["id"]: c["name"] for c in coco.dataset["categories"]}
    assert set(names.values()) == {"cat", "dog", "object"}
    for ann in coco.dataset["annotations"]:
        im = coco.imgs[ann["image_id"]]
        assert (root / im["file_name"]).is_file()
        rel = project.rel_path(root / im["file_name"])
        mask = expected[(rel, ann["qmask"]["question"])]
        assert "attributes" not in ann  # datumaro's validators call each key an undefined attribute
        np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), mask)
        assert ann["area"] == mask_area(mask) and ann["bbox"] == mask_bbox(mask)
        assert ann["iscrowd"] == 0
        assert isinstance(ann["qmask"]["accepted"], bool)  # a boolean, not the string 'False'
        assert (im["height"], im["width"]) == mask.shape
        if polygons:
            assert isinstance(ann["segmentation"], list)
        else:
            assert isinstance(ann["segmentation"]["counts"], str)
    cat_ann = next(a for a in coco.dataset["annotations"] if a["qmask"]["question"] == "where is the cat?")
    assert names[cat_ann["category_id"]] == "cat"
    if polygons:
        assert len(cat_ann["segmentation"]) == 3  # ring (keyhole), island, second part
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
    assert [a["qmask"]["question"] for a in doc["annotations"]] == ["dog?"]
    assert len(doc["images"]) == 1
    one = export_project(project, "coco", tmp_path / "one.json", image_filter=[next(project.iter_images())])
    assert one.annotations == 2 and one.images == 1
    pred = export_project(project, "coco", tmp_path / "pred.json", image_filter=lambda img: img.name == "b.jpg")
    assert pred.annotations == 1


def test_coco_attributes_only_when_asked(project, tmp_path):
    doc = json.loads(export_project(project, "coco", tmp_path / "c.json", coco_attributes=True).out.read_text())
    assert all(a["attributes"] == a["qmask"] for a in doc["annotations"])  # CVAT-style, for CVAT users


def test_sidecar_provenance(project, tmp_path):
    report = export_project(project, "coco", tmp_path / "c.json")
    # never beside the COCO file, where a folder scan would take it for another annotation file
    assert report.sidecar == tmp_path / "provenance" / "c" / "qmask-provenance.json"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("p.qmask")) == [
        "c.json", "images", "provenance"]
    side = json.loads(report.sidecar.read_text())
    assert side["schema"] == "qmask.provenance" and side["random_weights"] is True
    anns = {a["question"]: a for img in side["images"] for a in img["annotations"]}
    dog = anns["dog?"]
    assert dog["mask_source"] == "user" and dog["edited"] and dog["accepted"]
    assert len(dog["auto_points"]) == 1 and len(dog["user_points"]) == 1 and dog["user_points"][0]["label"] == 0
    auto, final = blob(20, 16), project.find_image("images/b.jpg").objects[0].mask()
    assert dog["auto_vs_final_iou"] == pytest.approx(auto.sum() / final.sum(), abs=1e-6)
    cat = anns["where is the cat?"]
    assert cat["auto_vs_final_iou"] == 1.0 and cat["models"] == {"itm": "tiny"} and cat["answer"] == "on the mat"
    assert "coco_annotation_id" in cat
    # each annotation's edit log, from the project: who wrote it, from which source
    assert [(e["source"], e["action"]) for e in dog["edits"]] == [("chain", "run"), ("user", "edit")]
    assert [(e["source"], e["action"]) for e in cat["edits"]] == [("chain", "run"), ("chain", "edit")]
    assert all(e["writer"].startswith("qmask@") for e in cat["edits"] + dog["edits"])
    assert any("broken.png" in s for s in side["skipped"])


def test_yolo(project, tmp_path):
    """One row per instance, read as Ultralytics reads it: exact for one-part masks; the
    cat (a ring with a hole and an island in it, and a second part) keeps everything and gains
    only its two bridges' background pixels."""
    report = export_project(project, "yolo", tmp_path / "y")
    out = report.out
    classes = (out / "classes.txt").read_text().splitlines()
    assert classes == ["cat", "dog", "object"]
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert "path" not in data and data["train"] == data["val"] == "images" and data["names"] == dict(enumerate(classes))
    side = json.loads(report.sidecar.read_text())
    assert report.sidecar == out / "provenance" / "qmask-provenance.json"
    stems = {i["path"]: i["stem"] for i in side["images"]}
    assert len(set(stems.values())) == 3 and stems["images/sub/a.png"] == "a_2"  # a.png and sub/a.png
    for img in list(project.iter_images())[:3]:
        assert (out / "images" / (stems[img.path] + Path(img.path).suffix)).is_file()
        rows = ultralytics_instances(out / "labels" / f"{stems[img.path]}.txt", img.width, img.height)
        expected = [(o.category or "object", o.mask()) for o in img.objects if o.mask() is not None]
        assert [classes[c] for c, _m in rows] == [name for name, _m in expected]
        for (_c, got), (name, want) in zip(rows, expected):
            assert not (want & ~got).any()  # nothing lost
            extra = int((got & ~want).sum())
            assert extra == (0 if name != "cat" else extra) and extra <= 6, (name, extra)


def test_labelme(project, tmp_path):
    report = export_project(project, "labelme", tmp_path / "lm")
    masks = _masks_by_question(project)
    a = next(project.iter_images())
    # labelme opening the images folder with --output finds every image's file
    for img in list(project.iter_images())[:3]:
        found = labelme_label_file(project.abs_path(img), report.out, tmp_path / "images")
        assert found == report.out / (str(Path(img.path).relative_to("images").with_suffix(".json")))
    doc = json.loads((report.out / "a.json").read_text())
    assert (report.out / doc["imagePath"]).resolve() == project.abs_path(a).resolve()
    assert (doc["imageWidth"], doc["imageHeight"]) == (a.width, a.height)
    cat_shapes = [s for s in doc["shapes"] if s["description"] == "where is the cat?"]
    assert {s["shape_type"] for s in cat_shapes} == {"polygon"} and len({s["group_id"] for s in cat_shapes}) == 1
    assert mask_has_holes(masks[(a.path, "where is the cat?")])
    got = {desc: m for _label, desc, m in labelme_instances(doc)}
    for question in ("where is the cat?", "what is this?"):
        np.testing.assert_array_equal(got[question], masks[(a.path, question)])  # the hole too
    forced = export_project(project, "labelme", tmp_path / "lm2", labelme_force_mask=True)
    doc2 = json.loads((forced.out / "a.json").read_text())
    assert {s["shape_type"] for s in doc2["shapes"]} == {"mask"}
    cat = next(s for s in doc2["shapes"] if s["description"] == "where is the cat?")
    np.testing.assert_array_equal(decode_mask_shape(cat, a.height, a.width), masks[(a.path, "where is the cat?")])
    got = {desc: m for _label, desc, m in labelme_instances(doc2)}
    np.testing.assert_array_equal(got["where is the cat?"], masks[(a.path, "where is the cat?")])


def test_png(project, tmp_path):
    report = export_project(project, "png", tmp_path / "png")
    out = report.out
    classes = (out / "classes.txt").read_text().splitlines()
    assert classes[0] == "background"
    side = json.loads(report.sidecar.read_text())
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
    # the later annotation ("what is this?") wins where they overlap
    assert (values[obj] == classes.index("object")).all()
    assert (values[cat & ~obj] == classes.index("cat")).all()
    assert (values[~cat & ~obj] == 0).all()


def test_errors(project, tmp_path):
    with pytest.raises(ExportError, match="Unknown export format"):
        export_project(project, "voc", tmp_path / "x")
    with pytest.raises(ExportError, match="Nothing to export"):
        export_project(project, "coco", tmp_path / "x.json", image_filter=lambda img: False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="not a folder"):
        export_project(project, "yolo", tmp_path / "file")


def test_cli(project, tmp_path, capsys):
    rc = run_qmask("export", [str(project.path), "--format", "coco", "--out", str(tmp_path / "d.json"), "--polygons"])
    assert rc == 0 and "Exported 3 annotation(s)" in capsys.readouterr().out
    pycoco.COCO(str(tmp_path / "d.json"))
    rc = run_qmask("export", [str(tmp_path / "nope.qmask"), "--format", "coco", "--out", str(tmp_path / "e.json")])
    assert rc == 1 and "No project file" in capsys.readouterr().err


def test_cli_self_contained_split(project, tmp_path, capsys):
    out = tmp_path / "ds"
    rc = run_qmask("export", [str(project.path), "--format", "yolo", "--out", str(out), "--copy-images",
                           "--val", "0.5", "--seed", "4"])
    assert rc == 0 and "Exported 3 annotation(s) of 3 image(s)" in capsys.readouterr().out
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert (data["train"], data["val"]) == ("images/train", "images/val")
    images = sorted(p.relative_to(out).as_posix() for p in (out / "images").rglob("*.*"))
    labels = sorted(p.relative_to(out).as_posix() for p in (out / "labels").rglob("*.txt"))
    assert len(images) == 3 and [Path(i).parent.name for i in images].count("val") in (1, 2)
    assert [str(Path(i).with_suffix("")).replace("images/", "labels/", 1) for i in images] == \
        [str(Path(x).with_suffix("")) for x in labels]
    rc = run_qmask("export", [str(project.path), "--format", "coco", "--out", str(tmp_path / "x.json"), "--copy-images"])
    assert rc == 1 and "is a folder" in capsys.readouterr().err
    rc = run_qmask("export", [str(project.path), "--format", "coco", "--out", str(tmp_path / "y"), "--val", "0.3"])
    assert rc == 1 and "--copy-images" in capsys.readouterr().err
