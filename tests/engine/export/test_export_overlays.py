"""``qmask export --overlays DIR``: the overlay images the app's File > Export… writes, from the
command line (a real process on a small project of real image files), all or nothing with the
dataset written beside them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.export.bundle import ExportOptions, run_export
from engine.project import Project

from support.annotation import put_answered

ROOT = Path(__file__).resolve().parents[3]
SIZES = {"street.png": (40, 56), "field.png": (30, 24)}  # name: (H, W)


def qmask(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gui.main", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "QMASK_MODELS_DIR": ""})


def _mask(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[h // 4:h // 2, w // 4:w // 2] = True
    return m


@pytest.fixture()
def project(tmp_path) -> Path:
    """Two photos (random noise, real PNG files), each with one accepted object; the street's
    question has a heat map, the field's has none."""
    imgs = tmp_path / "images"
    imgs.mkdir()
    rng = np.random.default_rng(3)
    with Project.create(tmp_path / "p.qmask") as p:
        for name, (h, w) in SIZES.items():
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(imgs / name)
            img = p.add_image(imgs / name, width=w, height=h)
            img.status = "ok"
            p.update_image(img)
            run = {"heatmap": rng.random((6, 6)).astype(np.float32)} if name == "street.png" else None
            put_answered(p, img, f"what is in the {name[:-4]}?", _mask(h, w), label="thing", accepted=True, run=run)
    return tmp_path / "p.qmask"


def _pngs(folder: Path) -> dict[str, np.ndarray]:
    return {f.name: np.asarray(Image.open(f).convert("RGB")) for f in sorted(folder.glob("*.png"))}


def test_cli_writes_the_apps_overlays(project, tmp_path):
    out = tmp_path / "overlays"
    done = qmask("export", str(project), "--overlays", str(out))
    assert done.returncode == 0, done.stderr
    assert f"Wrote 2 overlay image(s) to {out}" in done.stdout
    overlays = _pngs(out)
    assert sorted(overlays) == ["field_thing.png", "street_thing.png"]
    for name, (h, w) in SIZES.items():
        original = np.asarray(Image.open(tmp_path / "images" / name).convert("RGB"))
        drawn = overlays[f"{name[:-4]}_thing.png"]
        assert drawn.shape == original.shape == (h, w, 3)
        inside = _mask(h, w)
        inside[h // 4, :] = inside[:, w // 4] = False  # (the outline's pixels differ anyway)
        assert (drawn[inside] != original[inside]).any(axis=-1).all(), name  # the mask's fill on every pixel
    # without a heat map, only the mask is drawn: far from it the photo is as it was
    field = tmp_path / "images" / "field.png"
    original = np.asarray(Image.open(field).convert("RGB"))
    assert np.array_equal(overlays["field_thing.png"][-5:], original[-5:])
    # the same files as the app's export writes
    run_export(Project.open(project, read_only=True), ExportOptions(out_dir=tmp_path / "app", coco=False,
                                                                  png_masks=False))
    app = _pngs(tmp_path / "app" / "overlays")
    assert app.keys() == overlays.keys() and all(np.array_equal(app[k], overlays[k]) for k in app)


def test_cli_overlays_and_a_dataset_are_written_both_or_neither(project, tmp_path):
    out = tmp_path / "out"
    # a dataset folder holding someone's files is refused: the overlays, drawn first, stay unseen
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    refused = qmask("export", str(project), "--format", "yolo", "--out", str(tmp_path / "mine"),
                    "--overlays", str(out / "overlays"))
    assert refused.returncode == 1 and "holds other files" in refused.stderr, refused.stderr
    assert not out.exists()
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]
    # an image gone: the overlays cannot be drawn, so the COCO file is not written either
    (tmp_path / "images" / "field.png").unlink()
    failed = qmask("export", str(project), "--format", "coco", "--out", str(out / "ann.json"),
                   "--overlays", str(out / "overlays"))
    assert failed.returncode == 1 and "field.png" in failed.stderr, failed.stderr
    assert not out.exists() and not list(tmp_path.glob(".*qmask-export*"))
    # both, once the image is back
    Image.fromarray(np.zeros((30, 24, 3), np.uint8)).save(tmp_path / "images" / "field.png")
    both = qmask("export", str(project), "--format", "coco", "--out", str(out / "ann.json"),
                 "--overlays", str(out / "overlays"))
    assert both.returncode == 0, both.stderr
    assert (out / "ann.json").is_file() and len(_pngs(out / "overlays")) == 2


def test_cli_says_what_to_export(project):
    nothing = qmask("export", str(project))
    assert nothing.returncode == 1 and "--overlays DIR" in nothing.stderr
    no_out = qmask("export", str(project), "--format", "png")
    assert no_out.returncode == 1 and "needs --out" in no_out.stderr
    helped = qmask("export", "--help")
    assert helped.returncode == 0 and "--overlays DIR" in helped.stdout
