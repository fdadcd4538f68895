"""Battery (issue 15, item 9): no library progress bars in a command's output, the same model
options on every command that runs the chain, and an offline download that fails at once with
one message naming --models DIR (real processes)."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
BAR_MARKS = ("Loading weights", "Writing model shards", "it/s]", "%|")


def qmask(*argv: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gui.main", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "QMASK_MODELS_DIR": "", **(env or {})})


@pytest.fixture()
def photo(tmp_path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (72, 100, 3), dtype=np.uint8)).save(path)
    return path


def test_batch_no_progress_prints_no_bar_at_all(tmp_path, photo, tiny_models_dir):
    quiet = qmask("batch", str(photo), "-q", "what is it?", "--project", str(tmp_path / "a.qmask"), "--models",
                  str(tiny_models_dir), "--device", "cpu", "--num-captions", "2", "--no-progress")
    assert quiet.returncode == 0, quiet.stderr
    for mark in BAR_MARKS:
        assert mark not in quiet.stderr and mark not in quiet.stdout, (mark, quiet.stderr)
    # a normal run shows QMask's own bar only
    normal = qmask("batch", str(photo), "-q", "what is it?", "--project", str(tmp_path / "b.qmask"), "--models",
                   str(tiny_models_dir), "--device", "cpu", "--num-captions", "2")
    assert normal.returncode == 0, normal.stderr
    assert "qmask batch:" in normal.stderr
    assert "Loading weights" not in normal.stderr and "Writing model shards" not in normal.stderr


def test_make_random_prints_what_it_writes_without_library_bars(tmp_path):
    made = qmask("models", "make-random", str(tmp_path / "m"), "--size", "tiny")
    assert made.returncode == 0, made.stderr
    assert "writing itm (tiny)" in made.stdout + made.stderr
    for mark in BAR_MARKS:
        assert mark not in made.stderr, (mark, made.stderr)


def _options(command: str) -> set[str]:
    from engine.commands import cli

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli.add_subcommands(sub)
    return {opt for action in sub.choices[command]._actions for opt in action.option_strings}


def _bench_pipeline_parser() -> argparse.ArgumentParser:
    from engine.bench import pipeline as bench_pipeline

    parser = argparse.ArgumentParser()
    bench_pipeline.add_arguments(parser)
    return parser


def test_every_command_that_runs_the_chain_takes_the_same_model_options():
    from gui.main import build_app_parser

    model_options = {"--sam", "--dtype", "--preset", "--device", "--models"}
    app = {opt for action in build_app_parser()._actions for opt in action.option_strings}
    bench = {opt for action in _bench_pipeline_parser()._actions for opt in action.option_strings}
    for name, options in (("ask", _options("ask")), ("batch", _options("batch")), ("bench pipeline", bench),
                          ("app", app)):
        assert model_options <= options, (name, model_options - options)
    assert "--no-segment" in _options("ask") and "--no-segment" in _options("batch")


def test_batch_passes_the_model_options_to_the_chain(tmp_path, photo, tiny_models_dir, capsys):
    from engine.commands.cli import main

    # the tiny models hold EfficientSAM-Ti only: asking batch for S must look for S
    rc = main(["batch", str(photo), "-q", "what is it?", "--project", str(tmp_path / "c.qmask"), "--models",
               str(tiny_models_dir), "--device", "cpu", "--num-captions", "2", "--no-progress", "--sam", "vits"])
    assert rc == 1
    assert "EfficientSAM (vits)" in capsys.readouterr().err
    rc = main(["batch", str(photo), "-q", "what is it?", "--project", str(tmp_path / "d.qmask"), "--models",
               str(tiny_models_dir), "--device", "cpu", "--num-captions", "2", "--no-progress",
               "--dtype", "float32", "--no-segment"])
    assert rc == 0, capsys.readouterr().err


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_download_fails_at_once_with_one_message(tmp_path):
    env = {k: "" for k in os.environ if k.lower().endswith("_proxy")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}", HF_HUB_OFFLINE="0")
    result = qmask("models", "download", "--to", str(tmp_path / "models"), env=env, timeout=120)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr  # no retry lines
    assert "Cannot reach 127.0.0.1" in lines[0] and "nothing was downloaded" in lines[0]
    assert "--models DIR" in lines[0]
    assert "Retry" not in result.stdout + result.stderr
