"""Battery (issue 15, items 6 and 9): broken, malicious and mismatched checkpoints as a user
meets them with ``qmask ask`` and ``qmask batch`` (real processes): a mask that was asked for
and cannot be made fails the command with whole sentences; ``--no-segment`` skips it; no
message ever suggests turning a safety check off, and no pickled code runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.models.load_errors import UNSAFE_WORDS, load_failure

ROOT = Path(__file__).resolve().parents[2]


def qmask(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "QMASK_MODELS_DIR": ""}
    return subprocess.run([sys.executable, "-m", "gui.main", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


def qmask_here(capsys, *argv: str) -> subprocess.CompletedProcess:
    """The same command in this process (cheaper: torch and transformers are imported already)."""
    from engine.commands.cli import main

    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(argv), rc, out, err)


@pytest.fixture()
def photo(tmp_path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (72, 100, 3), dtype=np.uint8)).save(path)
    return path


def models_copy(tiny_models_dir: Path, tmp_path: Path, name: str = "models") -> Path:
    out = tmp_path / name
    shutil.copytree(tiny_models_dir, out)
    return out


class Payload:
    """Pickles to a call of ``os.system``: what a malicious checkpoint holds."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def assert_safe_message(text: str) -> None:
    lowered = text.lower()
    for words in UNSAFE_WORDS + ("re-running", "will likely succeed"):
        assert words not in lowered, text
    assert "Traceback" not in text


def test_truncated_sam_checkpoint_fails_ask_and_batch(tmp_path, photo, tiny_models_dir, capsys):
    models = models_copy(tiny_models_dir, tmp_path)
    ckpt = models / "efficient_sam" / "efficient_sam_vitt.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:100_000])
    out_json = tmp_path / "out.json"
    result = qmask("ask", str(photo), "what is it?", "--models", str(models), "--device", "cpu",
                   "--num-captions", "2", "--json", str(out_json))
    assert result.returncode == 1, result.stdout + result.stderr
    err = result.stderr
    assert "A mask was asked for but cannot be made." in err
    assert f"{ckpt} is not a readable EfficientSAM checkpoint. It is incomplete or damaged" in err
    assert "--no-segment" in err
    assert_safe_message(err)
    assert "answer:" not in result.stdout and not out_json.exists()

    batch = qmask("batch", str(photo), "-q", "what is it?", "--project", str(tmp_path / "p.qmask"),
                  "--models", str(models), "--device", "cpu", "--num-captions", "2", "--no-progress")
    assert batch.returncode == 1, batch.stdout + batch.stderr
    assert "A mask was asked for but cannot be made." in batch.stderr and "efficient_sam_vitt.pt" in batch.stderr
    assert_safe_message(batch.stderr)

    # --no-segment is the way to go without masks
    ok = qmask_here(capsys, "ask", str(photo), "what is it?", "--models", str(models), "--device", "cpu",
                    "--num-captions", "2", "--no-segment", "--json", str(out_json))
    assert ok.returncode == 0, ok.stderr
    assert json.loads(out_json.read_text())["mask"] is None
    ok = qmask_here(capsys, "batch", str(photo), "-q", "what is it?", "--project", str(tmp_path / "q.qmask"),
                    "--models", str(models), "--device", "cpu", "--num-captions", "2", "--no-progress",
                    "--no-segment")
    assert ok.returncode == 0, ok.stderr


def test_malicious_checkpoints_run_no_code_and_say_so(tmp_path, photo, tiny_models_dir, capsys):
    marker = tmp_path / "pwned"
    models = models_copy(tiny_models_dir, tmp_path)
    torch.save({"model": {"image_encoder.patch_embed.proj.weight": Payload(marker)}},
               models / "efficient_sam" / "efficient_sam_vitt.pt")
    result = qmask_here(capsys, "ask", str(photo), "what is it?", "--models", str(models), "--device", "cpu",
                        "--num-captions", "2")
    assert result.returncode == 1
    assert "It holds Python objects other than tensors (posix.system)" in result.stderr \
        or "It holds Python objects other than tensors (nt.system)" in result.stderr
    assert "QMask never loads such files." in result.stderr
    assert_safe_message(result.stderr)
    assert not marker.exists()

    # a pickled pytorch_model.bin in a Hugging Face folder: transformers' loader, same message
    evil = models_copy(tiny_models_dir, tmp_path, "evil")
    (evil / "itm" / "model.safetensors").unlink()
    torch.save({"text_encoder.embeddings.word_embeddings.weight": Payload(marker)}, evil / "itm" / "pytorch_model.bin")
    result = qmask("ask", str(photo), "what is it?", "--models", str(evil), "--device", "cpu", "--num-captions", "2")
    assert result.returncode == 1
    assert f"The itm model in {evil / 'itm'} could not be loaded. It holds Python objects other than tensors" \
        in result.stderr
    assert_safe_message(result.stderr)
    assert not marker.exists()


def published_state(variant: str) -> dict[str, torch.Tensor]:
    from engine.sam.model import EfficientSamConfig, build_efficient_sam

    config = EfficientSamConfig.vitt() if variant == "vitt" else EfficientSamConfig.vits()
    return {k: torch.zeros(v.shape) for k, v in build_efficient_sam(config, device="meta").state_dict().items()}


@pytest.mark.parametrize("found, slot", [("vits", "vitt"), ("vitt", "vits")])
def test_ti_and_s_checkpoints_are_not_loaded_for_each_other(tmp_path, found, slot):
    from engine.sam.checkpoint import load_efficient_sam
    from engine.errors import CheckpointError

    path = tmp_path / f"efficient_sam_{slot}.pt"
    torch.save({"model": published_state(found)}, path)
    names = {"vitt": ("EfficientSAM-Ti", 192), "vits": ("EfficientSAM-S", 384)}
    with pytest.raises(CheckpointError) as info:
        load_efficient_sam(path, variant=slot)
    text = str(info.value)
    assert f"holds {names[found][0]} weights (embedding width {names[found][1]})" in text
    assert f"in the place of {names[slot][0]}" in text and f"embedding width {names[slot][1]}" in text
    assert f"use --sam {found}" in text
    assert load_efficient_sam(path).config.patch_embed_dim == names[found][1]  # no place given: as it is


def test_s_checkpoint_in_the_ti_place_fails_ask(tmp_path, photo, tiny_models_dir, capsys):
    models = models_copy(tiny_models_dir, tmp_path)
    sam = models / "efficient_sam"
    (sam / "QMASK_RANDOM_WEIGHTS.json").unlink()  # a published-looking checkpoint, no config beside it
    torch.save({"model": published_state("vits")}, sam / "efficient_sam_vitt.pt")
    result = qmask_here(capsys, "ask", str(photo), "what is it?", "--models", str(models), "--device", "cpu",
                   "--num-captions", "2")
    assert result.returncode == 1
    assert "holds EfficientSAM-S weights (embedding width 384), but it is in the place of EfficientSAM-Ti" \
        in result.stderr
    assert_safe_message(result.stderr)


def test_make_random_vits_writes_s_and_ask_uses_it(tmp_path, photo, capsys):
    models = tmp_path / "m"
    made = qmask_here(capsys, "models", "make-random", str(models), "--size", "tiny", "--sam", "vits")
    assert made.returncode == 0, made.stderr
    files = sorted(p.name for p in (models / "efficient_sam").iterdir())
    assert files == ["QMASK_RANDOM_WEIGHTS.json", "efficient_sam_vits.pt"]
    marker = json.loads((models / "efficient_sam" / "QMASK_RANDOM_WEIGHTS.json").read_text())
    assert marker["architecture"] == "EfficientSAM-vits"
    state = torch.load(models / "efficient_sam" / "efficient_sam_vits.pt", weights_only=True)["model"]
    assert state["image_encoder.patch_embed.proj.weight"].shape[0] == 64  # twice the tiny Ti's 32, as S is to Ti
    out_json = tmp_path / "o.json"
    result = qmask_here(capsys, "ask", str(photo), "what is it?", "--models", str(models), "--sam", "vits",
                        "--device", "cpu", "--num-captions", "2", "--json", str(out_json))
    assert result.returncode == 0, result.stderr
    assert json.loads(out_json.read_text())["mask"] is not None
    # and the Ti place stays empty: asking for Ti names what is missing
    missing = qmask_here(capsys, "ask", str(photo), "what is it?", "--models", str(models), "--device", "cpu")
    assert missing.returncode == 1 and "EfficientSAM (vitt)" in missing.stderr


def test_load_failure_never_passes_unsafe_advice_or_half_sentences():
    import pickle

    torch_text = ("Weights only load failed. In PyTorch 2.6, we changed the default value of the `weights_only` "
                  "argument in `torch.load` from `False` to `True`. Re-running `torch.load` with `weights_only` "
                  "set to `False` will likely succeed, but it can result in arbitrary code execution. Do it only "
                  "if you got the file from a trusted source.\nPlease file an issue with the following so that "
                  "we can make `weights_only=True` compatible with your use case: WeightsUnpickler error: "
                  "Unsupported global: GLOBAL posix.system was not an allowed global by default.")
    text = load_failure(pickle.UnpicklingError(torch_text))
    assert text.startswith("It holds Python objects other than tensors (posix.system)")
    assert_safe_message(text)
    wrapped = OSError("Unable to load weights from pytorch checkpoint file")
    wrapped.__cause__ = pickle.UnpicklingError(torch_text)
    assert "QMask never loads such files" in load_failure(wrapped)
    stream = RuntimeError("PytorchStreamReader failed reading zip archive: failed finding central directory. This "
                          "is an internal miniz error. If you are seeing this error, there is a high likelihood "
                          "that your checkpoint file is corrupted")
    text = load_failure(stream)
    assert text.startswith("It is incomplete or damaged") and text.endswith(".")
    other = load_failure(ValueError("Something odd happened. Set trust_remote_code=True to load it. More text"))
    assert other == "The loader reported: ValueError: Something odd happened."
