"""Reliability: what ``qmask import`` reads. Only files under ``--images`` (no ``..``, no
absolute ``file_name``, no symlink out), an unreadable image is a failed record with a
message, and polygon coordinates far outside the image are refused before pycocotools sees
them (they crashed the process natively)."""

from __future__ import annotations

import os

import pytest

from engine.errors import InputError
from engine.export import export_project
from engine.export.coco_import import coco_segmentation_to_mask, import_coco
from engine.project import Project

from .hostile import coco, digest, png, qmask, square, write_json


@pytest.fixture()
def dataset(tmp_path):
    """``images/inside.png`` and, beside the images folder, ``secret/outside.png`` (same size)."""
    png(tmp_path / "images" / "inside.png")
    png(tmp_path / "secret" / "outside.png", value=200)
    return tmp_path


def _entries(tmp_path, names):
    return coco([{"id": i + 1, "file_name": n, "width": 12, "height": 10} for i, n in enumerate(names)],
                [{"id": i + 1, "image_id": i + 1, "category_id": 1, "segmentation": [square(1, 1, 6, 6)]}
                 for i in range(len(names))])


@pytest.mark.parametrize("name", ["../secret/outside.png", "{abs}", "sub/../../secret/outside.png"])
def test_file_names_leading_outside_the_images_folder_are_refused(dataset, name):
    outside = dataset / "secret" / "outside.png"
    name = name.replace("{abs}", str(outside))
    doc = write_json(dataset / "coco.json", _entries(dataset, ["inside.png", name]))
    project = Project.create(dataset / "p.qmask")
    report = import_coco(doc, dataset / "images", project)
    assert report.images == 1 and report.annotations == 1
    assert any(name in r and "outside the images folder" in r for r in report.refused), report.refused
    assert name in str(report)
    stored = [img.path for img in project.iter_images()]
    assert stored == ["images/inside.png"], stored  # nothing recorded that points outside
    out = dataset / "yolo"
    export_project(project, "yolo", out)
    assert sorted(p.name for p in (out / "images").iterdir()) == ["inside.png"]


def test_a_symlink_inside_the_images_folder_leading_out_is_refused(dataset):
    os.symlink(dataset / "secret" / "outside.png", dataset / "images" / "link.png")
    doc = write_json(dataset / "coco.json", _entries(dataset, ["inside.png", "link.png"]))
    project = Project.create(dataset / "p.qmask")
    report = import_coco(doc, dataset / "images", project)
    assert report.images == 1 and any("link.png" in r for r in report.refused), report
    assert [img.path for img in project.iter_images()] == ["images/inside.png"]


def test_the_command_names_what_it_refused(dataset):
    doc = write_json(dataset / "coco.json", _entries(dataset, ["inside.png", "../secret/outside.png"]))
    before = digest(dataset / "secret" / "outside.png")
    run = qmask("import", doc, "--images", dataset / "images", "--project", dataset / "p.qmask")
    assert run.returncode == 0, run.stderr
    assert "../secret/outside.png" in run.stdout + run.stderr and "Traceback" not in run.stderr
    assert digest(dataset / "secret" / "outside.png") == before


def test_an_unreadable_image_is_a_failed_record_with_a_message(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    doc = write_json(tmp_path / "coco.json", _entries(tmp_path, ["broken.png"]))
    project = Project.create(tmp_path / "p.qmask")
    report = import_coco(doc, tmp_path / "images", project)
    assert len(report.failed) == 1 and "broken.png" in report.failed[0]
    [img] = list(project.iter_images())
    assert img.status == "failed" and "broken.png" in img.error


@pytest.mark.parametrize("value", [1e20, -1e20, 1e308, 3e9])
def test_polygon_coordinates_far_outside_the_image_are_refused(value):
    with pytest.raises(InputError, match="outside the 12x10 image"):
        coco_segmentation_to_mask([[0, 0, value, 0, value, value, 0, value]], 10, 12)


def test_polygon_coordinates_a_little_outside_the_image_still_work():
    mask = coco_segmentation_to_mask([square(-3, -2, 5, 4)], 10, 12)
    assert mask[:4, :5].all() and mask.sum() == 20


def test_huge_polygon_coordinates_end_in_a_message_not_a_native_crash(tmp_path):
    png(tmp_path / "images" / "a.png")
    anns = [{"id": k + 1, "image_id": 1, "category_id": 1, "segmentation": [square(0, 0, v, v)]}
            for k, v in enumerate([1e20, -1e20, 1e308])]
    doc = write_json(tmp_path / "coco.json", coco([{"id": 1, "file_name": "a.png", "width": 12, "height": 10}], anns))
    run = qmask("import", doc, "--images", tmp_path / "images", "--project", tmp_path / "p.qmask")
    assert run.returncode in (0, 1), (run.returncode, run.stderr)
    assert "3 annotation(s) skipped" in run.stdout and "outside the 12x10 image" in run.stdout, run.stdout
