"""Reliability: an older ``.qmask.json`` that is hostile or damaged is refused with one message
naming the file and the field; nothing is converted (no ``.qmask`` appears) and the JSON stays
as it was. Before: RecursionError, ValueError, OverflowError tracebacks, and a NaN point that
was converted and then broke every export of the project."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.errors import ProjectError
from engine.imaging.masks import encode_rle
from engine.project import Project

from .hostile import digest, png, qmask


@pytest.fixture()
def legacy(tmp_path):
    """A valid version-1 interchange file (one image, one question with points, a mask and
    timings) as an earlier QMask wrote it, and a project beside it (the folder's other file)."""
    png(tmp_path / "a.png")
    Project.create(tmp_path / "src.qmask").close()
    mask = np.zeros((10, 12), bool)
    mask[2:6, 2:8] = True
    question = {"question": "where?", "label": "thing", "answer": "here", "timings": {"sam": 0.5},
                "points": [{"x": 3.0, "y": 4.0, "label": 1, "source": "user", "created": 0.0}], "models": {},
                "mask": encode_rle(mask), "mask_source": "user", "alpha": 0.5}
    doc = {"schema": "qmask.project", "version": 1, "created": 0.0, "meta": {}, "categories": [],
           "images": [{"path": "a.png", "width": 12, "height": 10, "status": "ok", "questions": [question]}]}
    (tmp_path / "old.qmask.json").write_text(json.dumps(doc), encoding="utf-8")
    return tmp_path / "old.qmask.json"


def _mutate(path, change):
    doc = json.loads(path.read_text(encoding="utf-8"))
    text = change(doc)
    path.write_text(text if isinstance(text, str) else json.dumps(doc), encoding="utf-8")


def _question(doc):
    return doc["images"][0]["questions"][0]


CASES = {
    "deep nesting": (lambda d: d["meta"].update(deep="[]") or json.dumps(d).replace('"[]"', "[" * 5000 + "]" * 5000),
                     "nests 5002 levels deep"),
    "timing as text": (lambda d: _question(d)["timings"].update(sam="fast"), "timings.sam: must be a finite number"),
    "huge width": (lambda d: d["images"][0].update(width=10 ** 30), "is too large"),
    "huge category id": (lambda d: d["categories"].append({"id": 2 ** 64, "name": "x"}), "is too large"),
    "big width": (lambda d: d["images"][0].update(width=2 ** 40), "width: must be from 1 to"),
    "NaN point": (lambda d: json.dumps(d).replace('"x": 3.0', '"x":NaN'), "NaN"),
    "Infinity point": (lambda d: json.dumps(d).replace('"x": 3.0', '"x":1e999'), "too large"),
    "text point": (lambda d: _question(d)["points"][0].update(x="nan"), "points[0].x"),
    "nested model name": (lambda d: _question(d)["models"].update(sam={"a": [1]}), "models.sam: expected text"),
    "list as meta": (lambda d: d.update(meta=[1, 2]), "expected dict, found list"),
    "box of text": (lambda d: _question(d).update(box=["0", 1, 2, 3]), "box[0]: must be a finite number"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_legacy_file_is_refused_and_left_as_it_was(legacy, case):
    change, message = CASES[case]
    _mutate(legacy, change)
    before = digest(legacy)
    with pytest.raises(ProjectError) as err:
        Project.open(legacy)
    assert "old.qmask.json" in str(err.value) and message in str(err.value), str(err.value)
    assert digest(legacy) == before
    assert not legacy.with_name("old.qmask").exists()
    assert sorted(p.name for p in legacy.parent.iterdir()) == ["a.png", "old.qmask.json", "src.qmask"]


def test_the_command_says_so_and_fails(legacy, tmp_path):
    _mutate(legacy, CASES["timing as text"][0])
    run = qmask("export", legacy, "--format", "coco", "--out", tmp_path / "out.json")
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert "old.qmask.json" in run.stderr and "timings.sam" in run.stderr
    assert not (tmp_path / "out.json").exists() and not (tmp_path / "old.qmask").exists()


def test_a_valid_legacy_file_still_converts_and_exports(legacy, tmp_path):
    with Project.open(legacy) as p:
        [img] = list(p.iter_images())
        assert img.runs[0].timings == {"sam": 0.5} and img.objects[0].points[0].x == 3.0
    run = qmask("export", legacy, "--format", "coco", "--out", tmp_path / "out.json")
    assert run.returncode == 0, run.stderr
