"""Reliability: file names a user may have. A name that is not UTF-8 (bytes Python reads with
surrogateescape) in a batch folder is skipped with a message naming it and the batch goes on
(before: UnicodeEncodeError in Project.add_images); names with control characters,
emoji or a leading dash go through a batch and every export."""

from __future__ import annotations

import os

import pytest

from engine.annotation.batch import run_batch
from engine.errors import InputError
from engine.export import export_project
from engine.project import Project

from .hostile import StandInPipeline, png


def _bytes_named(folder, raw: bytes):
    """A real PNG whose name is ``raw`` (not UTF-8); returns its path as Python sees it."""
    good = png(folder / "tmp-source.png", value=255)
    target = os.path.join(os.fsencode(folder), raw)
    os.rename(os.fsencode(good), target)
    return folder / os.fsdecode(raw)


def test_a_batch_skips_a_name_that_is_not_utf8_and_goes_on(tmp_path):
    folder = tmp_path / "imgs"
    png(folder / "a.png", value=255)
    bad = _bytes_named(folder, b"caf\xe9-\xff.png")
    assert bad.is_file()
    project = Project.create(tmp_path / "p.qmask")
    report = run_batch(folder, ["what?"], project, pipeline=StandInPipeline(), show_progress=False)
    assert report.processed == 1 and report.ok
    [(name, why)] = report.failed
    assert name.endswith("caf\\xe9-\\xff.png") and "not valid UTF-8" in why
    assert [img.path for img in project.iter_images()] == ["imgs/a.png"]


def test_the_store_refuses_such_a_name_with_a_message(tmp_path):
    bad = _bytes_named(tmp_path, b"\xff.png")
    project = Project.create(tmp_path / "p.qmask")
    with pytest.raises(InputError, match=r"\\xff\.png: its file name is not valid UTF-8"):
        project.add_images([tmp_path / "ok.png", bad])
    assert project.count_images() == 0


def test_the_app_says_which_file_it_could_not_add(qtbot, tmp_path):
    from gui.workspace.workspace import Workspace

    bad = _bytes_named(tmp_path, b"\xff.png")
    good = png(tmp_path / "good.png")
    workspace = Workspace(Project.create(tmp_path / "p.qmask"))
    with qtbot.waitSignal(workspace.save_failed, timeout=5000) as said:
        added = workspace.add_paths([bad, good])
    assert [s.name for s in added] == ["good.png"] and "\\xff.png" in said.args[0]
    workspace.close()


NAMES = ["-rf.png", "tab\tand\nnewline.png", "emoji 🐕.png", "quote\"'.png", "back\\slash.png", " space .png"]


@pytest.mark.parametrize("fmt", ["coco", "yolo", "labelme", "png"])
def test_awkward_but_legal_names_go_through_a_batch_and_every_export(tmp_path, fmt):
    folder = tmp_path / "imgs"
    for name in NAMES:
        png(folder / name, value=255)
    project = Project.create(tmp_path / "p.qmask")
    report = run_batch(folder, ["what?"], project, pipeline=StandInPipeline(), show_progress=False)
    assert report.processed == len(NAMES) and not report.failed
    out = tmp_path / ("out.json" if fmt == "coco" else "out")
    result = export_project(project, fmt, out)
    assert result.images == len(NAMES)


def test_relocating_into_a_folder_whose_name_is_not_utf8_finds_nothing_there_and_says_so(tmp_path):
    project = Project.create(tmp_path / "p.qmask")
    project.add_images([png(tmp_path / "old" / "a.png")])
    (tmp_path / "old" / "a.png").unlink()
    moved = tmp_path / os.fsdecode(b"new-\xff")
    png(moved / "a.png")
    report = project.relocate(moved)
    assert report.not_found == ["old/a.png"] and not report.found
