"""The grounded-VQA export: per image, each question with its answer, captions and the
instances it grounds (COCO annotation ids and masks), as JSON Lines beside the COCO file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine.errors import ExportError
from engine.export import export_project
from engine.project import ObjectRecord, Project, QuestionRun
from support.commands import run_qmask

pycoco = pytest.importorskip("pycocotools.coco")


def _box(y0, y1, x0, x1, h=24, w=32):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


@pytest.fixture()
def project(tmp_path) -> Project:
    """park.png: 'where are the dogs?' grounds two dogs (one accepted), 'is there a cat?' none,
    'what is red?' one unaccepted ball; a manual object no question grounds. bare.png: no question."""
    (tmp_path / "img").mkdir()
    p = Project.create(tmp_path / "p.qmask")
    for name in ("park.png", "bare.png"):
        Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(tmp_path / "img" / name)
        img = p.add_image(tmp_path / "img" / name, width=32, height=24)
        img.status = "ok"
        p.update_image(img)
    park, bare = p.iter_images()
    dogs = [ObjectRecord(category="dog", question="where are the dogs?", source="question", accepted=i == 0)
            for i in range(2)]
    dogs[0].set_mask(_box(2, 8, 2, 10), source="auto")
    dogs[1].set_mask(_box(12, 20, 14, 30), source="auto")
    ball = ObjectRecord(category="ball", question="what is red?", source="question")
    ball.set_mask(_box(1, 4, 20, 24), source="auto")
    manual = ObjectRecord(category="tree", source="manual", accepted=True)
    manual.set_mask(_box(18, 23, 1, 5), source="user")
    runs = [QuestionRun(question="where are the dogs?", answer="on the grass",
                        captions=["two dogs on the grass", "dogs playing"], itm_probability=0.9,
                        object_uids=[d.uid for d in dogs]),
            QuestionRun(question="is there a cat?", answer="no", captions=["a park"]),
            QuestionRun(question="what is red?", answer="a ball", captions=["a red ball"], object_uids=[ball.uid])]
    p.put_changes(park, objects=[*dogs, ball, manual], runs=runs, source="chain")
    return p


def _lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_grounded_vqa_beside_the_coco_file(project, tmp_path):
    report = export_project(project, "coco", tmp_path / "out" / "park.json", grounded_vqa=True)
    jsonl = tmp_path / "out" / "park.grounded_vqa.jsonl"
    coco = pycoco.COCO(str(report.out))
    lines = _lines(jsonl)
    assert len(lines) == 1  # bare.png asks nothing
    line = lines[0]
    image = coco.imgs[line["image_id"]]
    assert (line["file_name"], line["width"], line["height"]) == (image["file_name"], 32, 24)
    by_q = {q["question"]: q for q in line["questions"]}
    assert list(by_q) == ["where are the dogs?", "is there a cat?", "what is red?"]
    dogs = by_q["where are the dogs?"]
    assert dogs["answer"] == "on the grass" and dogs["captions"] == ["two dogs on the grass", "dogs playing"]
    assert dogs["itm_probability"] == 0.9 and len(dogs["instances"]) == 2
    for inst in dogs["instances"]:
        ann = coco.anns[inst["annotation_id"]]  # the same annotation in the COCO file
        assert ann["image_id"] == line["image_id"] and inst["category"] == "dog"
        mask = coco.annToMask({**ann, "segmentation": inst["segmentation"]}).astype(bool)
        np.testing.assert_array_equal(mask, coco.annToMask(ann).astype(bool))
        assert inst["area"] == ann["area"] and inst["bbox"] == ann["bbox"]
    assert by_q["is there a cat?"] == {"question": "is there a cat?", "answer": "no", "captions": ["a park"],
                                       "itm_probability": None, "instances": []}  # a negative example
    assert [i["category"] for i in by_q["what is red?"]["instances"]] == ["ball"]
    grounded = {i["annotation_id"] for q in line["questions"] for i in q["instances"]}
    tree = next(a for a in coco.dataset["annotations"] if coco.cats[a["category_id"]]["name"] == "tree")
    assert tree["id"] not in grounded  # a manual object: in the COCO file, grounded by no question


def test_only_accepted_and_self_contained_splits(project, tmp_path):
    export_project(project, "coco", tmp_path / "ds", self_contained=True, only_accepted=True, grounded_vqa=True)
    line, = _lines(tmp_path / "ds" / "annotations" / "instances_default.grounded_vqa.jsonl")
    by_q = {q["question"]: q for q in line["questions"]}
    # the unaccepted ball is not exported, so its question goes; the cat question grounds nothing anyway
    assert set(by_q) == {"where are the dogs?", "is there a cat?"}
    assert len(by_q["where are the dogs?"]["instances"]) == 1
    found = sorted(p.relative_to(tmp_path / "ds").as_posix() for p in (tmp_path / "ds").rglob("*_*.json"))
    assert found == ["annotations/instances_default.json"]  # datumaro's search does not take the .jsonl


def test_cli_and_errors(project, tmp_path, capsys):
    assert run_qmask("export", [str(project.path), "-f", "coco", "-o", str(tmp_path / "c.json"), "--grounded-vqa"]) == 0
    assert (tmp_path / "c.grounded_vqa.jsonl").is_file()
    with pytest.raises(ExportError, match="beside a COCO file"):
        export_project(project, "yolo", tmp_path / "y", grounded_vqa=True)
