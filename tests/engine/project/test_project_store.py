"""The project store under real processes: several writers at once, kill -9 mid-batch, damaged files.

Real database files in tmp_path, real subprocesses (tests/support/project_writers.py); nothing is timed.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import ProjectError
from engine.project import Project, schema

ROOT = Path(__file__).resolve().parents[3]
WRITER = ROOT / "tests" / "support" / "project_writers.py"


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WRITER), *map(str, args)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen, timeout: float = 120) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


def _go(project: Path) -> None:
    project.with_name(project.name + ".go").touch()


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(f.name for f in folder.iterdir() if f.name not in keep)


def test_two_batches_on_one_new_project_keep_both(tmp_path):
    """Two `qmask batch` runs with different questions start together on a project that does not
    exist yet: both create-or-open it, both exit 0, and both runs' records are there."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(6):
        a = np.full((12, 16, 3), 20, np.uint8)
        a[2:2 + i + 2, 3:9] = 240
        Image.fromarray(a).save(folder / f"im{i}.png")
    project = tmp_path / "p.qmask"
    first = _start("batch", project, folder, "what is bright?")
    second = _start("batch", project, folder, "where is it?")
    time.sleep(0.3)  # both are waiting for the go file
    _go(project)
    for proc in (first, second):
        assert "6 image(s) processed, 6 object(s) written" in _finish(proc)
    p = Project.open(project)
    images = list(p.iter_images())
    assert len(images) == 6 and p.summary()["questions"] == 12 and p.summary()["objects"] == 12
    for img in images:
        assert sorted(r.question for r in img.runs) == ["what is bright?", "where is it?"]
        assert sorted(o.question for o in img.objects) == ["what is bright?", "where is it?"]
        assert img.status == "ok"
        h = int(img.name[2]) + 2
        for o in img.objects:
            assert o.mask().sum() == h * 6  # each run's own result, not the other's
        for r in img.runs:
            assert r.object_uids and set(r.object_uids) <= {o.uid for o in img.objects if o.question == r.question}
    writers = {e.writer.split("@")[0] for e in p.edits()}
    assert writers == {"batch"} and len({e.writer for e in p.edits()}) == 2  # two processes
    p.close()
    assert _leftovers(tmp_path, {"imgs", "p.qmask", "p.qmask.go"}) == []


def test_two_writers_on_one_object_the_later_wins_and_the_log_keeps_both(tmp_path):
    from support.project_writers import SHARED_UID

    project = tmp_path / "p.qmask"
    p = Project.create(project)
    p.add_image(tmp_path / "shared.png", width=16, height=12)
    p.close()
    rounds = 40
    a = _start("edit", project, "alice", rounds, "shared.png")
    b = _start("edit", project, "bob", rounds, "shared.png")
    c = _start("chain", project, "c", 30)  # a third writer adds images meanwhile
    _go(project)
    for proc in (a, b, c):
        out = _finish(proc)
        assert out.count("done") == (30 if proc is c else rounds)  # every write landed
    p = Project.open(project)
    shared = p.find_image("shared.png")
    log = [e for e in p.edits(shared.id) if e.object_uid == SHARED_UID]
    assert len(log) == 2 * rounds  # nothing dropped
    by_writer = {}
    for e in log:
        by_writer.setdefault(e.writer.split("@")[0], []).append((e.detail["category"], e.detail["points"][0]["x"]))
    assert by_writer == {"edit-alice": [("alice", float(r)) for r in range(rounds)],
                         "edit-bob": [("bob", float(r)) for r in range(rounds)]}  # each in its own order
    assert {e.source for e in log} == {"user"}
    last = log[-1]
    assert len(shared.objects) == 1 and shared.objects[0].uid == SHARED_UID
    assert shared.objects[0].category == last.writer.split("@")[0].split("-")[1]  # the later write won
    assert shared.objects[0].points[0].x == last.detail["points"][0]["x"]
    assert p.count_images() == 31 and p.summary()["questions"] == 30 and p.summary()["objects"] == 31
    assert sorted(c.name for c in p.categories) == ["alice", "bob"]
    p.close()


def test_kill_9_mid_batch_keeps_every_committed_image(tmp_path):
    """A writer adding one image per transaction is killed with SIGKILL 20 times at random
    moments, resumed each time: every image it reported committed is there, once."""
    project = tmp_path / "p.qmask"
    Project.create(project).close()
    _go(project)
    n, rng = 400, random.Random(13)
    committed: set[int] = set()
    kills = 0
    while kills < 20:
        proc = _start("chain", project, "k", n)
        # Killed after a random number of its commits (not after a time: the machine may be busy),
        # while it is in the middle of the next one or between two.
        wait_for = rng.randint(1, 12)
        seen = 0
        for line in proc.stdout:
            if line.startswith("done"):
                committed.add(int(line.split()[1]))
                seen += 1
                if seen >= wait_for:
                    break
        proc.send_signal(signal.SIGKILL)
        out, _err = proc.communicate(timeout=60)
        committed |= {int(line.split()[1]) for line in out.splitlines() if line.startswith("done")}
        if proc.returncode == -signal.SIGKILL:
            kills += 1
        if len(committed) == n:
            break
    assert kills == 20 and 0 < len(committed) < n  # it really was killed mid-batch
    con = sqlite3.connect(project)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    p = Project.open(project)
    names = {img.name: img for img in p.iter_images()}
    for i in committed:
        img = names[f"k{i:04d}.png"]
        assert img.status == "ok" and [r.answer for r in img.runs] == [f"k{i}"]
        assert [o.question for o in img.objects] == ["what is it?"] and img.runs[0].object_uids == [img.objects[0].uid]
    assert all(len(img.runs) <= 1 and len(img.objects) <= 1 for img in names.values())
    assert p.count_images() == len(names)  # paths are unique: no image twice
    # the edit log has one chain entry per committed run, never more than one per image
    per_image: dict[int, int] = {}
    for e in p.edits():
        per_image[e.image_id] = per_image.get(e.image_id, 0) + 1
    assert max(per_image.values()) == 1 and len(per_image) >= len(committed)
    p.close()
    # a last run finishes the batch without redoing anything
    out = _finish(_start("chain", project, "k", n))
    assert {int(line.split()[1]) for line in out.splitlines()}.isdisjoint(committed)
    p = Project.open(project)
    assert p.count_images() == n and p.summary()["questions"] == n == p.summary()["objects"]
    p.close()
    assert _leftovers(tmp_path, {"p.qmask", "p.qmask.go"}) == []  # no journal, temp or debris


def _good_project(path: Path) -> Path:
    p = Project.create(path)
    for i in range(30):
        p.add_image(path.parent / f"im{i}.png", width=8, height=8)
    p.set_meta("note", "x" * 5000)
    p.close()
    return path


def _damaged(kind: str, tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "p.qmask"
    if kind == "truncated":
        data = _good_project(tmp_path / "good.qmask").read_bytes()
        assert len(data) > 8192
        path.write_bytes(data[: len(data) // 2 + 100])
        return path, "damaged"
    if kind == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
        return path, "not a QMask project"
    if kind == "empty":
        path.write_bytes(b"")
        return path, "not a QMask project"
    if kind == "other-sqlite":
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE t (x)")
        con.execute("INSERT INTO t VALUES (1)")
        con.commit()
        con.close()
        return path, "not a QMask project"
    if kind == "newer":
        _good_project(path)
        con = sqlite3.connect(path)
        con.execute(f"PRAGMA user_version={schema.SCHEMA_VERSION + 5}")
        con.close()
        return path, "newer QMask"
    if kind == "no-schema":
        _good_project(path)
        con = sqlite3.connect(path)
        con.execute("PRAGMA user_version=0")
        con.close()
        return path, "no QMask schema"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated", "random", "empty", "other-sqlite", "newer", "no-schema"])
def test_damaged_files_are_refused_and_left_byte_for_byte(tmp_path, kind):
    path, match = _damaged(kind, tmp_path)
    before = path.read_bytes()
    listing = sorted(f.name for f in tmp_path.iterdir())
    for opener in (Project.open, Project.open_or_create):
        with pytest.raises(ProjectError, match=match) as err:
            opener(path)
        assert "left as it was" in str(err.value)
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(path)
    assert path.read_bytes() == before
    assert sorted(f.name for f in tmp_path.iterdir()) == listing  # no journal, no temp file
    # the CLI says so too, and still leaves it alone
    result = subprocess.run([sys.executable, "-m", "gui.main", "export", str(path), "--format", "coco",
                             "--out", str(tmp_path / "out.json")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1 and "qmask export: error:" in result.stderr
    assert path.read_bytes() == before and not (tmp_path / "out.json").exists()


def test_a_project_opened_and_closed_leaves_nothing_beside_it(tmp_path):
    path = _good_project(tmp_path / "p.qmask")
    for _ in range(3):
        p = Project.open(path)
        p.add_image(tmp_path / "x.png")
        assert (tmp_path / "p.qmask-wal").exists()  # the journal exists while it is open ...
        p.close()
        assert _leftovers(tmp_path, {"p.qmask"}) == []  # ... and is folded back on close
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    assert os.path.getsize(path) > 0
