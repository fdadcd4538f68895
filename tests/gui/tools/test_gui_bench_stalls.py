"""``python -m gui.tools.bench_clicks`` at tiny sizes (a real process): its clicks and then every stall
scenario run to the end and are printed in the table. Figures are printed, never asserted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCENARIOS = ("switch images", "brush release", "polygon tool", "export", "open a folder of 12 images",
             "open a project of 60 images", "median click", "median brush move")


def test_bench_clicks_runs_every_stall_scenario(tiny_models_dir):
    argv = ["--models", str(tiny_models_dir), "--clicks", "2", "--size", "160x120", "--zoom-steps", "2",
            "--switches", "1", "--folder-images", "12", "--project-images", "60", "--big-size", "240x180",
            "--stall-switches", "2", "--brush-moves", "5"]
    done = subprocess.run([sys.executable, "-m", "gui.tools.bench_clicks", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = done.stdout[done.stdout.index("GUI-thread stalls under load"):]
    for name in SCENARIOS:
        assert name in table, (name, table)
    assert "goals missed:" in table
