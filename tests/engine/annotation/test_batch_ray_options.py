"""``qmask batch --ray`` options without a Ray instance: which extra to install when Ray is
missing, --workers N / MIN-MAX, the cluster options only with --ray, and the worker plan."""

from __future__ import annotations

import sys

import pytest

from engine.annotation.batch_ray import ClusterOptions, parse_workers, plan_workers
from engine.errors import InputError

from support.commands import run_qmask


def test_ray_missing_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as without the extra
    (tmp_path / "imgs").mkdir()
    rc = run_qmask("batch", [str(tmp_path / "imgs"), "--question", "q?", "--project", str(tmp_path / "p.qmask"), "--ray"])
    err = capsys.readouterr().err
    assert rc == 1 and "pip install 'qmask[cluster]'" in err and "pip install -e '.[cluster]'" in err
    assert not (tmp_path / "p.qmask").exists()  # said before anything was made


def test_cluster_options_need_ray(tmp_path, capsys):
    rc = run_qmask("batch", [str(tmp_path), "--question", "q?", "--project", str(tmp_path / "p.qmask"), "--workers", "2"])
    assert rc == 1 and "--workers needs --ray" in capsys.readouterr().err
    rc = run_qmask("batch", [str(tmp_path), "--question", "q?", "--project", str(tmp_path / "p.qmask"), "--ray", "photos"])
    assert rc == 1 and "give the images folder before --ray" in capsys.readouterr().err


def test_parse_workers():
    assert parse_workers("4") == 4 and parse_workers("2-8") == (2, 8) and parse_workers(None) is None
    for bad in ("0", "8-2", "x", "1-2-3", "-1"):
        with pytest.raises(InputError, match="--workers"):
            parse_workers(bad)


def test_plan_workers():
    cpu = {"CPU": 2.0}
    plan = plan_workers(ClusterOptions(), cpu, 100)
    assert (plan.min_workers, plan.max_workers, plan.threads, plan.gpus) == (2, 2, 1, 0)
    assert plan.cpus < 1  # leaves Ray Data a share of a CPU
    assert plan_workers(ClusterOptions(), {"CPU": 16.0}, 100).max_workers == 4  # 4 CPUs each
    gpu = plan_workers(ClusterOptions(), {"CPU": 64.0, "GPU": 8.0}, 100)
    assert (gpu.max_workers, gpu.gpus, gpu.threads) == (8, 1.0, 1)
    half = plan_workers(ClusterOptions(gpus_per_worker=0.5), {"CPU": 64.0, "GPU": 8.0}, 100)
    assert half.max_workers == 16
    assert plan_workers(ClusterOptions(workers=(2, 8)), cpu, 100).max_workers == 8
    assert plan_workers(ClusterOptions(workers=8), cpu, 3).max_workers == 3  # never more than the images
    with pytest.raises(InputError, match="GPU"):
        plan_workers(ClusterOptions(gpus_per_worker=1), cpu, 10)
