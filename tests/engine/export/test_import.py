"""COCO import: one object per annotation; round trips with our export, third-party datasets, CLI; an
imported object edited and undone keeps its mask."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from engine.errors import ExportError, ProjectError
from engine.export import export_project
from engine.export.coco_import import coco_segmentation_to_mask, import_coco, import_coco_to_project
from engine.imaging.masks import encode_rle
from engine.project import ObjectRecord, Project, QuestionRun
from support.commands import run_qmask


def _random_mask(rng, h, w):
    import cv2

    noise = rng.random((h, w)).astype(np.float32)
    return cv2.GaussianBlur(noise, (5, 5), 0) > 0.52


@pytest.fixture()
def source(tmp_path):
    rng = np.random.default_rng(3)
    imgs = tmp_path / "images"
    imgs.mkdir()
    p = Project.create(tmp_path / "src.qmask")
    for i in range(3):
        h, w = 20 + i, 30 + 2 * i
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(imgs / f"im{i}.png")
        img = p.add_image(imgs / f"im{i}.png", width=w, height=h)
        img.status = "ok"
        p.update_image(img)
        for k, label in enumerate(["cat", "dog"]):
            obj = ObjectRecord(question=f"where is the {label}?", source="question", category=label,
                               accepted=(k == 0), order=k)
            obj.set_mask(_random_mask(rng, h, w))
            p.put_changes(img, runs=[QuestionRun(question=obj.question, answer=f"a {label}")], objects=[obj])
    return p


@pytest.mark.parametrize("polygons", [False, True])
def test_round_trip_is_pixel_exact(source, tmp_path, polygons):
    out = tmp_path / "coco.json"
    export_project(source, "coco", out, polygons=polygons)
    dest = Project.create(tmp_path / "dest.qmask")
    report = import_coco(out, tmp_path / "images", dest)
    assert report.images == 3 and report.annotations == 6 and not report.not_found and not report.failed
    assert {c.name for c in dest.categories} == {"cat", "dog"}
    for src_img in source.iter_images():
        img = dest.find_image(source.abs_path(src_img))
        assert img is not None and img.status == "ok" and (img.width, img.height) == (src_img.width, src_img.height)
        assert img.sha256
        assert len(img.objects) == len(src_img.objects) == 2 and len(img.runs) == 2
        for o in src_img.objects:
            got = next(g for g in img.objects if g.question == o.question)  # one object per annotation
            np.testing.assert_array_equal(got.mask(), o.mask())
            assert (got.category, got.accepted, got.mask_source, got.source) == (o.category, o.accepted, "import", "import")
            assert img.find_run(o.question).answer == src_img.find_run(o.question).answer  # its run, with the answer
            assert got.provenance_iou() == 1.0 and got.uid != o.uid
    # importing again adds nothing
    again = import_coco(out, tmp_path / "images", dest)
    assert again.annotations == 0 and len(again.skipped) == 6
    assert sum(len(i.objects) for i in dest.iter_images()) == 6 == dest.summary()["objects"]
    assert dest.summary()["questions"] == 6
    assert {e.source for e in dest.edits()} == {"import"} and len(dest.edits()) == 6
    assert {e.object_uid for e in dest.edits()} == {o.uid for i in dest.iter_images() for o in i.objects}


def test_third_party_dataset(tmp_path):
    imgs = tmp_path / "data"
    (imgs / "nested").mkdir(parents=True)
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(imgs / "nested" / "x.jpg")
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(imgs / "wrong_size.png")
    m1 = np.zeros((10, 12), bool)
    m1[2:5, 3:7] = True
    m2 = np.zeros((10, 12), bool)
    m2[6:9, 1:4] = True
    flat = m2.T.ravel()
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    runs = np.diff(np.concatenate(([0], change, [flat.size]))).tolist()
    poly = [8.0, 1.0, 11.0, 1.0, 11.0, 4.0, 8.0, 4.0]
    rle_bytes = mask_utils.encode(np.asfortranarray(m1.astype(np.uint8)))
    doc = {
        "images": [
            {"id": 7, "file_name": "x.jpg", "width": 12, "height": 10},  # found by name in nested/
            {"id": 8, "file_name": "gone.png", "width": 5, "height": 5},
            {"id": 9, "file_name": "wrong_size.png", "width": 40, "height": 40},
        ],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 3, "iscrowd": 0,
             "segmentation": {"size": [10, 12], "counts": rle_bytes["counts"].decode()}},
            {"id": 2, "image_id": 7, "category_id": 3, "iscrowd": 1,
             "segmentation": {"size": [10, 12], "counts": runs}},
            {"id": 3, "image_id": 7, "category_id": 5, "iscrowd": 0, "segmentation": [poly]},
            {"id": 4, "image_id": 7, "category_id": 99, "segmentation": [poly]},
            {"id": 5, "image_id": 7, "category_id": 5, "segmentation": {"size": [10, 12], "counts": [3]}},
            {"id": 6, "image_id": 8, "category_id": 5, "segmentation": [[1, 1, 4, 1, 4, 4]]},
        ],
        "categories": [{"id": 3, "name": "person"}, {"id": 5, "name": "bike"}],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(doc))
    dest = Project.create(tmp_path / "p.qmask")
    report = import_coco(path, imgs, dest)
    assert report.images == 3 and report.annotations == 4
    assert report.not_found == ["gone.png"]
    assert len(report.failed) == 1 and "40x40" in report.failed[0]
    assert any("unknown category 99" in s for s in report.skipped)
    assert any("cover 3 pixels" in s for s in report.skipped)
    x = dest.find_image(imgs / "nested" / "x.jpg")
    assert [o.category for o in x.objects] == ["person", "person", "bike"]  # in the file's order, bottom first
    assert all(o.question is None and o.source == "import" and not o.accepted for o in x.objects) and x.runs == []
    np.testing.assert_array_equal(x.objects[0].mask(), m1)
    np.testing.assert_array_equal(x.objects[1].mask(), m2)
    bike = x.objects[2].mask()
    ref = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([poly], 10, 12))).astype(bool)
    np.testing.assert_array_equal(bike, ref)
    assert {c.name: c.id for c in dest.categories} == {"person": 3, "bike": 5}
    gone = dest.find_image(imgs / "gone.png")
    assert gone.status == "pending" and gone.id in [m.id for m in dest.missing_images()] and len(gone.objects) == 1
    assert dest.find_image(imgs / "wrong_size.png").status == "failed"


def test_bad_files(tmp_path):
    dest = Project.create(tmp_path / "p.qmask")
    (tmp_path / "imgs").mkdir()
    with pytest.raises(ExportError, match="No COCO file"):
        import_coco(tmp_path / "none.json", tmp_path / "imgs", dest)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ExportError, match="not a readable COCO"):
        import_coco(tmp_path / "bad.json", tmp_path / "imgs", dest)
    (tmp_path / "bad2.json").write_text(json.dumps({"annotations": []}))
    with pytest.raises(ExportError, match="not a COCO instances file"):
        import_coco(tmp_path / "bad2.json", tmp_path / "imgs", dest)
    with pytest.raises(ExportError, match="does not exist"):
        import_coco(tmp_path / "bad2.json", tmp_path / "nope", dest)


def test_segmentation_helper_rejects_bbox_like_polygons():
    from engine.errors import InputError

    with pytest.raises(InputError):
        coco_segmentation_to_mask([[1, 2, 3, 4]], 5, 5)  # pycocotools would read this as a box
    with pytest.raises(InputError):
        coco_segmentation_to_mask(encode_rle(np.ones((4, 4), bool)), 5, 5)


def test_cli(source, tmp_path, capsys):
    out = tmp_path / "c.json"
    export_project(source, "coco", out)
    proj = tmp_path / "new.qmask"
    assert run_qmask("import", [str(out), "--images", str(tmp_path / "images"), "--project", str(proj)]) == 0
    assert "Imported 6 annotation(s) on 3 image(s)" in capsys.readouterr().out
    assert Project.open(proj).count_images() == 3
    assert run_qmask("import", [str(out), "--images", str(tmp_path / "images"), "--project", str(proj)]) == 1
    assert "--merge" in capsys.readouterr().err
    assert run_qmask("import", [str(out), "--images", str(tmp_path / "images"), "--project", str(proj), "--merge"]) == 0
    assert "Imported 0 annotation(s) on 3 image(s)" in capsys.readouterr().out  # merged: no duplicates
    assert Project.open(proj).summary()["objects"] == 6
    with pytest.raises(ProjectError):
        import_coco_to_project(out, tmp_path / "images", proj)


def test_an_imported_object_keeps_its_mask_through_a_click_and_its_undo_and_exports_after(tmp_path):
    """Issue 23: a click on an imported COCO object decoded a mask from the click, and undoing it
    deleted the object's mask. The imported mask is the object's base: the click's undo gives it
    back, in the app and the project, also after the project is reopened; it exports as imported."""
    from support.annotation import Decoding, open_annotation
    from engine.annotation import History, PromptState, SetPrompts
    from engine.prompts import Point

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(imgs / "a.png")
    poly = [4.0, 3.0, 30.0, 3.0, 30.0, 20.0, 4.0, 20.0]
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [poly]}],
            "categories": [{"id": 1, "name": "box"}]}
    (tmp_path / "c.json").write_text(json.dumps(coco))
    project, _ = import_coco_to_project(tmp_path / "c.json", imgs, tmp_path / "p.qmask")
    imported = coco_segmentation_to_mask([poly], 30, 40)
    uid = project.find_image(imgs / "a.png").objects[0].uid

    def click_and_undo(project: Project) -> None:
        ann = open_annotation(project, imgs / "a.png", Decoding)
        ann.select(uid)
        assert np.array_equal(ann.mask, imported)
        history = History()
        history.push(SetPrompts(ann, uid, ann.prompts, PromptState((Point(35, 25),)), "Add point"))
        assert not np.array_equal(ann.mask, imported)  # the click decoded a mask of its own
        assert history.undo()
        assert np.array_equal(ann.mask, imported) and ann.prompts.empty
        with Project.open(project.path) as other:  # and the project holds it, as imported
            obj = other.find_image(imgs / "a.png").find_object(uid)
            assert np.array_equal(obj.mask(), imported) and obj.mask_source == "import" and obj.points == []

    click_and_undo(project)
    project.close()
    with Project.open(tmp_path / "p.qmask") as again:  # reopened: the base is the stored mask
        click_and_undo(again)
        report = export_project(again, "coco", tmp_path / "out.json")
    assert report.annotations == 1
    doc = json.loads((tmp_path / "out.json").read_text())
    (ann,) = doc["annotations"]
    assert [c["name"] for c in doc["categories"] if c["id"] == ann["category_id"]] == ["box"]
    np.testing.assert_array_equal(coco_segmentation_to_mask(ann["segmentation"], 30, 40), imported)
