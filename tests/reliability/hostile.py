"""Helpers for the reliability battery: small hostile inputs made inside ``tmp_path``."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from support.fakes import PipelineStandIn

ROOT = Path(__file__).resolve().parents[2]


def png(path: Path, w: int = 12, h: int = 10, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(path)
    return path


def square(x0: float, y0: float, x1: float, y1: float) -> list[float]:
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def coco(images: list[dict], annotations: list[dict] | None = None, categories: list[dict] | None = None) -> dict:
    return {"images": images, "annotations": annotations or [],
            "categories": [{"id": 1, "name": "thing"}] if categories is None else categories}


def write_json(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc, encoding="utf-8")
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def folder_state(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative name -> SHA-256): equal before and after = untouched."""
    return {p.relative_to(folder).as_posix(): digest(p) for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def qmask(*argv: str, env: dict | None = None, timeout: float = 120, preexec_fn=None,
          prefix: list[str] = ()) -> subprocess.CompletedProcess:
    """Run a headless command in its own process (a native crash shows as a negative status)."""
    return subprocess.run([*prefix, sys.executable, "-m", "engine.commands.cli", *map(str, argv)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=preexec_fn,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "QMASK_MODELS_DIR": "", **(env or {})})


def unprivileged() -> list[str]:
    """A command prefix under which file permissions hold: root writes anywhere, so as root the
    child drops the capabilities that let it (``setpriv``); nothing is needed for other users."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a read-only folder cannot be tested")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


class StandInPipeline(PipelineStandIn):
    """The pipeline without models (tests/support/fakes.py): its chain is one object, the bright pixels."""

    def run(self, question, points=None, box=None, alpha=None, segment=None, progress=None, cancel=None,
            instances="auto"):
        from engine.project import normalise_question
        from engine.prompts import Point
        from engine.results import (AnswerResult, CaptionsResult, ChainResult, FusionResult, HeatmapResult,
                                    MaskCandidate, SegmentationResult)

        h, w = self.rgb.shape[:2]
        heat = np.zeros((4, 4), np.float32)
        heat[0, 0] = 1.0
        pts = (Point(w / 2, h / 2, score=1.0, source="auto"),)
        cand = MaskCandidate(mask=self.rgb.mean(axis=2) > 128, low_res_logits=np.zeros((256, 256), np.float32),
                             iou=0.5)
        return ChainResult(
            image_id=self.image_id, image_size=(w, h), question=normalise_question(question),
            heatmap=HeatmapResult(question=question, question_map=heat, token_maps=heat[None], tokens=("x",),
                                  itm_probability=0.5),
            points=pts, segmentation=SegmentationResult(candidates=(cand,), points=pts), chosen=0,
            fusion=FusionResult(fused_map=heat, alpha=0.5),
            captions=CaptionsResult(captions=("a thing",), rounds=1, complete=True),
            answer=AnswerResult(answer="thing"), models={"itm": "stand-in"}, random_weights=True)
