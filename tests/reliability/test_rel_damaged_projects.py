"""Reliability: a damaged project (a table missing, a page whose bytes were flipped) is refused
by every command, and by the app, with a message naming it, and stays byte for byte as it was:
no command writes to it on the way to refusing it, nothing is left beside it. Reading commands
(export) open projects read-only, so a project in a read-only folder exports."""

from __future__ import annotations

import os
import sqlite3

import numpy as np
import pytest

from engine.errors import ProjectError
from engine.project import ObjectRecord, Project

from .hostile import coco, folder_state, png, qmask, square, unprivileged, write_json


def _healthy(folder, n=8):
    path = folder / "p.qmask"
    with Project.create(path) as p:
        for i in range(n):
            img = p.add_image(png(folder / "imgs" / f"{i}.png"), width=12, height=10)
            q = ObjectRecord(category="thing", accepted=True)
            mask = np.zeros((10, 12), bool)
            mask[1:5, 1:5] = True
            q.set_mask(mask)
            p.put_object(img, q)
    return path


def _drop_table(path):
    con = sqlite3.connect(path)
    con.execute("DROP TABLE edits")
    con.commit()
    con.close()


def _flip_page(path):
    """Flip the b-tree page header of the images table's root page (SQLite finds it malformed)."""
    con = sqlite3.connect(path)
    root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'images'").fetchone()[0]
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    data = bytearray(path.read_bytes())
    start = (root - 1) * page_size
    for k in range(start, start + 12):
        data[k] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {"table missing": (_drop_table, "table edits is missing"), "bytes flipped": (_flip_page, "is damaged")}


@pytest.fixture(params=sorted(DAMAGE))
def damaged(request, tmp_path):
    path = _healthy(tmp_path)
    damage, words = DAMAGE[request.param]
    damage(path)
    return path, words


def _commands(path, tmp_path):
    write_json(tmp_path / "coco.json", coco([{"id": 1, "file_name": "0.png", "width": 12, "height": 10}],
                                             [{"id": 1, "image_id": 1, "category_id": 1,
                                               "segmentation": [square(1, 1, 5, 5)]}]))
    return {
        "export coco": ["export", path, "--format", "coco", "--out", tmp_path / "out" / "a.json"],
        "export yolo": ["export", path, "--format", "yolo", "--out", tmp_path / "out" / "yolo"],
        "export qmask-json": ["export", path, "--format", "qmask-json", "--out", tmp_path / "copy.qmask.json"],
        "batch": ["batch", tmp_path / "imgs", "-q", "what?", "--project", path, "--models", tmp_path / "none"],
        "import --merge": ["import", tmp_path / "coco.json", "--images", tmp_path / "imgs", "--project", path,
                           "--merge"],
    }


@pytest.mark.parametrize("command", ["export coco", "export yolo", "export qmask-json", "batch", "import --merge"])
def test_every_command_refuses_a_damaged_project_and_leaves_it_as_it_was(damaged, tmp_path, command):
    path, words = damaged
    argv = _commands(path, tmp_path)[command]
    before = folder_state(tmp_path)
    run = qmask(*argv)
    assert run.returncode == 1 and "Traceback" not in run.stderr, (run.returncode, run.stderr)
    assert str(path) in run.stderr and words in run.stderr, run.stderr
    assert folder_state(tmp_path) == before  # the project byte for byte; no -wal, -shm, no output


def test_the_store_refuses_the_first_write_to_a_malformed_project(tmp_path):
    path = _healthy(tmp_path)
    _flip_page(path)
    before = folder_state(tmp_path)
    project = Project.open(path)  # the schema page is fine: opening is cheap and does not look further
    with pytest.raises(ProjectError, match="is damaged .*; QMask does not write to it"):
        project.set_meta("x", "y")
    with pytest.raises(ProjectError, match="damaged"):  # and every later write, at once
        project.set_meta("x", "y")
    project.close()
    assert folder_state(tmp_path) == before


def test_the_app_does_not_write_to_a_malformed_project(qtbot, tmp_path):
    from gui.workspace.workspace import Workspace

    path = _healthy(tmp_path)
    _flip_page(path)
    before = folder_state(tmp_path)
    workspace = Workspace(Project.open(path, writer="app"))
    with qtbot.waitSignal(workspace.save_failed, timeout=10_000) as said:  # soon after opening, unasked
        pass
    assert "is damaged" in said.args[0] and str(path) in said.args[0]
    with qtbot.waitSignal(workspace.save_failed, timeout=10_000) as failed:
        assert workspace.write(lambda p: p.add_images([png(tmp_path / "new.png")]), wait=True) is False
    assert "damaged" in failed.args[0] and str(path) in failed.args[0]
    workspace.close()
    (tmp_path / "new.png").unlink()
    assert folder_state(tmp_path) == before


def test_opening_a_project_with_a_missing_table_is_refused(tmp_path):
    path = _healthy(tmp_path)
    _drop_table(path)
    with pytest.raises(ProjectError, match="table edits is missing"):
        Project.open(path)
    with pytest.raises(ProjectError, match="table edits is missing"):
        Project.open(path, read_only=True)


def test_a_read_only_project_refuses_writes(tmp_path):
    path = _healthy(tmp_path)
    before = folder_state(tmp_path)
    with Project.open(path, read_only=True) as p:
        assert p.count_images() == 8
        with pytest.raises(ProjectError, match="opened to read only"):
            p.set_meta("x", "y")
    assert folder_state(tmp_path) == before


@pytest.fixture()
def read_only_folder(tmp_path):
    """A folder the child process may read but not write (made so by the test), ``out`` beside it."""
    folder = tmp_path / "ro"
    folder.mkdir()
    (tmp_path / "out").mkdir()
    yield folder
    os.chmod(folder, 0o755)


def test_export_of_a_project_in_a_read_only_folder_works(read_only_folder):
    path = _healthy(read_only_folder)
    os.chmod(read_only_folder, 0o555)
    before = folder_state(read_only_folder)
    out = read_only_folder.parent / "out"
    run = qmask("export", path, "--format", "coco", "--out", out / "a.json", prefix=unprivileged())
    assert run.returncode == 0, run.stderr
    assert (out / "a.json").is_file() and "Exported 8 annotation(s)" in run.stdout
    assert folder_state(read_only_folder) == before


def test_a_new_project_in_a_read_only_folder_names_the_folder(read_only_folder):
    os.chmod(read_only_folder, 0o555)
    png(read_only_folder.parent / "out" / "a.png")
    run = qmask("batch", read_only_folder.parent / "out", "-q", "what?", "--project", read_only_folder / "new.qmask",
                prefix=unprivileged())
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"the folder {read_only_folder} is not writable" in run.stderr, run.stderr
    assert ".new" not in run.stderr and os.listdir(read_only_folder) == []


def test_a_new_import_in_a_read_only_folder_names_the_project(read_only_folder):
    out = read_only_folder.parent / "out"
    write_json(out / "coco.json", coco([{"id": 1, "file_name": "a.png", "width": 12, "height": 10}]))
    png(out / "a.png")
    os.chmod(read_only_folder, 0o555)
    run = qmask("import", out / "coco.json", "--images", out, "--project", read_only_folder / "new.qmask",
                prefix=unprivileged())
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"Cannot create the project {read_only_folder / 'new.qmask'}: the folder {read_only_folder} is not " \
           "writable" in run.stderr, run.stderr
    assert os.listdir(read_only_folder) == []


def test_a_legacy_file_in_a_read_only_folder_says_why_it_cannot_be_converted(read_only_folder):
    from engine.project.interchange import write_json_project

    with Project.open(_healthy(read_only_folder.parent / "out")) as p:
        write_json_project(p, read_only_folder / "old.qmask.json")
    os.chmod(read_only_folder, 0o555)
    run = qmask("export", read_only_folder / "old.qmask.json", "--format", "coco", "--out",
                read_only_folder.parent / "out" / "a.json", prefix=unprivileged())
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"the folder {read_only_folder} is not writable" in run.stderr, run.stderr
    assert os.listdir(read_only_folder) == ["old.qmask.json"]
