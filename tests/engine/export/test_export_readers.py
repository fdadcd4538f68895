"""Every export read the way its readers read it, on the masks that broke them: a 1-px line, a
single pixel, a ring with a hole, two blobs, a mask on the border, speckles, and an
EXIF-rotated image.

Readers: pycocotools and torchvision's CocoDetection (COCO); supervision (YOLO, LabelMe; a real
reader, in the test extra); Ultralytics' and labelme's documented rasterisation
(tests/support/dataset_readers.py: they cannot be installed in the test extra); datumaro's file search
(its ``*_*.json`` glob for COCO task files)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from engine.export import export_project
from engine.imaging.masks import mask_iou
from engine.project import Project

from support.annotation import put_answered
from support.dataset_readers import labelme_instances, labelme_label_file, ultralytics_instances

pycoco = pytest.importorskip("pycocotools.coco")

H, W = 40, 50
COMPACT = ("ring", "blobs", "border", "rotated")
THIN = ("line", "pixel")


def _shapes() -> dict[str, np.ndarray]:
    z = lambda: np.zeros((H, W), bool)  # noqa: E731
    line, pixel, ring, blobs, border = z(), z(), z(), z(), z()
    line[30, 5:40] = True
    pixel[3, 44] = True
    ring[4:22, 4:24] = True
    ring[9:16, 9:18] = False
    blobs[24:38, 2:16] = True  # two 14x14 blobs, 3 columns apart
    blobs[24:38, 19:33] = True
    border[:, 43:] = True
    border[-4:, 30:] = True
    return {"line": line, "pixel": pixel, "ring": ring, "blobs": blobs, "border": border}


def _speckles() -> np.ndarray:
    return np.random.default_rng(7).random((H, W)) > 0.93


def _rotated_mask() -> np.ndarray:  # in the displayed frame (20 wide, 30 high)
    m = np.zeros((30, 20), bool)
    m[2:25, 3:9] = True
    m[2:6, 3:18] = True  # an L: any rotation error shows
    return m


@pytest.fixture()
def project(tmp_path) -> Project:
    imgs = tmp_path / "photos"
    imgs.mkdir()
    p = Project.create(tmp_path / "p.qmask")
    Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(imgs / "known rect ü.png")
    Image.fromarray(np.full((H, W, 3), 60, np.uint8)).save(imgs / "specks.png")
    # stored 30 wide, 20 high, EXIF orientation 6: displayed 20 wide, 30 high
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.full((20, 30, 3), 200, np.uint8)).save(imgs / "coffee cup ☕.jpg", exif=exif.tobytes())
    img = p.add_image(imgs / "known rect ü.png", width=W, height=H)
    for name, mask in _shapes().items():
        put_answered(p, img, f"where is the {name}?", mask, label=name, answer=name, accepted=True)
    img = p.add_image(imgs / "specks.png", width=W, height=H)
    put_answered(p, img, "where are the specks?", _speckles(), label="specks")
    img = p.add_image(imgs / "coffee cup ☕.jpg", width=20, height=30)
    put_answered(p, img, "where is the cup?", _rotated_mask(), label="rotated")
    for im in p.iter_images():
        im.status = "ok"
        p.update_image(im)
    return p


def _expected() -> dict[str, np.ndarray]:
    return {**_shapes(), "specks": _speckles(), "rotated": _rotated_mask()}


def _check(name: str, got: np.ndarray, exact_all: bool = False) -> float:
    want = _expected()[name]
    iou = mask_iou(got, want)
    assert not (want & ~got).any(), f"{name}: pixels lost"
    if exact_all or name in THIN or name in ("ring", "border", "rotated"):
        assert iou == 1.0, (name, iou)
    elif name == "blobs":
        assert iou >= 0.99, (name, iou)  # YOLO's one polygon per instance: a 3-px bridge
    return iou


@pytest.mark.parametrize("polygons", [False, True])
def test_coco_pixel_exact_in_pycocotools(project, tmp_path, polygons):
    out = export_project(project, "coco", tmp_path / "coco", self_contained=True, polygons=polygons).out
    coco = pycoco.COCO(str(out))
    names = {c["id"]: c["name"] for c in coco.dataset["categories"]}
    seen = set()
    for ann in coco.dataset["annotations"]:
        _check(names[ann["category_id"]], coco.annToMask(ann).astype(bool), exact_all=True)
        seen.add(names[ann["category_id"]])
    assert seen == set(_expected())


def test_coco_self_contained_in_torchvision_and_datumaro_layout(project, tmp_path):
    from torchvision.datasets import CocoDetection

    report = export_project(project, "coco", tmp_path / "ds", self_contained=True)
    root = tmp_path / "ds"
    assert report.out == root / "annotations" / "instances_default.json" and report.rotated == 1
    # datumaro: COCO task files are found by a recursive *_*.json search and must be annotations/<task>_<subset>.json
    found = sorted(p.relative_to(root).as_posix() for p in root.rglob("*_*.json"))
    assert found == ["annotations/instances_default.json"]
    assert report.sidecar == root / "provenance" / "qmask-provenance.json"
    doc = json.loads(report.out.read_text())
    assert all("attributes" not in a for a in doc["annotations"])  # datumaro validators: no undefined attributes
    ds = CocoDetection(str(root / "images"), str(report.out))  # decodes without EXIF
    for i in range(len(ds)):
        image, anns = ds[i]
        info = ds.coco.imgs[ds.ids[i]]
        assert image.size == (info["width"], info["height"])  # the rotated image too
        for ann in anns:
            assert ds.coco.annToMask(ann).shape == (image.size[1], image.size[0])
    cup = next(i for i in doc["images"] if i["file_name"] == "coffee cup ☕.jpg")
    with Image.open(root / "images" / cup["file_name"]) as im:
        assert im.size == (20, 30) and im.getexif().get(0x0112, 1) == 1
        pixels = np.asarray(im)
    assert pixels.shape == (30, 20, 3) and abs(int(pixels.mean()) - 200) <= 2


def test_yolo_as_ultralytics_reads_it(project, tmp_path):
    out = export_project(project, "yolo", tmp_path / "y", self_contained=True).out
    classes = (out / "classes.txt").read_text().splitlines()
    seen = set()
    for label in (out / "labels").glob("*.txt"):
        image = next((out / "images").glob(label.stem + ".*"))
        with Image.open(image) as im:
            w, h = im.size  # upright copies: the size Ultralytics reads (it applies EXIF itself anyway)
        for cls, got in ultralytics_instances(label, w, h):
            _check(classes[cls], got)
            seen.add(classes[cls])
    assert seen == set(_expected())


def test_yolo_and_labelme_in_supervision(project, tmp_path):
    sv = pytest.importorskip("supervision")
    y = export_project(project, "yolo", tmp_path / "y", self_contained=True).out
    ds = sv.DetectionDataset.from_yolo(str(y / "images"), str(y / "labels"), str(y / "data.yaml"), force_masks=True)
    seen = set()
    for _path, _image, det in ds:
        for cls, mask in zip(det.class_id, det.mask):
            _check(ds.classes[int(cls)], mask)
            seen.add(ds.classes[int(cls)])
    assert seen == set(_expected())
    lm = export_project(project, "labelme", tmp_path / "lm", self_contained=True).out
    ds = sv.DetectionDataset.from_labelme(str(lm), str(lm))  # the provenance folder is not in its way
    seen = set()
    for _path, _image, det in ds:
        for cls, mask in zip(det.class_id, det.mask):
            _check(ds.classes[int(cls)], mask, exact_all=True)
            seen.add(ds.classes[int(cls)])
    assert seen == set(_expected())


def test_labelme_as_labelme_reads_it(project, tmp_path):
    images = tmp_path / "photos"
    out = export_project(project, "labelme", tmp_path / "lm").out
    seen = set()
    for image in sorted(images.iterdir()):
        found = labelme_label_file(image, out, images)  # labelme photos/ --output lm/
        assert found == out / f"{image.stem}.json"  # "known rect ü.json", "coffee cup ☕.json"
        for label, _desc, got in labelme_instances(json.loads(found.read_text(encoding="utf-8"))):
            _check(label, got, exact_all=True)
            seen.add(label)
    assert seen == set(_expected())
    # self-contained: each image beside its JSON, which labelme opens without --output
    sc = export_project(project, "labelme", tmp_path / "lm2", self_contained=True).out
    assert sorted(p.name for p in sc.iterdir() if not p.name.startswith(".")) == sorted(
        ["coffee cup ☕.jpg", "coffee cup ☕.json", "known rect ü.png", "known rect ü.json", "specks.png",
         "specks.json", "provenance"])  # (and the hidden .qmask_export marker: the folder is the export's own)
    for image in sc.glob("*.[jp][pn]g"):
        assert labelme_label_file(image) == sc / f"{image.stem}.json"


def test_moved_yolo_dataset_still_resolves(project, tmp_path):
    out = export_project(project, "yolo", tmp_path / "y", self_contained=True, val_fraction=0.34, seed=3).out
    moved = tmp_path / "elsewhere" / "dataset"
    shutil.copytree(out, moved)
    shutil.rmtree(out)
    data = yaml.safe_load((moved / "data.yaml").read_text())
    # Ultralytics' check_det_dataset: no 'path' -> the YAML file's folder is the root
    root = Path(data.get("path") or moved)
    assert root == moved
    for split in ("train", "val"):
        folder = root / data[split]
        images = sorted(folder.iterdir())
        assert folder.is_dir() and images
        for image in images:  # img2label_paths: /images/ -> /labels/, extension -> .txt
            label = Path(str(image).replace(f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}")).with_suffix(".txt")
            assert label.is_file()
    assert {p.parent.name for p in (root / "images").rglob("*.*")} == {"train", "val"}


def test_split_is_reproducible(project, tmp_path):
    a = export_project(project, "coco", tmp_path / "a", self_contained=True, val_fraction=0.34, seed=1)
    b = export_project(project, "coco", tmp_path / "b", self_contained=True, val_fraction=0.34, seed=1)
    names = lambda root, s: sorted(i["file_name"] for i in json.loads(  # noqa: E731
        (root / "annotations" / f"instances_{s}.json").read_text())["images"])
    for s in ("train", "val"):
        assert names(tmp_path / "a", s) == names(tmp_path / "b", s)
    assert len(names(tmp_path / "a", "val")) == 1 and len(names(tmp_path / "a", "train")) == 2
    assert a.images == b.images == 3
    for s in ("train", "val"):
        for n in names(tmp_path / "a", s):
            assert (tmp_path / "a" / "images" / s / n).is_file()


@pytest.mark.parametrize("size", [1, 3, 7, 640, 1000, 4000, 4032, 12000, 65535, 200000])
def test_yolo_coordinates_land_inside_their_pixel(size):
    """Every pixel centre, written and read back in float32 as Ultralytics and supervision do,
    is cast (int32) and rounded to itself (at c itself, float32 reads many just below c)."""
    from engine.export.yolo import yolo_row

    c = np.arange(size)
    row = yolo_row(0, np.stack([c, c[::-1]], axis=1), size, size)
    xy = np.array(row.split()[1:], dtype=np.float32).reshape(-1, 2) * np.float32(size)
    assert xy.dtype == np.float32
    np.testing.assert_array_equal(xy.astype(np.int32)[:, 0], c)
    np.testing.assert_array_equal(np.round(xy).astype(np.int32)[:, 1], c[::-1])
    assert float(np.abs(xy[:, 0] - (c + 0.25)).max()) < 0.1 and float(xy.max()) < size


def test_yolo_parts_option_is_exact_for_speckles(project, tmp_path):
    """One row per part: every pixel as Ultralytics reads it, each part an instance of its own."""
    out = export_project(project, "yolo", tmp_path / "y", self_contained=True, yolo_split_parts=True).out
    classes = (out / "classes.txt").read_text().splitlines()
    union: dict[str, np.ndarray] = {}
    for label in (out / "labels").glob("*.txt"):
        with Image.open(next((out / "images").glob(label.stem + ".*"))) as im:
            w, h = im.size
        for cls, got in ultralytics_instances(label, w, h):
            union[classes[cls]] = union.get(classes[cls], np.zeros((h, w), bool)) | got
    for name, got in union.items():
        _check(name, got, exact_all=True)
    rows = (out / "labels" / "specks.txt").read_text().splitlines()
    import cv2

    assert len(rows) == cv2.connectedComponents(_speckles().astype(np.uint8), connectivity=8)[0] - 1
