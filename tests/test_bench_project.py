"""``qmask bench project`` runs end to end at a tiny N and prints every figure (no timing asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from engine.project import Project

ROOT = Path(__file__).resolve().parents[1]


def test_bench_project_prints_every_figure(tmp_path):
    folder = tmp_path / "bench"
    r = subprocess.run([sys.executable, "-m", "gui.main", "bench", "project", "--images", "20", "--folder", str(folder)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for pattern in (r"build: [\d.]+ ms per image", r"file size: [\d.]+ MB",
                    r"open \+ first screen \(50 list rows\) \+ first image's records: \d+ ms \(records read: 21 image rows, 1 question records\)",
                    r"one edit committed .*median of 20.*: [\d.]+ ms",
                    r"batch bookkeeping per image .*: [\d.]+ ms at the start, [\d.]+ ms at the end",
                    r"batch bookkeeping per image on a 20-image project: [\d.]+ ms",
                    r"COCO export: [\d.]+ s for 20 annotations, peak memory \d+ MB",
                    r"old JSON format: [\d.]+ MB, one save \(whole file\) [\d.]+ s, one load [\d.]+ s"):
        assert re.search(pattern, out), (pattern, out)
    goals = re.findall(r"^  (.+): (met|MISSED)$", out, flags=re.MULTILINE)
    assert len(goals) == 5, out
    # the project it built is a real one, with the records it says
    p = Project.open(folder / "bench.qmask")
    assert p.count_images() == 20 and p.summary()["questions"] == 20
    img = p.get_image(p.image_ids()[0])
    q = img.questions[0]
    assert len(q.captions) == 100 and q.heatmap.shape == (24, 24) and q.mask().shape == (768, 1024)
    assert len(q.auto_points) == 5 and (img.width, img.height) == (1024, 768)
    assert {e.writer.split("@")[0] for e in p.edits()} >= {"bench-edit", "bench-batch"}
    p.close()
