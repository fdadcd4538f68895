"""Reliability: an export owns its output folder. A second export into the folder of the first
replaces it whole (before: the first export's YOLO labels, PNG masks and LabelMe files stayed
beside the second's; a relabel left 16 PNG masks for 8 annotations); a folder holding other
files is refused unless told. Over-long file names (a legal 250-byte image name, a 1,000-
character label) are shortened deterministically instead of failing the export."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import ExportError
from engine.export import export_project
from engine.export.staging import EXPORT_MARKER, MAX_NAME_BYTES, short_name
from engine.project import ObjectRecord, Project

from .hostile import folder_state, png, qmask


def _project(folder, names, label="thing"):
    p = Project.create(folder / "p.qmask")
    for i, name in enumerate(names):
        img = p.add_image(png(folder / "imgs" / name), width=12, height=10)
        img.status = "ok"
        p.update_image(img)
        q = ObjectRecord(category=label, accepted=i % 2 == 0)
        mask = np.zeros((10, 12), bool)
        mask[1:5, 1 + i % 4:6] = True
        q.set_mask(mask)
        p.put_object(img, q)
    return p


def _relabel(p, label):
    for img in p.iter_images():
        q = img.objects[0]
        q.category = label
        p.put_object(img, q)


def _files(folder):
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


@pytest.mark.parametrize("fmt", ["yolo", "labelme", "png"])
def test_a_second_export_replaces_the_first_whole(tmp_path, fmt):
    p = _project(tmp_path, [f"im{i}.png" for i in range(8)])
    out = tmp_path / "out"
    export_project(p, fmt, out)
    first = _files(out)
    _relabel(p, "other")
    export_project(p, fmt, out, only_accepted=True)  # 4 of the 8, with a new label
    second = _files(out)
    fresh = tmp_path / "fresh"
    export_project(p, fmt, fresh, only_accepted=True)
    assert second == _files(fresh) and len(second) < len(first), (first, second)
    if fmt == "png":
        assert len([f for f in second if f.startswith("masks/")]) == 4
        assert all("other" in f for f in second if f.startswith("masks/"))


def test_a_relabel_and_re_export_leaves_one_png_mask_per_annotation(tmp_path):
    p = _project(tmp_path, [f"im{i}.png" for i in range(8)])
    export_project(p, "png", tmp_path / "out")
    _relabel(p, "renamed")
    export_project(p, "png", tmp_path / "out")
    assert len(list((tmp_path / "out" / "masks").iterdir())) == 8


@pytest.mark.parametrize("fmt", ["yolo", "labelme", "png"])
def test_a_folder_holding_other_files_is_refused_unless_told(tmp_path, fmt):
    p = _project(tmp_path, ["a.png", "b.png"])
    out = tmp_path / "mine"
    (out / "notes").mkdir(parents=True)
    (out / "thesis.txt").write_text("keep me")
    before = folder_state(out)
    with pytest.raises(ExportError, match="holds other files .*thesis.txt.*--force"):
        export_project(p, fmt, out)
    assert folder_state(out) == before and not [x for x in tmp_path.iterdir() if x.name.startswith(".")]
    export_project(p, fmt, out, overwrite=True)
    assert not (out / "thesis.txt").exists() and (out / EXPORT_MARKER).is_file()


def test_an_export_made_before_the_marker_is_recognised_by_its_sidecar(tmp_path):
    p = _project(tmp_path, ["a.png", "b.png"])
    out = tmp_path / "out"
    export_project(p, "png", out)
    (out / EXPORT_MARKER).unlink()
    (out / "masks" / "stale__1_old.png").write_bytes(b"x")
    export_project(p, "png", out)
    assert not (out / "masks" / "stale__1_old.png").exists()


def test_coco_shares_its_folder(tmp_path):
    p = _project(tmp_path, ["a.png"])
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "readme.txt").write_text("mine")
    export_project(p, "coco", tmp_path / "data" / "ann.json")
    export_project(p, "coco", tmp_path / "data")
    assert sorted(x.name for x in (tmp_path / "data").iterdir()) == [
        "ann.json", "annotations.json", "provenance", "readme.txt"]
    assert sorted(x.name for x in (tmp_path / "data" / "provenance").iterdir()) == ["ann", "qmask-provenance.json"]


def test_the_command_refuses_and_forces(tmp_path):
    p = _project(tmp_path, ["a.png"])
    p.close()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.txt").write_text("x")
    run = qmask("export", tmp_path / "p.qmask", "--format", "yolo", "--out", tmp_path / "out")
    assert run.returncode == 1 and "holds other files (x.txt)" in run.stderr and "Traceback" not in run.stderr
    run = qmask("export", tmp_path / "p.qmask", "--format", "yolo", "--out", tmp_path / "out", "--force")
    assert run.returncode == 0, run.stderr
    assert not (tmp_path / "out" / "x.txt").exists()


LONG = {"ascii": "a" * 246 + ".png", "accented": "é" * 123 + ".png", "cjk": "漢" * 82 + ".png"}


@pytest.mark.parametrize("fmt", ["yolo", "labelme", "png"])
def test_a_legal_250_byte_image_name_exports(tmp_path, fmt):
    names = list(LONG.values()) + ["a" * 200 + "X.png", "a" * 200 + "Y.png"]  # alike beginnings stay apart
    assert all(len(n.encode()) <= 255 for n in names)
    p = _project(tmp_path, names)
    report = export_project(p, fmt, tmp_path / "out")
    assert report.images == 5
    files = [f for f in (tmp_path / "out").rglob("*") if f.is_file()]
    assert all(len(f.name.encode()) <= MAX_NAME_BYTES for f in files)
    export_project(p, fmt, tmp_path / "again")
    assert _files(tmp_path / "out") == _files(tmp_path / "again")  # deterministic


def test_a_1000_character_label_exports_as_png(tmp_path):
    p = _project(tmp_path, ["a.png", "b.png"], label="x" * 1000)
    report = export_project(p, "png", tmp_path / "out")
    masks = sorted((tmp_path / "out" / "masks").iterdir())
    assert report.annotations == 2 and len(masks) == 2
    assert all(len(m.name.encode()) <= MAX_NAME_BYTES for m in masks)


def test_short_name_is_deterministic_and_fits():
    long = "ü" * 300
    a, b = short_name(long, ".json"), short_name(long, ".json")
    assert a == b and a.endswith(".json") and len(a.encode()) <= MAX_NAME_BYTES
    assert short_name(long + "x", ".json") != a
    assert short_name("short", ".txt") == "short.txt"


def test_the_app_export_twice_into_one_folder_leaves_one_export(tmp_path):
    from engine.export.bundle import ExportOptions, run_export

    p = _project(tmp_path, [f"im{i}.png" for i in range(4)])
    options = ExportOptions(out_dir=tmp_path / "out", yolo=True, labelme=True, only_accepted=False)
    run_export(p, options)
    _relabel(p, "other")
    run_export(p, options)
    assert len(list((tmp_path / "out" / "png_masks" / "masks").iterdir())) == 4
    assert len(list((tmp_path / "out" / "overlays").glob("*.png"))) == 4
