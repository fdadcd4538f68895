"""Class names: control characters never reach a class list; every accepted name round-trips
through every export (YOLO's classes.txt and data.yaml, PNG's classes.txt, COCO, LabelMe); the
class list is kept in order, renamed in place, and never made of answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from engine.export import export_project
from engine.export.coco_import import import_coco_to_project
from engine.imaging.masks import encode_rle
from engine.errors import InputError
from engine.project import ImageRecord, ObjectRecord, Project, clean_label
from PIL import Image

NAMES = ["cat", "café au lait", "猫", "a: b # c", "\"quoted\"", "emoji 👩‍💻", "x" * 200, "- dash"]


@pytest.mark.parametrize("raw, stored", [("cat\ndog", "cat dog"), ("  tab\there ", "tab here"),
                                         ("line\u2028sep", "line sep"), ("bell\x07", "bell"),
                                         ("zero\u200bwidth", "zero width"), ("emoji 👩‍💻", "emoji 👩‍💻")])
def test_clean_label(raw, stored):
    assert clean_label(raw) == stored


def _project(tmp_path, labels):
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "a.png")
    p = Project.create(tmp_path / "p.qmask")
    img = ImageRecord(path="a.png", width=30, height=20, status="ok")
    for i, label in enumerate(labels):
        m = np.zeros((20, 30), bool)
        m[i:i + 3, i:i + 4] = True
        img.objects.append(ObjectRecord(category=label, mask_rle=encode_rle(m), order=i))
    p.import_records([img])
    for label in labels:
        p.ensure_category(label)
    return p


def test_a_newline_in_an_imported_category_is_replaced_with_a_message(tmp_path):
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "a.png")
    m = np.zeros((20, 30), bool)
    m[2:8, 3:9] = True
    rle = encode_rle(m)
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 30, "height": 20}],
            "categories": [{"id": 1, "name": "cat\ndog"}, {"id": 2, "name": "bird"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": rle},
                            {"id": 2, "image_id": 1, "category_id": 2, "segmentation": rle}]}
    (tmp_path / "c.json").write_text(json.dumps(coco))
    project, report = import_coco_to_project(tmp_path / "c.json", tmp_path, tmp_path / "p.qmask")
    assert "'cat\\ndog' is stored as 'cat dog'" in str(report)
    assert [c.name for c in project.categories] == ["cat dog", "bird"]
    export_project(project, "yolo", tmp_path / "yolo", copy_images=False)
    lines = (tmp_path / "yolo" / "classes.txt").read_text(encoding="utf-8").splitlines()
    assert lines == ["cat dog", "bird"]  # 2 lines for 2 classes: class 1 is "bird"
    labels = (tmp_path / "yolo" / "labels" / "a.txt").read_text().splitlines()
    assert sorted(int(line.split()[0]) for line in labels) == [0, 1]
    project.close()


def test_every_accepted_name_round_trips_through_every_class_list(tmp_path):
    project = _project(tmp_path, NAMES + ["new\nline"])
    names = [c.name for c in project.categories]
    assert names == NAMES + ["new line"]
    export_project(project, "yolo", tmp_path / "yolo", copy_images=False)
    assert (tmp_path / "yolo" / "classes.txt").read_text(encoding="utf-8").splitlines() == names
    data = yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text(encoding="utf-8"))
    assert [data["names"][i] for i in range(len(names))] == names and data["nc"] == len(names)
    export_project(project, "png", tmp_path / "png")
    assert (tmp_path / "png" / "classes.txt").read_text(encoding="utf-8").splitlines() == ["background"] + names
    export_project(project, "coco", tmp_path / "coco.json")
    coco = json.loads((tmp_path / "coco.json").read_text(encoding="utf-8"))
    assert [c["name"] for c in coco["categories"]] == names
    export_project(project, "labelme", tmp_path / "lm")
    shapes = json.loads((tmp_path / "lm" / "a.json").read_text(encoding="utf-8"))["shapes"]
    assert {s["label"] for s in shapes} == set(names)
    project.close()


def test_the_class_list_keeps_its_order_and_ids_and_renames_in_place(tmp_path):
    project = _project(tmp_path, ["cat", "dog"])
    assert [(c.id, c.name) for c in project.set_classes(["bird", "cat\nfish", "  ", "dog", "bird"])] == \
        [(3, "bird"), (4, "cat fish"), (2, "dog"), (3, "bird")]  # new ones get the next ids; known ones keep theirs
    assert [c.name for c in project.categories] == ["cat", "dog", "bird", "cat fish"]
    renamed = project.rename_category("dog", "hound\tdog")
    assert (renamed.id, renamed.name) == (2, "hound dog")
    img = project.find_image("a.png")
    assert [o.category for o in img.objects] == ["cat", "hound dog"]  # its objects follow
    with pytest.raises(InputError, match="already"):
        project.rename_category("cat", "bird")
    with pytest.raises(InputError, match="no class"):
        project.rename_category("wolf", "x")
    export_project(project, "yolo", tmp_path / "yolo", copy_images=False)
    assert (tmp_path / "yolo" / "classes.txt").read_text(encoding="utf-8").splitlines() == \
        ["cat", "hound dog", "bird", "cat fish"]  # same indices as before the rename
    lines = (tmp_path / "yolo" / "labels" / "a.txt").read_text().splitlines()
    assert sorted(int(line.split()[0]) for line in lines) == [0, 1]
    assert project.category_counts() == {1: 1, 2: 1}
    project.close()
