"""Shared test fixtures.

Qt runs offscreen (set before anything imports Qt). Reference vectors live in
``tests/fixtures`` (in the repository, so every clone runs the parity tests).
Random tiny models are written once per session by ``qmask models make-random --size tiny``'s
code and loaded through the product's own loading path.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tests never see the developer's own caches or projects: huggingface_hub reads these once, at
# import, so they are set here, before any test module imports it.
import tempfile  # noqa: E402

_SANDBOX = Path(tempfile.mkdtemp(prefix="qmask-tests-"))
os.environ["HF_HOME"] = str(_SANDBOX / "hf")
os.environ["HF_HUB_CACHE"] = str(_SANDBOX / "hf" / "hub")
os.environ["QMASK_CACHE_DIR"] = str(_SANDBOX / "qmask-cache")
os.environ["QMASK_DATA_DIR"] = str(_SANDBOX / "qmask-data")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """The reference vectors (``tests/fixtures``, see its README.md); never skipped."""
    assert FIXTURES.is_dir(), f"the reference fixtures are missing from {FIXTURES}"
    return FIXTURES


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory) -> Path:
    """A models folder (itm/, caption/, qa/, efficient_sam/) of tiny random models, marked as random."""
    from engine.models.random_models import make_random_models

    out = tmp_path_factory.mktemp("tiny-models")
    make_random_models(out, size="tiny", seed=0)
    return out


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    # Tiny models are dominated by thread start-up: one thread is ~10x faster on 2 shared cores.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _no_hub_env(monkeypatch, tmp_path):
    # A test must never find the developer's own models by accident.
    monkeypatch.delenv("QMASK_MODELS_DIR", raising=False)
    # Nor another test's default projects or preferences (the app reads and writes both there).
    monkeypatch.setenv("QMASK_DATA_DIR", str(tmp_path / "qmask-data"))


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # pragma: no cover - torch missing is a failure elsewhere
        has_cuda = False
    if not has_cuda:
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
