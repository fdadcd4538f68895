"""``qmask export ... --images DIR``: images that moved are relocated (one transaction in the
project) before the export; without it, the warning says how to relocate (CLI or app)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from engine.commands import cli
from engine.project import ObjectRecord, Project, QuestionRun, file_sha256


@pytest.fixture()
def moved(tmp_path):
    """A project of two annotated images under work/images, moved to elsewhere/pics (b.png lost)."""
    images = tmp_path / "work" / "images"
    images.mkdir(parents=True)
    project = Project.create(tmp_path / "work" / "p.qmask")
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((12, 16, 3), 90, np.uint8)).save(images / name)
        img = project.add_image(images / name, width=16, height=12, sha256=file_sha256(images / name))
        img.status = "ok"
        project.update_image(img)
        obj = ObjectRecord(question="what is it?", source="question", category="box")
        mask = np.zeros((12, 16), bool)
        mask[2:8, 3:10] = True
        obj.set_mask(mask, source="auto")
        project.put_changes(img, runs=[QuestionRun(question="what is it?", answer="box")], objects=[obj],
                            source="chain")
    project.close()
    new = tmp_path / "elsewhere" / "pics"
    new.parent.mkdir()
    shutil.move(str(images), str(new))
    (new / "b.png").unlink()
    return project.path, new


def _log(project_file):
    p = Project.open(project_file)
    try:
        return [(e.action, e.detail) for e in p.edits()]
    finally:
        p.close()


def test_export_with_images_relocates_and_saves(moved, tmp_path, capsys):
    project_file, new = moved
    before = _log(project_file)
    out = tmp_path / "yolo"
    rc = cli.main(["export", str(project_file), "--format", "yolo", "--out", str(out), "--images", str(new)])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "relocated" in err and "1 image(s) found, 1 not found" in err
    # b.png is still missing: the warning says both ways to relocate it.
    assert "1 image file(s) are missing" in err and "--images DIR" in err and "Locate folder" in err
    saved = Project.open(project_file)
    assert [img.path for img in saved.iter_images()] == ["../elsewhere/pics/a.png", "images/b.png"]
    saved.close()
    # the relocation is one logged change, after what was there before
    assert _log(project_file) == before + [("relocate", {"from": "images/a.png", "to": "../elsewhere/pics/a.png"})]
    assert sorted(f.name for f in project_file.parent.iterdir()) == ["p.qmask"]  # no journal or temp file left
    copied = sorted(p.name for p in (out / "images").rglob("*.png"))
    assert copied == ["a.png"]


def test_export_without_images_warns_how_to_relocate(moved, tmp_path, capsys):
    project_file, _new = moved
    before = project_file.read_bytes()
    rc = cli.main(["export", str(project_file), "--format", "yolo", "--out", str(tmp_path / "y")])
    err = capsys.readouterr().err
    assert rc == 0
    assert "2 image file(s) are missing" in err and "--images DIR" in err and "Locate folder" in err
    assert project_file.read_bytes() == before  # nothing relocated, nothing written


def test_export_images_not_a_folder_is_an_error(moved, tmp_path, capsys):
    project_file, _new = moved
    rc = cli.main(["export", str(project_file), "--format", "coco", "--out", str(tmp_path / "c.json"),
                   "--images", str(tmp_path / "nowhere")])
    assert rc == 1 and "is not a folder" in capsys.readouterr().err


def test_import_names_both_ways_to_relocate(tmp_path, capsys):
    coco = {"images": [{"id": 1, "file_name": "gone.png", "width": 16, "height": 12}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 20.0,
                             "bbox": [2, 2, 5, 4], "segmentation": [[2, 2, 7, 2, 7, 6, 2, 6]]}],
            "categories": [{"id": 1, "name": "box"}]}
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    (tmp_path / "imgs").mkdir()
    cli.main(["import", str(tmp_path / "coco.json"), "--images", str(tmp_path / "imgs"),
              "--project", str(tmp_path / "imp.qmask")])
    err = capsys.readouterr().err
    assert "not found" in err and "qmask export" in err and "--images DIR" in err and "Locate folder" in err
