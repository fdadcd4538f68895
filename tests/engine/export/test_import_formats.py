"""Imports of every format: export then import gives the same masks and classes (and, from
QMask's own exports, the questions); bad input names its file and line and writes nothing."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from engine.errors import ExportError
from engine.export import export_project
from engine.export.classes import indexed_names, names_from_yaml, read_yaml
from engine.export.importers import detect_format, import_dataset, import_into, read_dataset
from engine.project import Project

from support.annotation import put_answered
from support.commands import run_qmask

H, W = 30, 40


def _masks() -> dict[str, tuple[str, np.ndarray]]:
    """question -> (label, mask) on a 40x30 image."""
    z = lambda: np.zeros((H, W), bool)  # noqa: E731
    ring, line, pixel, blob, two = z(), z(), z(), z(), z()
    ring[2:14, 2:16] = True
    ring[5:10, 6:11] = False
    line[20, 3:30] = True
    pixel[27, 37] = True
    blob[15:30, 30:40] = True  # on the border
    two[2:8, 20:26] = True
    two[2:8, 29:35] = True
    return {"where is the ring?": ("ring", ring), "where is the line?": ("line", line),
            "where is the dot?": ("dot", pixel), "where is the blob?": ("blob", blob),
            "where are the twins?": ("twins", two)}


def _rotated() -> np.ndarray:  # displayed 20 wide, 30 high
    m = np.zeros((30, 20), bool)
    m[3:27, 4:9] = True
    m[3:7, 4:17] = True
    return m


@pytest.fixture()
def source(tmp_path) -> Project:
    imgs = tmp_path / "photos"
    imgs.mkdir()
    p = Project.create(tmp_path / "src.qmask")
    Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(imgs / "shapes one.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 30x20, displayed 20x30
    Image.fromarray(np.full((20, 30, 3), 150, np.uint8)).save(imgs / "cup.jpg", exif=exif.tobytes())
    Image.fromarray(np.full((H, W, 3), 30, np.uint8)).save(imgs / "empty.png")
    img = p.add_image(imgs / "shapes one.png", width=W, height=H)
    for k, (question, (label, mask)) in enumerate(_masks().items()):
        put_answered(p, img, question, mask, label=label, answer=f"a {label}", accepted=k % 2 == 0)
    img = p.add_image(imgs / "cup.jpg", width=20, height=30)
    put_answered(p, img, "where is the cup?", _rotated(), label="cup", answer="on the table", accepted=True)
    p.add_image(imgs / "empty.png", width=W, height=H)
    for im in p.iter_images():
        im.status = "ok"
        p.update_image(im)
    return p


def _by_name(project: Project) -> dict[str, list]:
    return {img.name: img.objects for img in project.iter_images()}


# (format, export options, what import reads, do questions come back)
CASES = [
    ("coco", {}, "coco.json", True),
    ("coco", {"polygons": True}, "coco.json", True),
    ("coco", {"self_contained": True}, "coco", True),
    ("coco", {"self_contained": True, "val_fraction": 0.5}, "coco", True),
    ("yolo", {}, "yolo", True),
    ("yolo", {"self_contained": True, "val_fraction": 0.5}, "yolo/data.yaml", True),
    ("labelme", {}, "labelme", True),
    ("labelme", {"self_contained": True}, "labelme", True),
    ("labelme", {"labelme_force_mask": True}, "labelme", True),
    ("png", {}, "png", True),
    ("png", {"self_contained": True}, "png", True),
]


@pytest.mark.parametrize("fmt, options, target, questions", CASES,
                         ids=[f"{c[0]}-{'-'.join(c[1]) or 'plain'}" for c in CASES])
def test_export_then_import_gives_the_same_masks_and_classes(source, tmp_path, fmt, options, target, questions):
    out = tmp_path / target.split("/")[0]
    export_project(source, fmt, out, **options)
    assert detect_format(tmp_path / target) == fmt
    images = tmp_path / "photos" if fmt in ("png", "coco") and not options.get("self_contained") else None
    dest, report = import_dataset(tmp_path / target, tmp_path / "dest.qmask", images_dir=images)
    assert report.images == 3 and not report.failed and not report.not_found, str(report)
    expected = _by_name(source)
    got = _by_name(dest)
    assert got.keys() == expected.keys()
    assert {c.name for c in dest.categories} >= {"ring", "line", "dot", "blob", "twins", "cup"}
    for name, records in expected.items():
        img = dest.find_image(next(p for p in (dest.abs_path(i) for i in dest.iter_images(records=False))
                                   if p.name == name))
        assert img.status == "ok" and (img.width, img.height) == ((20, 30) if name == "cup.jpg" else (W, H))
        assert len(got[name]) == len(records)
        by_label = {o.category: o for o in got[name]}
        runs = {r.question: r.answer for r in dest.find_image(img.path).runs}
        for o in records:
            r = by_label[o.category]
            want, have = o.mask(), r.mask()
            if fmt == "yolo" and o.category == "twins":  # one polygon per instance: the bridge's 3 pixels
                assert not (want & ~have).any() and int((have & ~want).sum()) == 3
            else:
                np.testing.assert_array_equal(have, want, err_msg=f"{fmt} {name} {o.category}")
            if questions:
                assert (r.question, r.accepted) == (o.question, o.accepted), (fmt, r.question)
                assert runs[r.question] == ("on the table" if o.category == "cup" else f"a {o.category}")
            assert (r.mask_source, r.source) == ("import", "import")
    dest.close()


def test_a_yolo_row_edited_elsewhere_loses_its_question_not_its_mask(source, tmp_path):
    export_project(source, "yolo", tmp_path / "y")
    label = tmp_path / "y" / "labels" / "shapes one.txt"
    rows = label.read_text().splitlines()
    rows[0] = "0 0.1 0.1 0.3 0.1 0.3 0.3 0.1 0.3"  # the ring's row, redrawn as a box in another tool
    label.write_text("\n".join(rows) + "\n")
    dataset = read_dataset(tmp_path / "y")
    shapes = next(i for i in dataset.images if i.path.name == "shapes one.png")
    first, second = shapes.instances[0], shapes.instances[1]
    assert "question" not in first.attributes and first.attributes["source"] == "labels/shapes one.txt:1"
    assert second.attributes["question"] == "where is the line?"
    assert first.mask[3:9, 4:12].all() and not first.mask[12:, :].any()


def test_foreign_yolo_dataset(tmp_path):
    """Ultralytics' own layout: data.yaml with a stale absolute path, names as a dict, images in
    train/val folders, a detection row, an image without labels."""
    root = tmp_path / "ds"
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(root / "images" / "train" / "a.jpg")
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(root / "images" / "val" / "b.png")
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(root / "images" / "val" / "c.png")
    (root / "labels" / "train" / "a.txt").write_text("1 0.1 0.1 0.5 0.1 0.5 0.5 0.1 0.5\n\n0 0.5 0.5 0.2 0.4\n")
    (root / "labels" / "val" / "b.txt").write_text("0 0.0 0.0 0.05 0.0 0.05 0.95\n")
    (root / "data.yaml").write_text("path: /nowhere/moved/away\ntrain: images/train\nval: images/val\n"
                                    "names:\n  0: person\n  1: bike\n")
    dataset = read_dataset(root)
    assert dataset.format == "yolo" and dataset.categories == ["person", "bike"]
    assert any("does not exist" in s for s in dataset.skipped)
    by = {i.path.name: i for i in dataset.images}
    assert set(by) == {"a.jpg", "b.png", "c.png"} and by["c.png"].instances == []
    bike, box = by["a.jpg"].instances
    assert bike.category == "bike" and box.category == "person"
    expected = np.zeros((10, 20), bool)
    expected[1:6, 2:11] = True  # 0.1*20=2 .. 0.5*20=10, rows 1..5: centres, boundary included
    np.testing.assert_array_equal(bike.mask, expected)
    assert box.mask.sum() == 4 * 4 and box.mask[3:7, 8:12].all()  # the box x 8..12, y 3..7
    assert by["b.png"].instances[0].mask[:, 1].all()  # the edge (1, 0)-(1, 9.5 -> 9): boundary drawn


@pytest.mark.parametrize("text, message", [
    ("0 0.1 0.1 0.2\n", ":1: 3 coordinate(s)"),
    ("0 0.1 0.1 0.2 0.2 0.3 x\n", ":1: not a label row"),
    ("\n2 0.1 0.1 0.2 0.2 0.3 0.3\n", ":2: class 2, but the class list has 2"),
    ("0.5 0.1 0.1 0.2 0.2 0.3 0.3\n", ":1: the class index '0.5'"),
    ("0 0.1 0.1 2.0 0.2 0.3 0.3\n", ":1: coordinates must be normalised"),
])
def test_bad_yolo_rows_name_file_and_line_and_write_nothing(tmp_path, text, message):
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(root / "images" / "a.png")
    (root / "labels" / "a.txt").write_text(text)
    (root / "classes.txt").write_text("person\nbike\n")
    p = Project.create(tmp_path / "p.qmask")
    before = p.summary()
    with pytest.raises(ExportError) as err:
        import_into(p, root)
    assert str(root / "labels" / "a.txt") + message in str(err.value)
    assert p.summary() == before and p.count_images() == 0
    with pytest.raises(ExportError):
        import_dataset(root, tmp_path / "new.qmask")
    assert not (tmp_path / "new.qmask").exists() and not list(tmp_path.glob(".new.qmask*"))


def test_bad_labelme_and_coco_files_name_the_place(tmp_path):
    (tmp_path / "lm").mkdir()
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(tmp_path / "lm" / "a.png")
    doc = {"version": "5.5.0", "shapes": [{"label": "x", "points": [[1, 1], [5, 1], [5, 5]], "shape_type": "polygon"},
                                          {"label": "y", "points": [[1, "a"]], "shape_type": "polygon"}],
           "imagePath": "a.png", "imageData": None, "imageHeight": 10, "imageWidth": 20}
    (tmp_path / "lm" / "a.json").write_text(json.dumps(doc))
    with pytest.raises(ExportError, match=r"a\.json: shapes\[1\]: 'points' must be"):
        read_dataset(tmp_path / "lm")
    (tmp_path / "lm" / "a.json").write_text('{"shapes": [\n  {"label": "x",,}\n]}')
    with pytest.raises(ExportError, match=r"a\.json:2: not readable JSON"):
        read_dataset(tmp_path / "lm", "labelme")
    (tmp_path / "c.json").write_text('{"images": [],\n\n "annotations": [}')
    with pytest.raises(ExportError, match=r"c\.json:3: not a readable COCO"):
        read_dataset(tmp_path / "c.json", "coco", images_dir=tmp_path)


def test_foreign_labelme_shapes(tmp_path):
    folder = tmp_path / "lm"
    folder.mkdir()
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(folder / "a.png")
    doc = {"version": "5.5.0", "imagePath": "a.png", "imageData": None, "imageHeight": 10, "imageWidth": 20,
           "shapes": [
               {"label": "car", "points": [[2, 2], [6, 5]], "shape_type": "rectangle", "group_id": None},
               {"label": "car", "points": [[10, 1], [14, 1], [14, 3]], "shape_type": "polygon", "group_id": 4},
               {"label": "car", "points": [[16, 6], [18, 6], [18, 8], [16, 8]], "shape_type": "polygon",
                "group_id": 4},
               {"label": "tree", "points": [[3, 8]], "shape_type": "point"}]}
    (folder / "a.json").write_text(json.dumps(doc))
    (folder / "notes.json").write_text(json.dumps({"hello": 1}))
    dataset = read_dataset(folder)
    assert dataset.categories == ["car"]
    assert any("point" in s for s in dataset.skipped) and any("notes.json" in s for s in dataset.skipped)
    rect, grouped = dataset.images[0].instances
    assert rect.mask.sum() == 5 * 4 and rect.mask[2:6, 2:7].all()  # labelme's rectangle: corners inclusive
    assert grouped.mask[6:9, 16:19].all() and grouped.mask[1, 10:15].all()  # two shapes, one instance


def test_yolo_class_lists(tmp_path):
    (tmp_path / "classes.txt").write_text("cat\ndog sled\n\n")
    assert indexed_names(tmp_path / "classes.txt") == ["cat", "dog sled"]
    (tmp_path / "a.yaml").write_text("names: [cat, 'dog sled']\n")
    (tmp_path / "b.yaml").write_text("names:\n  1: dog\n  0: cat\n")
    (tmp_path / "c.yaml").write_text("nc: 2\n")
    names = {n: names_from_yaml(read_yaml(tmp_path / n), tmp_path / n) for n in ("a.yaml", "b.yaml", "c.yaml")}
    assert names == {"a.yaml": ["cat", "dog sled"], "b.yaml": ["cat", "dog"], "c.yaml": ["0", "1"]}
    (tmp_path / "gap.yaml").write_text("names:\n  0: cat\n  2: dog\n")
    with pytest.raises(ExportError, match="without gaps"):
        names_from_yaml(read_yaml(tmp_path / "gap.yaml"), tmp_path / "gap.yaml")
    (tmp_path / "bad.yaml").write_text("names:\n  - cat\n - dog\n")
    with pytest.raises(ExportError, match=r"bad\.yaml:3: not readable YAML"):
        read_yaml(tmp_path / "bad.yaml")
    (tmp_path / "gap.txt").write_text("cat\n\ndog\n")  # every class after the gap would shift
    with pytest.raises(ExportError, match=r"gap\.txt:2: an empty class name"):
        indexed_names(tmp_path / "gap.txt")


def test_a_moved_self_contained_dataset_imports(source, tmp_path):
    export_project(source, "yolo", tmp_path / "y", self_contained=True)
    shutil.move(str(tmp_path / "y"), str(tmp_path / "moved"))
    dest, report = import_dataset(tmp_path / "moved", tmp_path / "d.qmask")
    assert report.images == 3 and report.annotations == 6 and not report.not_found
    assert all(dest.abs_path(i).parent == tmp_path / "moved" / "images" for i in dest.iter_images(records=False))
    dest.close()


def test_cli_imports_every_format(source, tmp_path, capsys):
    export_project(source, "yolo", tmp_path / "y", self_contained=True)
    export_project(source, "labelme", tmp_path / "lm")
    assert run_qmask("import", [str(tmp_path / "y" / "data.yaml"), "--project", str(tmp_path / "p.qmask")]) == 0
    assert "Imported 6 annotation(s) on 3 image(s)" in capsys.readouterr().out
    assert run_qmask("import", [str(tmp_path / "lm"), "--format", "labelme", "--project", str(tmp_path / "p.qmask"),
                 "--merge"]) == 0
    assert "Imported 6 annotation(s) on 3 image(s)" in capsys.readouterr().out  # the originals: other images
    (tmp_path / "nothing").mkdir()
    assert run_qmask("import", [str(tmp_path / "nothing"), "--project", str(tmp_path / "q.qmask")]) == 1
    assert "holds no dataset" in capsys.readouterr().err and not (tmp_path / "q.qmask").exists()
