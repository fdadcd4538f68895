"""A failed command leaves no partial output: `qmask ask --json --overlay` under a file-size
limit (a real process with RLIMIT_FSIZE), and an export that fails half-way."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def _limited(limit_bytes: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return apply


def test_ask_under_a_file_size_limit_writes_nothing(tmp_path, tiny_models_dir):
    img = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (960, 1280, 3), dtype=np.uint8)).save(img)  # a big overlay
    out = tmp_path / "out"
    out.mkdir()
    cmd = [sys.executable, "-m", "gui.main", "ask", str(img), "what is it?", "--models", str(tiny_models_dir),
           "--device", "cpu", "--json", str(out / "r.json"), "--overlay", str(out / "r.png")]
    ok = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    sizes = [(out / "r.json").stat().st_size, (out / "r.png").stat().st_size]
    assert sizes[0] < sizes[1]  # the JSON (written first) fits under the limit below, the overlay does not
    for p in out.iterdir():
        p.unlink()
    # A limit between the two files' sizes: one of them could be written, the other cannot.
    limit = (sizes[0] + sizes[1]) // 2  # (the old code left the JSON behind here)
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, preexec_fn=_limited(limit))
    assert run.returncode != 0
    assert "Nothing was written" in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert sorted(p.name for p in out.iterdir()) == []  # neither file, and no temporary file
