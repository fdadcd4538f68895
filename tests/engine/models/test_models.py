"""Model locations (models folder, Hugging Face cache, offline) and ModelManager loading."""

from __future__ import annotations

import gc
import json
import shutil
import weakref
import zipfile
from pathlib import Path

import pytest
import torch

from engine.models import locations, manager as m
from engine.errors import CheckpointError, InputError, ModelMissingError
from engine.models.random_models import make_random_models


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path, monkeypatch):
    # Neither the developer's QMask cache nor the Hugging Face cache may leak into a test.
    monkeypatch.setenv("QMASK_CACHE_DIR", str(tmp_path / "qmask-cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))


@pytest.fixture()
def models_copy(tiny_models_dir, tmp_path) -> Path:
    dst = tmp_path / "models"
    shutil.copytree(tiny_models_dir, dst)
    return dst


def test_locate_in_models_dir(tiny_models_dir):
    locs = m.locate_all("base", "vitt", models_dir=tiny_models_dir, hf_cache_dir=Path("/nonexistent"))
    assert {r: l.source for r, l in locs.items()} == {r: "models-dir" for r in m.ROLES}
    assert locs["itm"].path == tiny_models_dir / "itm"
    assert locs["efficient_sam"].path == tiny_models_dir / "efficient_sam" / "efficient_sam_vitt.pt"
    assert all(l.random for l in locs.values())
    assert all(l.size_bytes > 10_000 for l in locs.values())


def test_env_models_dir(tiny_models_dir, monkeypatch):
    monkeypatch.setenv("QMASK_MODELS_DIR", str(tiny_models_dir))
    assert m.locate("qa").path == tiny_models_dir / "qa"
    # An explicit folder wins over the environment.
    assert m.locate("qa", models_dir="/nonexistent-models", hf_cache_dir="/nonexistent").found is False


def test_missing_role_names_the_download_command(tmp_path):
    loc = m.locate("qa", "large", "vits", models_dir=tmp_path, hf_cache_dir=tmp_path / "hf")
    assert not loc.found and loc.model_id == "allenai/unifiedqa-v2-t5-large-1363200"
    with pytest.raises(ModelMissingError) as err:
        loc.require()
    assert "qmask models download large --sam vits" in str(err.value)
    assert err.value.role == "qa"
    sam = m.locate("efficient_sam", models_dir=tmp_path, hf_cache_dir=tmp_path / "hf")
    assert not sam.found and "qmask models download base" in sam.fetch_command()


def _fake_hf_snapshot(cache: Path, repo: str, files: dict[str, bytes], commit: str = "a" * 40) -> Path:
    """The Hugging Face cache layout: models--org--name/{refs/main, snapshots/<commit>/...}."""
    root = cache / ("models--" + repo.replace("/", "--"))
    snap = root / "snapshots" / commit
    snap.mkdir(parents=True)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    for name, data in files.items():
        (snap / name).write_bytes(data)
    return snap


def test_locate_in_hf_cache_offline(tmp_path, tiny_models_dir):
    cache = tmp_path / "hf"
    files = {p.name: p.read_bytes() for p in (tiny_models_dir / "itm").iterdir()}
    snap = _fake_hf_snapshot(cache, m.ITM_REPO, files)
    loc = m.locate("itm", models_dir=tmp_path / "empty", hf_cache_dir=cache)
    assert loc.source == "hf-cache" and loc.path == snap and loc.revision == "a" * 40
    assert loc.model_id == m.ITM_REPO
    # A cache entry with config but no weights (an interrupted download) does not count.
    _fake_hf_snapshot(cache, m.CAPTION_REPO, {"config.json": b"{}"})
    cap = m.locate("caption", models_dir=tmp_path / "empty", hf_cache_dir=cache)
    assert not cap.found and "only part" in cap.note


def test_qa_preset_folders(tmp_path, tiny_models_dir):
    md = tmp_path / "md"
    md.mkdir()
    make_random_models(md, size="tiny", roles=("qa",))
    # A tiny random qa/ stands in for every preset ...
    assert m.locate("qa", "3b", models_dir=md, hf_cache_dir=tmp_path / "hf").path == md / "qa"
    # ... a qa/ that says it holds another preset does not, but qa-<preset>/ does.
    marker = json.loads((md / "qa" / m.MARKER_NAME).read_text())
    marker.update(size="full", qa_size="base")
    (md / "qa" / m.MARKER_NAME).write_text(json.dumps(marker))
    large = m.locate("qa", "large", models_dir=md, hf_cache_dir=tmp_path / "hf")
    assert not large.found and "holds the base model" in large.note
    shutil.copytree(tiny_models_dir / "qa", md / "qa-large")
    assert m.locate("qa", "large", models_dir=md, hf_cache_dir=tmp_path / "hf").path == md / "qa-large"
    assert m.locate("qa", "base", models_dir=md, hf_cache_dir=tmp_path / "hf").path == md / "qa"


def test_bad_names():
    with pytest.raises(InputError):
        m.locate("qa", preset="xxl")
    with pytest.raises(InputError):
        m.locate("vqa")
    with pytest.raises(InputError):
        m.ModelManager(sam_variant="vitb")
    with pytest.raises(InputError):
        m.ModelManager(offload="sometimes")


def test_manager_is_lazy_and_loads_once(tiny_models_dir):
    mm = m.ModelManager(models_dir=tiny_models_dir, device="cpu")
    assert not any(mm.is_loaded(r) for r in m.ROLES)
    assert mm.random_weights is True
    assert mm.model_ids()["itm"] == "qmask-random-tiny/itm"
    itm = mm.itm()
    assert mm.is_loaded("itm") and not mm.is_loaded("caption")
    assert mm.itm() is itm and mm.stats.loads["itm"] == 1
    assert type(itm.model).__name__ == "BlipForImageTextRetrieval"
    # Grad-CAM needs the attention probabilities: eager attention.
    assert itm.model.config._attn_implementation == "eager"
    assert itm.model.dtype == torch.float32 and not itm.model.training
    assert itm.tokenizer.convert_tokens_to_ids("[ENC]") == itm.model.config.text_config.bos_token_id + 1
    qa = mm.qa()
    assert type(qa.model).__name__ == "T5ForConditionalGeneration" and qa.tokenizer.eos_token_id == 1
    sam = mm.sam()
    assert type(sam.model).__name__ == "EfficientSam"
    assert sam.model.image_encoder.patch_embed.proj.weight.shape[0] == 32  # the tiny config


def test_replacing_a_role_frees_it(tiny_models_dir):
    mm = m.ModelManager(models_dir=tiny_models_dir, device="cpu")
    ref = weakref.ref(mm.qa().model)
    mm.set_preset("base")  # unchanged: kept
    assert ref() is not None
    mm.set_preset("large")
    gc.collect()
    assert ref() is None and not mm.is_loaded("qa") and mm.stats.releases["qa"] == 1
    assert mm.qa().location.preset == "large"
    sam_ref = weakref.ref(mm.sam().model)
    mm.release("efficient_sam")
    gc.collect()
    assert sam_ref() is None


def test_missing_role_raises_on_use_not_before(tmp_path, tiny_models_dir):
    md = tmp_path / "partial"
    shutil.copytree(tiny_models_dir / "itm", md / "itm")
    mm = m.ModelManager(models_dir=md, device="cpu", hf_cache_dir=tmp_path / "hf")
    mm.itm()
    with pytest.raises(ModelMissingError, match="qmask models download base"):
        mm.caption()
    with pytest.raises(ModelMissingError):
        mm.check_available()


def test_truncated_weights_are_a_checkpoint_error(models_copy):
    weights = models_copy / "itm" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    mm = m.ModelManager(models_dir=models_copy, device="cpu")
    with pytest.raises(CheckpointError) as err:
        mm.itm()
    assert str(models_copy / "itm") in str(err.value) and "qmask models download" in str(err.value)


def test_wrong_model_in_folder_is_a_checkpoint_error(models_copy):
    shutil.rmtree(models_copy / "caption")
    shutil.copytree(models_copy / "qa", models_copy / "caption")
    mm = m.ModelManager(models_dir=models_copy, device="cpu")
    with pytest.raises(CheckpointError, match="'t5' model, not a 'blip'"):
        mm.caption()


def test_caption_weights_in_itm_folder_are_refused(models_copy):
    # Same model_type ("blip") but another architecture: most ITM weights would be missing and
    # silently random; that must be refused.
    for name in ("model.safetensors",):
        shutil.copy(models_copy / "caption" / name, models_copy / "itm" / name)
    mm = m.ModelManager(models_dir=models_copy, device="cpu")
    with pytest.raises(CheckpointError, match="does not match"):
        mm.itm()


def test_corrupt_sam_checkpoint(models_copy):
    (models_copy / "efficient_sam" / "efficient_sam_vitt.pt").write_bytes(b"garbage")
    mm = m.ModelManager(models_dir=models_copy, device="cpu")
    with pytest.raises(CheckpointError, match="efficient_sam_vitt.pt"):
        mm.sam()


def test_sam_from_published_zip(models_copy, tmp_path):
    folder = models_copy / "efficient_sam"
    with zipfile.ZipFile(folder / "efficient_sam_vits.pt.zip", "w") as zf:
        zf.write(folder / "efficient_sam_vitt.pt", "efficient_sam_vits.pt")
    loc = m.locate("efficient_sam", sam_variant="vits", models_dir=models_copy)
    assert loc.path == folder / "efficient_sam_vits.pt.zip"
    extracted = m.sam_checkpoint_file(loc.path)
    assert extracted == folder / "efficient_sam_vits.pt"
    assert extracted.read_bytes() == (folder / "efficient_sam_vitt.pt").read_bytes()


def test_qmask_cache_for_sam(tmp_path, tiny_models_dir):
    cache = tmp_path / "qmask-cache" / "efficient_sam"
    cache.mkdir(parents=True)
    shutil.copy(tiny_models_dir / "efficient_sam" / "efficient_sam_vitt.pt", cache)
    loc = m.locate("efficient_sam", models_dir=tmp_path / "none")
    assert loc.source == "qmask-cache" and loc.model_id == "yformer/EfficientSAM:weights/efficient_sam_vitt.pt"


@pytest.mark.gpu
def test_cuda_half_precision_and_offload(tiny_models_dir):
    mm = m.ModelManager(models_dir=tiny_models_dir, device="cuda", offload="always")
    itm = mm.itm()
    assert next(itm.model.parameters()).device.type == "cuda"
    assert itm.model.dtype == torch.float16
    mm.caption()
    qa = mm.qa()
    # "always": only the role in use stays on the GPU.
    assert next(qa.model.parameters()).device.type == "cuda"
    assert next(mm._slots["itm"].loaded.model.parameters()).device.type == "cpu"
    assert mm.stats.offloads["itm"] == 1 and mm.stats.offloads["caption"] == 1
    mm.itm()
    assert next(itm.model.parameters()).device.type == "cuda"
    assert next(qa.model.parameters()).device.type == "cpu"


def _models_cli(*argv: str) -> int:
    import argparse

    from engine.commands import models as cmd

    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    return cmd.run(parser.parse_args(list(argv)))


def test_cli_list(tmp_path, tiny_models_dir, monkeypatch, capsys):
    monkeypatch.setattr(locations, "_locate_in_hf_cache", lambda repo, cache: (None, None, ""))
    assert _models_cli("list", "--models", str(tiny_models_dir)) == 0
    out = capsys.readouterr().out
    assert out.count("[random weights]") == 4 and "KB" in out and "MISSING" not in out
    assert _models_cli("list", "--models", str(tmp_path / "none"), "--preset", "3b", "--sam", "vits") == 1
    out = capsys.readouterr().out
    assert out.count("MISSING") == 4
    assert "qmask models download 3b --sam vits" in out
    assert "allenai/unifiedqa-v2-t5-3b-1363200" in out


def test_models_list_exits_1_naming_what_is_missing_and_how_to_get_it(tmp_path, tiny_models_dir, monkeypatch,
                                                                       capsys):
    """``qmask models list`` through the command line's entry: an empty models folder and empty
    caches give exit status 1 and a line naming the missing roles and the command that fetches
    them (a script checking the models stops there); all four present give 0."""
    import huggingface_hub.constants as hf_constants

    from engine.commands import cli

    empty = tmp_path / "empty-models"
    empty.mkdir()
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-hub"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-hub"))
    monkeypatch.setenv("QMASK_CACHE_DIR", str(tmp_path / "qmask-cache"))
    assert cli.main(["models", "list", "--models", str(empty)]) == 1
    captured = capsys.readouterr()
    assert captured.out.count("MISSING") == 4
    assert "4 of 4 model(s) missing (itm, caption, qa, efficient_sam)" in captured.err
    assert "qmask models download base" in captured.err and "--models DIR" in captured.err
    monkeypatch.setenv("QMASK_MODELS_DIR", str(empty))  # the environment's folder, no --models
    assert cli.main(["models", "list"]) == 1
    capsys.readouterr()
    assert cli.main(["models", "list", "--models", str(tiny_models_dir)]) == 0
    assert "missing" not in capsys.readouterr().err
