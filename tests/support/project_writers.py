"""Processes that write a project, for the multi-process and kill tests (run as a script).

    python tests/support/project_writers.py chain PROJECT PREFIX N          # N images, one transaction each
    python tests/support/project_writers.py edit PROJECT NAME ROUNDS IMAGE  # ROUNDS user edits of one object
    python tests/support/project_writers.py batch PROJECT FOLDER QUESTION    # run_batch with a stand-in chain

Each waits for ``PROJECT.go`` to exist before writing (so that two start together), prints
``done I`` after each committed write, and exits 0.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
for folder in (ROOT, ROOT / "tests"):  # run as a script: the repository and the tests' support package
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from engine.project import ObjectRecord, Project, normalise_question  # noqa: E402
from engine.prompts import Point  # noqa: E402
from engine.results import (  # noqa: E402
    AnswerResult, CaptionsResult, ChainResult, FusionResult, HeatmapResult, MaskCandidate,
    SegmentationResult,
)
from support.fakes import PipelineStandIn  # noqa: E402


SHARED_UID = "5a4ed0b1ec7000aa"  # the one object the "edit" writers all write


def chain_result(mask: np.ndarray, question: str, answer: str = "thing") -> ChainResult:
    h, w = mask.shape
    heat = np.zeros((4, 4), np.float32)
    heat[0, 0] = 1.0
    pts = (Point(w / 2, h / 2, score=1.0, source="auto"),)
    cand = MaskCandidate(mask=mask, low_res_logits=np.zeros((4, 4), np.float32), iou=0.5)
    return ChainResult(
        image_id=None, image_size=(w, h), question=normalise_question(question),
        heatmap=HeatmapResult(question=question, question_map=heat, token_maps=heat[None],
                              tokens=("x",), itm_probability=0.5),
        points=pts, segmentation=SegmentationResult(candidates=(cand,), points=pts), chosen=0,
        fusion=FusionResult(fused_map=heat, alpha=0.5),
        captions=CaptionsResult(captions=("a thing",), rounds=1, complete=True),
        answer=AnswerResult(answer=answer), models={"itm": "stand-in"}, random_weights=True)


class BrightPixels(PipelineStandIn):
    """Stand-in pipeline whose chain is one object, the image's bright pixels."""

    def run(self, question, points=None, box=None, alpha=None, segment=None, progress=None, cancel=None,
            instances="auto"):
        return chain_result(self.bright(), question)


def _wait_for_go(project: Path) -> None:
    go = project.with_name(project.name + ".go")
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.005)


def main(argv: list[str]) -> int:
    mode, project_path = argv[0], Path(argv[1])
    _wait_for_go(project_path)
    if mode == "chain":
        prefix, n = argv[2], int(argv[3])
        mask = np.zeros((12, 16), bool)
        mask[2:9, 3:11] = True
        project = Project.open_or_create(project_path, writer=f"chain-{prefix}")
        for i in range(n):
            path = project_path.parent / f"{prefix}{i:04d}.png"
            done = project.find_image(path)
            if done is not None and done.runs:  # resumed: already committed
                continue
            project.record_chain(path, chain_result(mask, "what is it?", answer=f"{prefix}{i}"))
            print(f"done {i}", flush=True)
        project.close()
    elif mode == "edit":
        name, rounds, image = argv[2], int(argv[3]), argv[4]
        project = Project.open(project_path, writer=f"edit-{name}")
        img = project.find_image(image)
        for r in range(rounds):
            # the same object (uid) each time: its class names the writer, its point the round
            obj = ObjectRecord(uid=SHARED_UID, category=name, points=[Point(float(r), 0.0)], source="manual")
            project.put_object(img, obj, source="user")
            print(f"done {r}", flush=True)
        project.close()
    elif mode == "batch":
        from engine.annotation.batch import run_batch

        folder, question = argv[2], argv[3]
        report = run_batch(folder, [question], project_path, pipeline=BrightPixels(), show_progress=False)
        print(report, flush=True)
        return 0 if report.ok else 1
    else:
        raise SystemExit(f"unknown mode {mode}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
