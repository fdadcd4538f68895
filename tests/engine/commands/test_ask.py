"""``qmask ask`` on tiny random models: output, JSON schema, CSV mode, errors, atomic outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from support.commands import qmask_ask


@pytest.fixture()
def image_file(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (72, 100, 3), dtype=np.uint8)).save(path)
    return path


def test_ask_prints_and_writes_json_and_overlay(tmp_path, image_file, tiny_models_dir, capsys):
    out_json = tmp_path / "out.json"
    out_png = tmp_path / "overlay.png"
    rc = qmask_ask(str(image_file), "What is on the table?", "--models", str(tiny_models_dir),
                   "--device", "cpu", "--num-captions", "4", "--json", str(out_json), "--overlay", str(out_png))
    assert rc == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("NOTE: random weights")
    assert "answer: " in out and "ITM match probability: " in out and "captions (" in out

    data = json.loads(out_json.read_text())
    for key in ("answer", "captions", "itm_probability", "heatmap", "fused_map", "points", "mask", "timings",
                "models", "random_weights"):
        assert key in data
    assert isinstance(data["answer"], str) and data["random_weights"] is True
    assert 1 <= len(data["captions"]) <= 4 and all(isinstance(c, str) for c in data["captions"])
    assert np.asarray(data["heatmap"]).shape == (6, 6) and np.asarray(data["fused_map"]).shape == (6, 6)
    assert data["image_size"] == [100, 72]
    p = data["points"][0]
    assert set(p) >= {"x", "y", "label", "score", "source"} and p["source"] == "auto" and p["label"] == 1
    rle = data["mask"]["rle"]
    assert rle["size"] == [72, 100] and isinstance(rle["counts"], str)
    from pycocotools import mask as mask_utils

    decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    assert decoded.shape == (72, 100) and int(decoded.sum()) == data["mask"]["area"]
    assert isinstance(data["mask"]["iou"], float)
    assert set(data["models"]) == {"itm", "caption", "qa", "efficient_sam"}
    assert data["timings"]["total"] > 0

    overlay = np.asarray(Image.open(out_png))
    assert overlay.shape == (72, 100, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "overlay.png", "photo.png"]


def test_no_segment(tmp_path, image_file, tiny_models_dir):
    out_json = tmp_path / "o.json"
    assert qmask_ask(str(image_file), "is it red?", "--models", str(tiny_models_dir), "--device", "cpu",
                     "--num-captions", "2", "--no-segment", "--json", str(out_json)) == 0
    assert json.loads(out_json.read_text())["mask"] is None


@pytest.mark.parametrize("question", ["", "  ", "?"])
def test_empty_question_fails_cleanly(tmp_path, image_file, tiny_models_dir, capsys, question):
    out_json = tmp_path / "o.json"
    rc = qmask_ask(str(image_file), question, "--models", str(tiny_models_dir), "--json", str(out_json))
    assert rc == 1
    assert "question is empty" in capsys.readouterr().err
    assert not out_json.exists()


def test_bad_image_fails_cleanly(tmp_path, tiny_models_dir, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a png")
    out_json = tmp_path / "o.json"
    rc = qmask_ask(str(bad), "what?", "--models", str(tiny_models_dir), "--json", str(out_json))
    assert rc == 1
    err = capsys.readouterr().err
    assert "qmask ask: error:" in err and "broken.png" in err
    assert not out_json.exists()
    assert qmask_ask(str(tmp_path / "missing.jpg"), "what?", "--models", str(tiny_models_dir)) == 1


def test_missing_model_names_download_command(tmp_path, image_file, monkeypatch, capsys):
    from engine.models import locations as models

    monkeypatch.setattr(models, "_locate_in_hf_cache", lambda repo, cache: (None, None, ""))
    monkeypatch.setenv("QMASK_CACHE_DIR", str(tmp_path / "cache"))
    out_json = tmp_path / "o.json"
    rc = qmask_ask(str(image_file), "what?", "--models", str(tmp_path / "nothing"), "--preset", "large",
                   "--json", str(out_json))
    assert rc == 1
    assert "qmask models download large" in capsys.readouterr().err
    assert not out_json.exists()


def test_bad_options(image_file, tiny_models_dir, capsys):
    assert qmask_ask(str(image_file), "q", "--models", str(tiny_models_dir), "--alpha", "1.5") == 1
    assert "--alpha" in capsys.readouterr().err
    assert qmask_ask(str(image_file)) == 1
    assert qmask_ask(str(image_file), "q", "--csv", "pairs.csv") == 1


def test_csv_pairs(tmp_path, image_file, tiny_models_dir, capsys):
    sub = tmp_path / "imgs"
    sub.mkdir()
    Image.fromarray(np.full((40, 50, 3), 120, np.uint8)).save(sub / "grey.png")
    (sub / "bad.png").write_bytes(b"nope")
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("image,question\n"
                     f"{image_file.name},what is this?\n"
                     "imgs/grey.png,is it grey?\n"
                     "imgs/bad.png,what?\n"
                     f"{image_file},how many?\n")
    out_jsonl = tmp_path / "out.jsonl"
    overlays = tmp_path / "overlays"
    rc = qmask_ask("--csv", str(pairs), "--models", str(tiny_models_dir), "--device", "cpu",
                   "--num-captions", "2", "--json", str(out_jsonl), "--overlay", str(overlays))
    assert rc == 1  # one pair failed; the others are written
    lines = [json.loads(x) for x in out_jsonl.read_text().splitlines()]
    assert len(lines) == 4
    assert [("error" in x) for x in lines] == [False, False, True, False]
    assert lines[1]["image_size"] == [50, 40] and "bad.png" in lines[2]["error"]
    assert len(list(overlays.glob("*.png"))) == 3
    assert "1 of 4 pair(s) failed" in capsys.readouterr().err


def test_csv_needs_columns(tmp_path, tiny_models_dir, capsys):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("path,text\na.png,what?\n")
    assert qmask_ask("--csv", str(pairs), "--models", str(tiny_models_dir)) == 1
    assert "image,question" in capsys.readouterr().err
