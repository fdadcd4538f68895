"""``qmask bench project`` runs end to end at a tiny N and prints every figure (no timing asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from engine.project import Project

ROOT = Path(__file__).resolve().parents[3]


def test_bench_project_prints_every_figure(tmp_path):
    folder = tmp_path / "bench"
    r = subprocess.run([sys.executable, "-m", "gui.main", "bench", "project", "--images", "20", "--folder", str(folder)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for pattern in (r"build: [\d.]+ ms per image", r"file size: [\d.]+ MB",
                    r"open \+ first screen \(50 list rows\) \+ first image's records: \d+ ms \(read: 21 image rows, 1 objects, 1 runs\)",
                    r"one edit committed .*median of 20.*: [\d.]+ ms",
                    r"batch bookkeeping per image .*: [\d.]+ ms at the start, [\d.]+ ms at the end",
                    r"batch bookkeeping per image on a 20-image project: [\d.]+ ms",
                    r"COCO export: [\d.]+ s for 40 annotations, peak memory \d+ MB",
                    r"old JSON format: [\d.]+ MB, one save \(whole file\) [\d.]+ s, one load [\d.]+ s"):
        assert re.search(pattern, out), (pattern, out)
    goals = re.findall(r"^  (.+): (met|MISSED)$", out, flags=re.MULTILINE)
    assert len(goals) == 5, out
    # the project it built is a real one, with the records it says: on every image the object the
    # edits accepted, and the proposal of the bookkeeping's last chain (the one before it replaced)
    p = Project.open(folder / "bench.qmask")
    assert p.count_images() == 20 and p.summary()["questions"] == 20
    assert p.summary()["objects"] == 40 and p.summary()["accepted"] == 20
    img = p.get_image(p.image_ids()[0])
    run, (edited, proposal) = img.runs[0], img.objects
    assert len(run.captions) == 100 and run.heatmap.shape == (24, 24) and edited.mask().shape == (768, 1024)
    assert edited.accepted and len(edited.points) == 6 and proposal.proposal and len(proposal.points) == 5
    assert (img.width, img.height) == (1024, 768) and run.object_uids == [proposal.uid, edited.uid]
    assert {e.writer.split("@")[0] for e in p.edits()} >= {"bench-edit", "bench-batch"}
    p.close()
