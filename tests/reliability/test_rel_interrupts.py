"""Reliability: a change that fails half way leaves the project byte for byte as it was. A merge
import is one transaction (before: images 8 -> 258, records 8 -> 508 after a disk I/O error in
its middle); a file-size limit (``ulimit -f``) is named as such, not as "disk I/O error"."""

from __future__ import annotations

import resource
import signal
import sqlite3

import numpy as np
import pytest

from engine.errors import ProjectError
from engine.export.coco_import import import_coco_to_project
from engine.project import ObjectRecord, Project

from .hostile import coco, digest, folder_state, png, qmask, square, write_json


@pytest.fixture()
def project8(tmp_path):
    """A closed project of 8 images, one record each (the battery's shape)."""
    path = tmp_path / "p.qmask"
    with Project.create(path) as p:
        for i in range(8):
            img = p.add_image(png(tmp_path / "own" / f"o{i}.png"), width=12, height=10)
            q = ObjectRecord(category="thing")
            mask = np.zeros((10, 12), bool)
            mask[1:5, 1:5] = True
            q.set_mask(mask)
            p.put_object(img, q)
    return path


def _dataset(tmp_path, n=250):
    images = [{"id": i + 1, "file_name": f"d{i}.png", "width": 12, "height": 10} for i in range(n)]
    anns = [{"id": 2 * i + k + 1, "image_id": i + 1, "category_id": 1, "segmentation": [square(k, k, 6 + k, 6)]}
            for i in range(n) for k in range(2)]
    (tmp_path / "data").mkdir(exist_ok=True)
    return write_json(tmp_path / "coco.json", coco(images, anns))


def _counts(path):
    with Project.open(path) as p:
        s = p.summary()
        return s["images"], s["objects"], len(p.edits())


def test_a_merge_import_failing_half_way_changes_nothing(project8, tmp_path, monkeypatch):
    doc = _dataset(tmp_path)
    before, counts = digest(project8), _counts(project8)
    before = digest(project8)
    calls = {"n": 0}
    from engine.project import tables

    real = tables.refresh_summary

    def failing(con, image_id):
        calls["n"] += 1
        if calls["n"] == 130:  # past the first chunk of the old, chunked import
            raise sqlite3.OperationalError("disk I/O error")
        return real(con, image_id)

    monkeypatch.setattr(tables, "refresh_summary", failing)
    with pytest.raises(ProjectError, match="disk I/O error.*Nothing of this change was written"):
        import_coco_to_project(doc, tmp_path / "data", project8, merge=True)
    monkeypatch.undo()
    assert calls["n"] == 130
    assert _counts(project8) == counts == (8, 8, 8)
    assert digest(project8) == before
    project, report = import_coco_to_project(doc, tmp_path / "data", project8, merge=True)  # again: whole
    project.close()
    assert report.annotations == 500 and _counts(project8)[:2] == (258, 508)


def _limit(size):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    return apply


def test_a_merge_import_past_a_file_size_limit_says_so_and_changes_nothing(project8, tmp_path):
    doc = _dataset(tmp_path)
    before, counts = digest(project8), _counts(project8)
    run = qmask("import", doc, "--images", tmp_path / "data", "--project", project8, "--merge",
                preexec_fn=_limit(project8.stat().st_size + 8192))
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert "file too large" in run.stderr and "p.qmask" in run.stderr, run.stderr
    assert digest(project8) == before and _counts(project8) == counts


def test_a_new_import_past_a_file_size_limit_creates_nothing(tmp_path):
    doc = _dataset(tmp_path)
    run = qmask("import", doc, "--images", tmp_path / "data", "--project", tmp_path / "new.qmask",
                preexec_fn=_limit(40_000))
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert "file too large" in run.stderr and f"project {tmp_path / 'new.qmask'}:" in run.stderr, run.stderr
    assert ".importing" not in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coco.json", "data"]


def test_an_export_past_a_file_size_limit_says_so_and_writes_nothing(project8, tmp_path):
    run = qmask("export", project8, "--format", "coco", "--out", tmp_path / "out" / "a.json",
                preexec_fn=_limit(2000))
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert "file too large" in run.stderr.lower(), run.stderr
    assert not (tmp_path / "out").exists()


def test_ctrl_c_during_a_merge_import_changes_nothing(project8, tmp_path, monkeypatch):
    doc = _dataset(tmp_path)
    before, counts = digest(project8), _counts(project8)
    calls = {"n": 0}
    from engine.project import tables

    real = tables.refresh_summary

    def interrupted(con, image_id):
        calls["n"] += 1
        if calls["n"] == 200:
            raise KeyboardInterrupt
        return real(con, image_id)

    monkeypatch.setattr(tables, "refresh_summary", interrupted)
    with pytest.raises(KeyboardInterrupt):
        import_coco_to_project(doc, tmp_path / "data", project8, merge=True)
    monkeypatch.undo()
    assert digest(project8) == before and _counts(project8) == counts


def test_ctrl_c_during_a_new_import_leaves_nothing(tmp_path, monkeypatch):
    doc = _dataset(tmp_path)
    from engine.project import tables

    monkeypatch.setattr(tables, "refresh_summary", lambda con, image_id: _raise())
    with pytest.raises(KeyboardInterrupt):
        import_coco_to_project(doc, tmp_path / "data", tmp_path / "new.qmask")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coco.json", "data"]


def _raise():
    raise KeyboardInterrupt


def test_ctrl_c_during_an_export_leaves_the_earlier_export(project8, tmp_path, monkeypatch):
    from engine.export import export_project
    from engine.export import png as png_writer

    with Project.open(project8) as p:
        export_project(p, "png", tmp_path / "out")
        before = folder_state(tmp_path / "out")
        calls = {"n": 0}
        real = png_writer._png_bytes

        def interrupted(image):
            calls["n"] += 1
            if calls["n"] == 5:
                raise KeyboardInterrupt
            return real(image)

        monkeypatch.setattr(png_writer, "_png_bytes", interrupted)
        with pytest.raises(KeyboardInterrupt):
            export_project(p, "png", tmp_path / "out")
    assert folder_state(tmp_path / "out") == before
    assert not [x for x in tmp_path.iterdir() if x.name.startswith(".")]
