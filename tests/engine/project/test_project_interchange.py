"""Version-1 JSON projects convert once (each question record a run and an object) and export as
before; qmask-json (version 2) round trips; exports stream and leave nothing when they fail; a
failed import creates no project."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import ExportError
from engine.export import export_project
from engine.imaging.masks import encode_rle, mask_area, mask_bbox
from engine.project import Project
from engine.project.codec import heatmap_to_json, object_to_json, run_to_json

from support.dataset_readers import ultralytics_instances

pycoco = pytest.importorskip("pycocotools.coco")
ROOT = Path(__file__).resolve().parents[3]


def _qmask(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gui.main", *argv], cwd=ROOT, capture_output=True, text=True)


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _v1_project(tmp_path: Path) -> tuple[Path, dict]:
    """A version-1 .qmask.json as QMask wrote it before projects were databases, by hand."""
    rng = np.random.default_rng(5)
    imgs = tmp_path / "images"
    imgs.mkdir()
    images = []
    for i in range(4):
        h, w = 20 + i, 24 + 3 * i
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(imgs / f"im{i}.png")
        questions = []
        for k, label in enumerate(["cat", None, "dog"][: 1 + i % 3]):
            m = np.zeros((h, w), bool)
            m[2 + k:10 + i, 3:8 + 2 * k] = True
            m[4 + k, 5] = False  # a hole
            rle = encode_rle(m)
            questions.append({
                "question": f"where is thing {k}?", "answer": f"answer {k}", "captions": ["a", "b c"],
                "itm_probability": 0.25 * k, "heatmap": heatmap_to_json(rng.random((6, 6)).astype(np.float32)),
                "auto_points": [{"x": 4.0, "y": 5.0, "label": 1, "source": "auto", "created": 1.0, "score": 0.5}],
                "points": [{"x": 4.0, "y": 5.0, "label": 1, "source": "auto", "created": 1.0, "score": 0.5},
                           {"x": 6.5, "y": 7.0, "label": 0, "source": "user", "created": 2.0}],
                "mask": rle, "auto_mask": rle if k != 1 else encode_rle(np.roll(m, 1, axis=1)),
                "mask_score": 0.8, "mask_source": "auto" if k != 1 else "user", "label": label,
                "alpha": 0.5, "models": {"itm": "blip"}, "random_weights": False, "accepted": k == 0,
                "created": 10.0 + k, "updated": 20.0 + k})
        images.append({"path": f"images/im{i}.png", "width": w, "height": h, "sha256": None,
                       "status": "ok", "error": None, "added": 5.0 + i, "questions": questions})
    images.append({"path": "images/gone.png", "width": None, "height": None, "status": "failed",
                   "error": "unreadable", "added": 9.0, "questions": []})
    doc = {"schema": "qmask.project", "version": 1, "created": 1.5, "modified": 2.5,
           "meta": {"preset": "base"}, "categories": [{"id": 4, "name": "cat"}, {"id": 9, "name": "dog"}],
           "images": images}
    path = tmp_path / "old.qmask.json"
    path.write_text(json.dumps(doc, indent=1))
    return path, doc


def _coco_masks(coco_file: Path) -> dict[tuple[str, str], tuple[str, np.ndarray, dict]]:
    """(file name, question) -> (category name, decoded mask, annotation), read by pycocotools."""
    coco = pycoco.COCO(str(coco_file))
    cats = {c["id"]: c["name"] for c in coco.dataset["categories"]}
    out = {}
    for ann in coco.dataset["annotations"]:
        im = coco.imgs[ann["image_id"]]
        key = (Path(im["file_name"]).name, ann["qmask"]["question"])
        assert key not in out
        out[key] = (cats[ann["category_id"]], coco.annToMask(ann).astype(bool), ann)
    return out


def test_v1_json_converts_once_and_exports_the_same_coco(tmp_path):
    path, doc = _v1_project(tmp_path)
    raw = path.read_bytes()
    # The COCO annotations the JSON project holds, as the old export wrote them (RLE, label or "object").
    expected = {}
    for img in doc["images"]:
        for q in img["questions"]:
            m = pycoco.maskUtils.decode({"size": q["mask"]["size"], "counts": q["mask"]["counts"].encode()})
            expected[(Path(img["path"]).name, q["question"])] = (q["label"] or "object", m.astype(bool))

    r = _qmask("export", str(path), "--format", "coco", "--out", str(tmp_path / "new.json"))
    assert r.returncode == 0, r.stderr
    assert "was converted into old.qmask" in r.stderr and "left as it was" in r.stderr
    assert path.read_bytes() == raw and (tmp_path / "old.qmask").is_file()
    got = _coco_masks(tmp_path / "new.json")
    assert got.keys() == expected.keys() and len(got) == 7
    for key, (cat, mask) in expected.items():
        assert got[key][0] == cat
        np.testing.assert_array_equal(got[key][1], mask)
        assert got[key][2]["area"] == mask_area(mask) and got[key][2]["bbox"] == mask_bbox(mask)
    side = json.loads((tmp_path / "provenance" / "new" / "qmask-provenance.json").read_text())
    assert any("gone.png" in s for s in side["skipped"])
    assert {c["name"]: c["id"] for c in side["categories"]} == {"cat": 4, "dog": 9, "object": 10}

    # opened again: the earlier conversion is used (not redone), the JSON still untouched
    p = Project.open(path)
    assert "converted earlier" in p.notice and p.path == tmp_path / "old.qmask"
    assert p.count_images() == 5 and p.meta["preset"] == "base"
    assert {e.action for e in p.edits()} == {"convert"}
    p.close()
    assert path.read_bytes() == raw


def test_qmask_json_round_trip_is_equal(tmp_path):
    path, doc = _v1_project(tmp_path)
    p = Project.open(path)
    out = tmp_path / "copy.qmask.json"
    r = _qmask("export", str(p.path), "--format", "qmask-json", "--out", str(out))
    assert r.returncode == 0, r.stderr
    back = json.loads(out.read_text())
    assert (back["schema"], back["version"], back["created"], back["meta"]) == ("qmask.project", 2, 1.5, {"preset": "base"})
    assert back["categories"] == doc["categories"]
    by_path = {img["path"]: img for img in back["images"]}
    object_fields = {"mask": "mask", "auto_mask": "auto_mask", "mask_score": "mask_score", "mask_source": "mask_source",
                     "points": "points", "auto_points": "auto_points", "accepted": "accepted",
                     "created": "created", "updated": "updated"}
    run_fields = ("question", "answer", "captions", "itm_probability", "auto_points", "alpha", "models",
                  "random_weights", "created", "updated")
    for img in doc["images"]:  # every field of every record, as it was, now in a run and an object
        got = dict(by_path[img["path"]])
        assert {k: got[k] for k in img if k != "questions"} == {k: v for k, v in img.items() if k != "questions"}
        assert len(got["runs"]) == len(got["objects"]) == len(img["questions"])
        for q, run, obj in zip(img["questions"], got["runs"], got["objects"]):
            np.testing.assert_allclose(np.frombuffer(__import__("base64").b64decode(run["heatmap"]["f16"]), "<f2"),
                                       np.frombuffer(__import__("base64").b64decode(q["heatmap"]["f16"]), "<f2"))
            assert {k: run[k] for k in run_fields} == {k: q[k] for k in run_fields}
            assert run["object_uids"] == [obj["uid"]] and run["instances"] == "one"
            assert {k: obj[v] for k, v in object_fields.items()} == {k: q[k] for k in object_fields}
            assert (obj["category"], obj["question"], obj["source"], obj["proposal"]) == \
                (q["label"], q["question"], "question", False)  # "cat" and "dog" are classes: kept
    # and it converts back into an equal project
    q = Project.open(out)
    assert q.path == tmp_path / "copy.qmask"
    a = [(i.path, i.status, [object_to_json(x) for x in i.objects], [run_to_json(x) for x in i.runs])
         for i in p.iter_images()]
    b = [(i.path, i.status, [object_to_json(x) for x in i.objects], [run_to_json(x) for x in i.runs])
         for i in q.iter_images()]
    assert a == b and [(c.id, c.name) for c in q.categories] == [(4, "cat"), (9, "dog")]


def test_a_batch_given_a_v1_json_works_in_the_converted_project(tmp_path):
    path, _doc = _v1_project(tmp_path)
    raw = path.read_bytes()
    path.with_name(path.name + ".go").touch()  # tests/support/project_writers.py waits for it
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "support" / "project_writers.py"), "batch", str(path),
                        str(tmp_path / "images"), "is it bright?"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "4 image(s) processed, 4 object(s) written" in r.stdout
    assert path.read_bytes() == raw
    p = Project.open(tmp_path / "old.qmask")
    im0 = p.find_image("images/im0.png")
    assert [r.question for r in im0.runs] == ["where is thing 0?", "is it bright?"]
    assert [o.question for o in im0.objects] == ["where is thing 0?", "is it bright?"]
    assert p.summary()["questions"] == 7 + 4 == p.summary()["objects"]


def _many(tmp_path: Path, n: int = 230) -> Project:
    """n small annotated images (more than one export chunk)."""
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    p = Project.create(tmp_path / "p.qmask")
    p.ensure_category("box")
    from engine.project import ImageRecord, ObjectRecord, QuestionRun

    records = []
    for i in range(n):
        Image.fromarray(np.full((12, 16, 3), i % 255, np.uint8)).save(imgs / f"i{i:03d}.png")
        m = np.zeros((12, 16), bool)
        m[1 + i % 5:9, 2 + i % 7:14] = True
        o = ObjectRecord(question="box?", source="question", category="box" if i % 2 else None)
        o.set_mask(m, source="auto")
        records.append(ImageRecord(path=f"imgs/i{i:03d}.png", width=16, height=12, status="ok", objects=[o],
                                   runs=[QuestionRun(question="box?")]))
    p.import_records(records)
    return p


def test_exports_stream_every_image_and_validate(tmp_path):
    p = _many(tmp_path)
    expected = {img.name: img.objects[0].mask() for img in p.iter_images()}
    coco = _coco_masks(export_project(p, "coco", tmp_path / "c.json").out)
    assert len(coco) == 230
    for (name, _q), (cat, mask, _ann) in coco.items():
        np.testing.assert_array_equal(mask, expected[name])
    yolo = export_project(p, "yolo", tmp_path / "y").out
    classes = (yolo / "classes.txt").read_text().splitlines()
    assert classes == ["box", "object"] and len(list((yolo / "labels").iterdir())) == 230
    for name, mask in expected.items():
        [(_cls, got)] = ultralytics_instances(yolo / "labels" / f"{Path(name).stem}.txt", 16, 12)
        np.testing.assert_array_equal(got, mask)
    lm = export_project(p, "labelme", tmp_path / "lm").out
    assert len(list(lm.glob("i*.json"))) == 230 and (lm / "provenance" / "qmask-provenance.json").is_file()
    doc = json.loads((lm / "i007.json").read_text())
    assert (lm / doc["imagePath"]).resolve() == (tmp_path / "imgs" / "i007.png").resolve()
    png = export_project(p, "png", tmp_path / "png").out
    assert len(list((png / "masks").iterdir())) == 230
    with Image.open(png / "labels" / "i100.png") as im:
        np.testing.assert_array_equal(np.asarray(im) > 0, expected["i100.png"])


@pytest.mark.parametrize("fmt, target, module, name", [
    ("coco", "c.json", "engine.export.coco", "_annotation"),
    ("yolo", "y", "engine.export.yolo", "yolo_lines"),
    ("labelme", "lm", "engine.export.labelme", "labelme_document"),
    ("png", "png", "engine.export.png", "_png_bytes"),
])
def test_a_failing_export_leaves_nothing_new(tmp_path, monkeypatch, fmt, target, module, name):
    p = _many(tmp_path)
    import importlib

    mod = importlib.import_module(module)
    real, calls = getattr(mod, name), []

    def fail_midway(*args, **kwargs):
        calls.append(1)
        if len(calls) == 150:  # past the first chunk of records
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    # an earlier export is there (in the folder the new one goes into, or beside it)
    earlier = export_project(p, fmt, tmp_path / "out" / target)
    before = {f: (tmp_path / "out" / f).read_bytes() for f in _listing(tmp_path / "out")
              if (tmp_path / "out" / f).is_file()}
    monkeypatch.setattr(mod, name, fail_midway)
    with pytest.raises(ExportError, match="Nothing was written"):
        export_project(p, fmt, tmp_path / "out" / target)
    assert len(calls) == 150
    after = {f: (tmp_path / "out" / f).read_bytes() for f in _listing(tmp_path / "out")
             if (tmp_path / "out" / f).is_file()}
    assert after == before  # the earlier export, byte for byte, and no staging folder or new file
    assert not [x for x in _listing(tmp_path / "out") if "qmask-export" in x]
    # into a new place: not even the folder appears
    calls.clear()
    with pytest.raises(ExportError, match="Nothing was written"):
        export_project(p, fmt, tmp_path / "new" / target)
    assert not (tmp_path / "new").exists() and not [x for x in _listing(tmp_path) if "qmask-export" in x]
    assert earlier.images == 230


def test_a_failed_import_creates_no_project_and_the_retry_works(tmp_path):
    (tmp_path / "imgs").mkdir()
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(tmp_path / "imgs" / "a.png")
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 16, "height": 12}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                             "segmentation": [[2, 2, 7, 2, 7, 6, 2, 6]]}],
            "categories": [{"id": 1, "name": "  "}]}  # a category without a name
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    before = _listing(tmp_path)
    r = _qmask("import", str(tmp_path / "coco.json"), "--images", str(tmp_path / "imgs"),
               "--project", str(tmp_path / "p.qmask"))
    assert r.returncode == 1 and "categories[0] needs an 'id' and a 'name'" in r.stderr
    assert _listing(tmp_path) == before  # no project, no temporary database
    coco["categories"][0]["name"] = "box"
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    r = _qmask("import", str(tmp_path / "coco.json"), "--images", str(tmp_path / "imgs"),
               "--project", str(tmp_path / "p.qmask"))
    assert r.returncode == 0, r.stderr
    assert "Imported 1 annotation(s) on 1 image(s)" in r.stdout
    assert _listing(tmp_path) == sorted(before + ["p.qmask"])
    p = Project.open(tmp_path / "p.qmask")
    img = p.find_image("imgs/a.png")
    assert img.status == "ok" and img.objects[0].category == "box" and img.objects[0].mask().sum() == 20
