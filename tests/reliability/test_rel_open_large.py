"""Reliability: opening a large project costs what is shown, not the project's size. The app
took 5.7 s on a 100,000-image project (a path made per image at open); the image list now
holds ids only and reads paths a page at a time as rows are used (``gui.workspace.path_column.PathColumn``).
Timings: ``python -m gui.tools.bench_open``; here the reads are counted."""

from __future__ import annotations

from engine.project import ImageRecord, Project

from .hostile import png


def _big(tmp_path, n=10_000):
    path = tmp_path / "big.qmask"
    with Project.create(path) as p:
        p.import_records([ImageRecord(path=f"images/img{i:05d}.png", width=12, height=10, status="ok")
                          for i in range(n)])
    png(tmp_path / "images" / "img00000.png")
    png(tmp_path / "images" / "img09000.png")
    return path


def test_opening_reads_ids_and_a_page_of_paths(qtbot, tmp_path):
    from gui.window.panels.image_list import ImageListPanel
    from gui.workspace.path_column import PathColumn
    from gui.workspace.workspace import Workspace

    project = Project.open(_big(tmp_path), writer="app")
    made = []  # every path the workspace makes goes through abs_path
    real_abs_path = project.abs_path
    project.abs_path = lambda image: made.append(image) or real_abs_path(image)
    workspace = Workspace(project)
    panel = ImageListPanel()
    qtbot.addWidget(panel)
    workspace.add_project_images()
    assert len(workspace.ids) == 10_000 and len(made) == 0
    panel.set_workspace(workspace)
    panel.show()
    workspace.set_index(0)
    qtbot.wait(20)
    assert panel.list.item(0).text() == "img00000.png"
    assert workspace.project.reads["paths"] <= 2 * PathColumn.PAGE, workspace.project.reads
    assert len(made) <= 2 * PathColumn.PAGE
    assert workspace.project.reads["images"] <= 3 * panel.model.PAGE, workspace.project.reads
    # a row far down: its page is read when it is used, and a path finds its row
    assert workspace.paths[9_000] == tmp_path / "images" / "img09000.png"
    assert workspace.find(tmp_path / "images" / "img09000.png") == 9_000
    assert workspace.find(tmp_path / "images" / ".." / "images" / "img09000.png") == 9_000
    assert workspace.find(tmp_path / "images" / "nope.png") == -1
    assert workspace.project.reads["paths"] <= 3 * PathColumn.PAGE
    workspace.sort("name")
    assert workspace.ids[workspace.index] == workspace.ids[0] and workspace.current.name == "img00000.png"
    assert workspace.project.reads["paths"] <= 3 * PathColumn.PAGE
    workspace.close()
