"""A question run's per-word heat maps in the project (schema 3): kept compactly with the run,
read back within a 255th of each map's range, and a schema-2 project gains the column when it
is first opened to write, its runs kept."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from engine.errors import ProjectError
from engine.project import Project, QuestionRun, schema
from engine.project.rows import word_maps_blob, word_maps_from_blob


def _maps(seed: int = 0, g: int = 24) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [("what", rng.random((g, g), np.float32) * 0.01), ("yellow", rng.normal(0, 3, (g, g)).astype(np.float32)),
            ("flat", np.full((g, g), 0.25, np.float32))]


def _close(read: list, written: list) -> None:
    assert [w for w, _ in read] == [w for w, _ in written]
    for (_, got), (_, want) in zip(read, written):
        assert got.dtype == np.float32 and got.shape == want.shape
        span = float(want.max() - want.min())
        assert np.abs(got - want).max() <= span / 255 + 1e-6


def test_blob_round_trip_is_compact():
    maps = _maps()
    blob = word_maps_blob(maps)
    _close(word_maps_from_blob(blob), maps)
    assert len(blob) < 3 * 24 * 24 + 200  # at most a byte a cell, and a short header
    assert word_maps_blob([]) is None and word_maps_from_blob(None) == []


def test_runs_keep_their_word_maps_in_the_project(tmp_path):
    path = tmp_path / "p.qmask"
    maps = _maps(1)
    with Project.create(path) as p:
        image = p.add_image(tmp_path / "a.png", width=40, height=30)
        p.put_changes(image, runs=[QuestionRun(question="what is yellow?", heatmap=maps[1][1], word_maps=maps)],
                      source="user", action="test")
    with Project.open(path, read_only=True) as p:
        (run,) = p.get_image(p.find_image(tmp_path / "a.png").id).runs
    _close(run.word_maps, maps)


def test_a_schema_2_project_gains_the_column_and_keeps_its_runs(tmp_path):
    path = tmp_path / "p.qmask"
    with Project.create(path) as p:
        image = p.add_image(tmp_path / "a.png", width=40, height=30)
        p.put_changes(image, runs=[QuestionRun(question="what is it?", answer="a cat")], source="user", action="test")
    con = sqlite3.connect(path)
    con.execute("ALTER TABLE runs DROP COLUMN word_maps")  # as QMask of schema 2 wrote it
    con.execute("PRAGMA user_version=2")
    con.commit()
    con.close()
    with Project.open(path) as p:
        (run,) = p.get_image(p.find_image(tmp_path / "a.png").id).runs
        assert (run.answer, run.word_maps) == ("a cat", [])
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION == 3
    assert "word_maps" in [r[1] for r in con.execute("PRAGMA table_info(runs)")]
    con.close()


def test_damaged_word_maps_are_a_project_error(tmp_path):
    path = tmp_path / "p.qmask"
    with Project.create(path) as p:
        image = p.add_image(tmp_path / "a.png", width=40, height=30)
        p.put_changes(image, runs=[QuestionRun(question="what?", word_maps=_maps())], source="user", action="test")
    con = sqlite3.connect(path)
    con.execute("UPDATE runs SET word_maps = ?", (word_maps_blob(_maps())[:-9],))
    con.commit()
    con.close()
    with Project.open(path, read_only=True) as p, pytest.raises(ProjectError, match="damaged"):
        p.get_image(p.find_image(tmp_path / "a.png").id)
