"""The batch's caption seed is per image: made from ``--seed`` and the image's SHA-256, the same
in any order (and on any Ray worker: tests/engine/annotation/test_batch_ray.py), set through the pipeline's public
settings and given back as it was."""

from __future__ import annotations

import numpy as np
from PIL import Image

from engine.annotation.batch import run_batch
from engine.annotation.batch_image import image_seed
from engine.annotation.settings import PipelineSettings
from engine.project import Project, file_sha256

from test_batch import StandInPipeline


class SeedRecorder(StandInPipeline):
    def __init__(self, seed):
        super().__init__()
        self.settings = PipelineSettings(device="cpu", seed=seed)
        self.seeds: dict[str, int | None] = {}

    def run(self, question, points=None, box=None, alpha=None, segment=None, progress=None, cancel=None,
            instances="auto"):
        self.seeds[self.image_id] = self.settings.seed
        return super().run(question, cancel=cancel, instances=instances)


def _folder(root, n=4):
    root.mkdir()
    for i in range(n):
        a = np.full((12, 16, 3), 10 * i, np.uint8)
        Image.fromarray(a).save(root / f"{i}.png")
    return sorted(root.iterdir())


def test_each_image_gets_its_own_seed_whatever_the_order(tmp_path):
    files = _folder(tmp_path / "imgs")
    forward, backward = SeedRecorder(5), SeedRecorder(5)
    run_batch(files, ["q?"], tmp_path / "a.qmask", pipeline=forward, show_progress=False)
    run_batch(list(reversed(files)), ["q?"], tmp_path / "b.qmask", pipeline=backward, show_progress=False)
    assert forward.seeds == backward.seeds and len(set(forward.seeds.values())) == len(files)
    with Project.open(tmp_path / "a.qmask") as project:
        for f in files:
            sha = project.find_image(f).sha256
            assert sha == file_sha256(f)
    by_sha = {file_sha256(f): f for f in files}
    assert sorted(forward.seeds.values()) == sorted(image_seed(5, sha) for sha in by_sha)
    assert forward.settings.seed == 5 and backward.settings.seed == 5  # given back as it was
    other = SeedRecorder(6)
    run_batch(files, ["q?"], tmp_path / "c.qmask", pipeline=other, show_progress=False)
    assert not set(other.seeds.values()) & set(forward.seeds.values())  # another --seed, other seeds


def test_no_seed_stays_unseeded(tmp_path):
    files = _folder(tmp_path / "imgs", 2)
    pipe = SeedRecorder(None)
    run_batch(files, ["q?"], tmp_path / "a.qmask", pipeline=pipe, show_progress=False)
    assert set(pipe.seeds.values()) == {None}
    assert image_seed(None, "ab") is None and image_seed(0, "ab") != image_seed(1, "ab")
