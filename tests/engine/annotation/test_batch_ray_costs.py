"""What ``qmask batch --ray`` costs besides the chain: a worker sends the driver what the project
stores (RLE masks, no logits or full-size arrays), and ``qmask bench batch``'s CPU accounting
(engine/bench/proc_cpu.py) finds this process's descendants and what each spent."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from engine.annotation.batch import BatchQuestion
from engine.annotation.batch_image import ImageResult, process_image, write_image
from engine.bench import proc_cpu
from engine.errors import InputError
from engine.project import Project


def _arrays(obj, seen=None):
    """Every numpy array reachable from ``obj`` (dataclasses, dicts, lists, tuples)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, dict):
        items = list(obj.values())
    elif isinstance(obj, (list, tuple)):
        items = list(obj)
    elif hasattr(obj, "__dict__"):
        items = list(vars(obj).values())
    else:
        return []
    return [a for item in items for a in _arrays(item, seen)]


def test_a_worker_sends_what_the_project_stores(tmp_path, tiny_models_dir):
    from engine.annotation.pipeline import Pipeline
    from engine.annotation.settings import PipelineSettings

    a = np.full((240, 320, 3), 30, np.uint8)
    a[60:160, 80:220] = (220, 200, 40)
    Image.fromarray(a).save(tmp_path / "img.png")
    pipeline = Pipeline.from_settings(PipelineSettings(device="cpu", num_captions=2, seed=1), models_dir=tiny_models_dir)
    questions = [BatchQuestion("what is bright?", "thing"), BatchQuestion("where is it?")]
    result = process_image(tmp_path / "img.png", [0, 1], questions, lambda: pipeline, seed=1)
    assert result.failure is None and len(result.records) == 2
    # no mask, logits or image sized array: only the heat maps (the grid, far smaller than the image)
    sizes = [arr.size for arr in _arrays(result)]
    assert sizes and max(sizes) < 320 * 240 / 8, sizes
    assert all(found.objects and all(o.mask_rle is not None for o in found.objects) for found in result.records)
    assert all(found.run.object_uids == [o.uid for o in found.objects] for found in result.records)
    sent = pickle.loads(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    assert isinstance(sent, ImageResult)
    with Project.open_or_create(tmp_path / "p.qmask") as project:  # the driver writes it as it came
        project.add_images([tmp_path / "img.png"])
        write_image(project, sent)
        img = project.find_image(tmp_path / "img.png")
        assert (img.status, img.width, img.height) == ("ok", 320, 240)
        assert sorted(r.question for r in img.runs) == ["what is bright?", "where is it?"]
        bright = [o for o in img.objects if o.question == "what is bright?"]
        assert bright and all(o.category == "thing" and o.mask().shape == (240, 320) for o in bright)
        assert [c.name for c in project.categories] == ["thing"]
        assert {o.uid for o in img.objects} == {o.uid for found in sent.records for o in found.objects}


BURN = """
import os, sys
x = 0
while sum(os.times()[:2]) < 0.3:  # CPU time, not wall time
    x += 1
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.mark.skipif(not proc_cpu.available(), reason="reads Linux's /proc")
def test_cpu_of_this_process_and_what_it_started():
    before = proc_cpu.snapshot()
    child = subprocess.Popen([sys.executable, "-c", BURN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        after = proc_cpu.snapshot()
    finally:
        child.stdin.close()
        child.wait()
    assert child.pid in after and child.pid not in before
    assert after[child.pid].cpu >= 0.3 and "-c" in after[child.pid].title
    spent = proc_cpu.by_role(before, after)
    role = proc_cpu.role(after[child.pid], root=-1)
    assert spent[role][0] >= 0.3
    assert "driver (this process)" in spent
    assert all(p.pid in after for p in proc_cpu.snapshot().values() if p.pid != child.pid)  # nothing else found


def test_roles_of_a_local_ray_instance():
    def role(title):
        return proc_cpu.role(proc_cpu.Proc(2, 1, title, 0.0), root=1)

    assert role("ray::MapWorker(MapBatches(ChainWorker)).submit") == "Ray worker: chain"
    assert role("ray::_StatsActor.update_execution_metrics") == "Ray worker: _StatsActor.update_execution_metrics"
    assert role("/venv/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet --raylet_socket_name=x") == "raylet"
    assert role("/venv/bin/python -u /venv/lib/ray/_private/log_monitor.py --x") == "log monitor"
    assert proc_cpu.role(proc_cpu.Proc(1, 0, "python bench", 0.0), root=1) == "driver (this process)"


def test_bench_reads_where_the_cpu_went(monkeypatch):
    from engine.bench.batch import Timing, _cpu_line, _limit_line

    monkeypatch.setattr("os.cpu_count", lambda: 2)
    # 10 images: one worker 6 s of chain CPU; two workers 14 s of chain, 1 s driver, 1 s of Ray's own
    one = Timing(0.6, 5.0, 10, {"Ray worker: chain": (6.0, 1), "driver (this process)": (0.5, 1), "raylet": (0.5, 1)})
    two = Timing(0.4, 6.0, 10, {"Ray worker: chain": (14.0, 2), "driver (this process)": (1.0, 1),
                                "Ray worker: _StatsActor.update": (0.6, 1), "raylet": (0.4, 1)})
    line = _cpu_line(two)
    assert "chains 1400 ms (2 worker process(es), 3.50 cores busy)" in line and "driver 100 ms" in line
    assert "Ray's own processes 100 ms (_StatsActor 60, raylet 40)" in line
    # 2 cores x 600 ms / (1400 + 200) ms per image = 0.75x
    assert _limit_line(one, two).startswith("at most 0.75x on 2 cores") and "+133%" in _limit_line(one, two)


def test_bench_runs_local_batches_side_by_side(tmp_path, tiny_models_dir):
    import argparse

    from engine.bench.batch import _images, _side_by_side

    folder = _images(tmp_path / "imgs", 6)
    args = argparse.Namespace(cpus_per_worker=1.0, device="cpu", num_captions=2)
    rate, cpu = _side_by_side(2, folder, tiny_models_dir, tmp_path, args)
    assert rate > 0 and cpu > 0
    for i in range(2):  # each process did the whole batch into its own project
        with Project.open(tmp_path / f"side-2-{i}.qmask") as project:
            assert project.summary()["ok"] == 6


def test_side_by_side_counts_only_the_window_where_all_run():
    from engine.bench.batch import _together

    a = {"stamps": [1.0, 2.0, 3.0, 4.0], "cpu": [1.0, 2.0, 3.0, 4.0]}
    b = {"stamps": [1.5, 2.5, 3.5, 4.5, 5.5], "cpu": [0.0, 0.5, 1.0, 1.5, 2.0]}
    rate, cpu = _together([a, b])
    # window (1.5, 4.0]: a did 2.0, 3.0, 4.0 and b did 2.5, 3.5 -> 5 images in 2.5 s
    assert rate == pytest.approx(2.0)
    assert cpu == pytest.approx(1000 * (1.0 + 0.5) / 2)
    late = {"stamps": [5.0, 6.0, 7.0], "cpu": [0.0, 1.0, 2.0]}
    with pytest.raises(InputError, match="did not overlap"):  # one started after the other ended
        _together([a, late])
    with pytest.raises(InputError, match="at least 3 images"):
        _together([a, {"stamps": [1.0, 2.0], "cpu": [0.0, 1.0]}])
