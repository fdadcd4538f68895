"""``qmask batch --ray`` on a real local Ray instance (started here, once for the module) with
the tiny random models: the project equals the local batch's for the same seed; a worker
process that dies mid-run is replaced and each image lands exactly once; Ctrl-C keeps what is
done and a rerun finishes the rest; a worker without the models stops the batch once.

Ray is in the ``test`` extra: these run in CI. Workers are real processes: what a test hands
them (a pipeline that dies on purpose) is pickled by value, since they cannot import tests/.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.annotation.batch import run_batch
from engine.annotation.pipeline import Pipeline
from engine.errors import ModelMissingError
from engine.project import Project

ray = pytest.importorskip("ray", reason="Ray is in the test extra: pip install -e '.[test]'")

from engine.annotation.batch_ray import ClusterOptions  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
QUESTIONS = ["what is bright?"]
CAPTIONS = 2


@pytest.fixture(scope="module")
def ray_instance():
    from ray import cloudpickle

    # More logical CPUs than cores: the pool's actors never take every CPU Ray Data needs.
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    ray.shutdown()


def _images(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    for i in range(n):
        a = np.full((48, 64, 3), 20, np.uint8)
        y, x = rng.integers(0, 30, 2)
        a[y:y + 16, x:x + 24] = rng.integers(120, 255, 3)
        Image.fromarray(a).save(folder / f"img_{i:02d}.png")
    return folder


def _settings():
    from engine.annotation.settings import PipelineSettings

    return PipelineSettings(num_captions=CAPTIONS, device="cpu", seed=3)


def _records(path: Path) -> dict[str, tuple]:
    with Project.open(path) as project:
        out = {}
        for img in project.iter_images():
            assert img.status == "ok", (img.path, img.error)
            runs = tuple((r.question, r.answer, tuple(r.captions), r.instances, len(r.object_uids)) for r in img.runs)
            objects = tuple((o.question, o.category, o.source, repr(o.mask_rle), o.mask_score, o.order,
                             tuple((p.x, p.y, p.label, p.score, p.source) for p in o.points)) for o in img.objects)
            out[img.path] = (runs, objects)
        return out


def _written_once(path: Path, n: int) -> None:
    """Every image ok with one run per question (its proposals its objects, once), and one chain
    write each in the edit log."""
    with Project.open(path) as project:
        assert project.summary()["ok"] == n
        for img in project.iter_images():
            assert sorted(r.question for r in img.runs) == QUESTIONS
            assert sorted(u for r in img.runs for u in r.object_uids) == sorted(o.uid for o in img.objects)
            assert [e.action for e in project.edits(img.id)] == ["chain"] * len(QUESTIONS), img.path


def test_same_project_as_the_local_batch(tmp_path, tiny_models_dir, ray_instance):
    folder = _images(tmp_path / "imgs", 6)
    local = run_batch(folder, QUESTIONS, tmp_path / "local.qmask", settings=_settings(), models_dir=tiny_models_dir,
                      show_progress=False)
    assert local.processed == 6
    report = run_batch(folder, QUESTIONS, tmp_path / "ray.qmask", settings=_settings(), models_dir=tiny_models_dir,
                       show_progress=False, cluster=ClusterOptions(workers=2, cpus_per_worker=1))
    assert report.processed == 6 and report.annotations == 6 and not report.failed
    ours, theirs = _records(tmp_path / "ray.qmask"), _records(tmp_path / "local.qmask")
    assert ours == theirs
    # the seed is per image: two images do not share their captions
    assert len({r[0][0][2] for r in ours.values()}) == 6
    _written_once(tmp_path / "ray.qmask", 6)


class DiesOnSecondImage(Pipeline):
    """A pipeline whose process exits (as if killed) on its 2nd image, once per test (marker file)."""

    marker = ""
    images = 0

    def set_image(self, rgb, image_id=None):
        self.images += 1
        if self.images == 2 and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os._exit(9)
        super().set_image(rgb, image_id=image_id)


def _dying_pipeline(settings, models_dir, marker):
    pipe = DiesOnSecondImage.from_settings(settings, models_dir=models_dir)
    pipe.marker = marker
    return pipe


def test_a_worker_that_dies_is_replaced_and_each_image_lands_once(tmp_path, tiny_models_dir, ray_instance):
    folder = _images(tmp_path / "imgs", 5)
    marker = tmp_path / "died"
    cluster = ClusterOptions(workers=1, cpus_per_worker=1,
                             pipeline_factory=functools.partial(_dying_pipeline, marker=str(marker)))
    report = run_batch(folder, QUESTIONS, tmp_path / "p.qmask", settings=_settings(), models_dir=tiny_models_dir,
                       show_progress=False, cluster=cluster)
    assert marker.exists() and int(marker.read_text()) != os.getpid()  # a worker process did die
    assert report.processed == 5 and not report.failed and not report.cancelled
    _written_once(tmp_path / "p.qmask", 5)


def test_a_worker_without_the_models_stops_the_batch_once(tmp_path, ray_instance):
    folder = _images(tmp_path / "imgs", 4)
    (tmp_path / "no-models").mkdir()
    with pytest.raises(ModelMissingError) as caught:
        run_batch(folder, QUESTIONS, tmp_path / "p.qmask", settings=_settings(), models_dir=tmp_path / "no-models",
                  show_progress=False, cluster=ClusterOptions(workers=2, cpus_per_worker=1))
    message = str(caught.value)
    assert message.startswith("On the Ray node ") and "was not found in" in message and "Fetch it with:" in message
    assert message.count("Fetch it with") == 1
    with Project.open(tmp_path / "p.qmask") as project:  # no image blamed for it
        assert project.summary()["failed"] == 0 and project.summary()["ok"] == 0


def test_stop_then_resume(tmp_path, tiny_models_dir, ray_instance):
    folder = _images(tmp_path / "imgs", 6)
    done = []
    report = run_batch(folder, QUESTIONS, tmp_path / "p.qmask", settings=_settings(), models_dir=tiny_models_dir,
                       show_progress=False, cluster=ClusterOptions(workers=1, cpus_per_worker=1),
                       cancel=lambda: len(done) >= 2, on_image_done=lambda *a: done.append(a))
    assert report.cancelled and report.processed == 2
    with Project.open(tmp_path / "p.qmask") as project:
        assert project.summary()["ok"] == 2
    again = run_batch(folder, QUESTIONS, tmp_path / "p.qmask", settings=_settings(), models_dir=tiny_models_dir,
                      show_progress=False, cluster=ClusterOptions(workers=1, cpus_per_worker=1))
    assert again.already_done == 2 and again.processed == 4
    _written_once(tmp_path / "p.qmask", 6)


def test_ctrl_c_keeps_what_is_done_and_a_rerun_finishes(tmp_path, tiny_models_dir, ray_instance):
    """``qmask batch --ray auto`` as its own process, joining this module's Ray instance; SIGINT
    once an image is in the project."""
    folder = _images(tmp_path / "imgs", 8)
    project_path = tmp_path / "p.qmask"
    argv = [sys.executable, "-m", "engine.commands.cli", "batch", str(folder), "--question", QUESTIONS[0], "--project",
            str(project_path), "--ray", "auto", "--workers", "1", "--cpus-per-worker", "1", "--models",
            str(tiny_models_dir), "--device", "cpu", "--num-captions", str(CAPTIONS), "--seed", "3", "--no-progress"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        ok = 0
        while ok < 1 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            if project_path.exists():
                with Project.open(project_path) as project:
                    ok = project.summary()["ok"]
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Stopped early; run the same command again" in out, out
    with Project.open(project_path) as project:
        kept = project.summary()["ok"]
    assert 1 <= kept < 8
    again = run_batch(folder, QUESTIONS, project_path, settings=_settings(), models_dir=tiny_models_dir,
                      show_progress=False, cluster=ClusterOptions(workers=1, cpus_per_worker=1))
    assert again.already_done == kept and again.processed == 8 - kept
    _written_once(project_path, 8)
    # and it is what the local batch writes, whichever process made each image
    run_batch(folder, QUESTIONS, tmp_path / "local.qmask", settings=_settings(), models_dir=tiny_models_dir,
              show_progress=False)
    assert _records(project_path) == _records(tmp_path / "local.qmask")


def test_a_local_instance_keeps_token_authentication_without_the_notice(tmp_path):
    """``--ray`` without an address starts Ray here with its default token authentication (the
    instance listens on this machine's address) but without Ray's notice that it does; the token
    file Ray writes (in a fresh home here) is readable by this user only."""
    code = ("from engine.annotation.batch_ray import connect, import_ray\n"
            "from ray._raylet import AuthenticationMode, get_authentication_mode\n"
            "ray = import_ray()\nassert connect(ray, None)\n"
            "print(get_authentication_mode() == AuthenticationMode.TOKEN)\nray.shutdown()\n")
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
    env["HOME"] = str(tmp_path)  # no token yet: Ray writes one
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True"]
    assert "Token authentication is enabled" not in done.stderr, done.stderr
    token = tmp_path / ".ray" / "auth_token"
    assert token.exists() and token.stat().st_mode & 0o077 == 0, oct(token.stat().st_mode)


def test_without_an_address_a_running_cluster_is_joined_and_said(ray_instance):
    """As ``ray.init()``: with RAY_ADDRESS set (or a ``ray start`` on this machine) ``--ray``
    without an address joins that cluster, says so, and starts no second instance."""
    address = ray_instance.get_runtime_context().gcs_address
    code = ("from engine.annotation.batch_ray import connect, import_ray\n"
            "ray = import_ray()\nassert connect(ray, None, say=print)\n"
            "print(ray.cluster_resources()['CPU'])\nray.shutdown()\n")
    env = {**os.environ, "RAY_ADDRESS": address}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    said, cpus = done.stdout.strip().splitlines()
    assert said.startswith(f"joining the Ray cluster running at {address} "), said
    assert float(cpus) == 4.0  # the module's instance, not a new one


def test_bench_batch_alternates_rounds_and_takes_ratios_within_them(ray_instance, tiny_models_dir, capsys):
    # `qmask bench batch --rounds 2`: the local batch and each worker count run once per round,
    # the order reversed in the second, and the figures are medians of each round's ratio.
    import argparse

    from engine.bench import batch as bench_batch

    args = argparse.Namespace(images=6, workers="1,2", ray=None, models=str(tiny_models_dir), cpus_per_worker=1.0,
                              gpus_per_worker=None, device="cpu", num_captions=2, no_local_pair=True, rounds=2)
    assert bench_batch.main(args) == 0
    out = capsys.readouterr().out
    steps = [line.split(": ", 1)[1].split(" (")[0].split(":")[0] for line in out.splitlines()
             if line.startswith("round ")]
    assert steps == ["local batch", "ray, 1 worker(s)", "ray, 2 worker(s)",
                     "ray, 2 worker(s)", "ray, 1 worker(s)", "local batch"]
    assert ray.is_initialized()  # a running instance (here the module's) is joined, never shut down
    ratio_line = next(line for line in out.splitlines() if line.startswith("ray, 2 worker(s) against 1, per round:"))
    assert ratio_line.count("x") >= 3 and "median" in ratio_line  # two rounds' ratios and their median
    overhead_line = next(line for line in out.splitlines() if line.startswith("Ray overhead per image"))
    assert overhead_line.count("%") >= 3
    assert "2 workers >= 1.8x the images/s of 1 (median of 2 round(s))" in out
