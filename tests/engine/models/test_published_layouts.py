"""QMask loads the checkpoints in the layouts they are PUBLISHED in, offline.

``tests/support/published_layouts.py`` writes tiny random models shaped like the real repositories
(file lists and file contents checked on huggingface.co and github.com; see its docstring):
UnifiedQA-v2 as ``pytorch_model.bin`` + ``spiece.model`` with no ``tokenizer.json``; the BLIP
ports with a transformers-4.2x ``config.json``, both weight formats and the plain
``bert-base-uncased`` tokenizer that knows neither ``[DEC]`` nor ``[ENC]``; EfficientSAM-S as a
``.pt.zip``. They are loaded through ``ModelManager`` / ``Pipeline`` from a models folder and
from the Hugging Face cache layout (blobs, symlinked snapshots, ``refs/main``).
"""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest
import torch

from engine.models import manager as m
from engine.vqa.blip_text import dec_token_id, enc_token_id
from engine.errors import CheckpointError, ResourceError
from engine.vqa.gradcam import tokenize_questions
from engine.annotation.pipeline import Pipeline
from engine.annotation.settings import PipelineSettings

from support import published_layouts as pl  # noqa: E402

# What the published repositories hold (README.md, .gitattributes and tf_model.h5 left out:
# `qmask models download` never fetches them).
PUBLISHED_FILES = {
    "itm": {"config.json", "model.safetensors", "pytorch_model.bin", "preprocessor_config.json",
            "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"},
    "qa": {"config.json", "generation_config.json", "pytorch_model.bin", "special_tokens_map.json", "spiece.model",
           "tokenizer_config.json"},
}


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("QMASK_CACHE_DIR", str(tmp_path / "qmask-cache"))


@pytest.fixture(scope="module")
def spiece() -> bytes:
    return pl.train_spiece(seed=0)


@pytest.fixture(scope="module")
def published(tmp_path_factory, spiece) -> dict:
    """A models folder in the published layouts: itm/ (both weight formats), caption/ (the older
    snapshot with pytorch_model.bin only), qa/ (UnifiedQA), efficient_sam/efficient_sam_vits.pt.zip."""
    root = tmp_path_factory.mktemp("published")
    ids = pl.write_blip(root / "itm", retrieval=True, seed=0)
    pl.write_blip(root / "caption", retrieval=False, seed=1, safetensors=False)
    qa = pl.write_unifiedqa(root / "qa", seed=2, spiece=spiece)
    pl.write_efficient_sam_zip(root / "efficient_sam", seed=3)
    return {"root": root, "blip": ids, "qa": qa}


@pytest.fixture(scope="module")
def manager(published):
    return m.ModelManager(sam_variant="vits", device="cpu", models_dir=published["root"],
                          hf_cache_dir=published["root"] / "no-hf-cache")


def _image(h: int = 90, w: int = 120) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_writers_copy_the_published_file_lists(published):
    root = published["root"]
    assert {p.name for p in (root / "itm").iterdir()} == PUBLISHED_FILES["itm"]
    assert {p.name for p in (root / "caption").iterdir()} == PUBLISHED_FILES["itm"] - {"model.safetensors"}
    assert {p.name for p in (root / "qa").iterdir()} == PUBLISHED_FILES["qa"]
    vocab = (root / "itm" / "vocab.txt").read_text().split("\n")
    assert "[DEC]" not in vocab and "[ENC]" not in vocab and vocab.index("[SEP]") == 102
    assert not any((root / role / m.MARKER_NAME).exists() for role in ("itm", "caption", "qa", "efficient_sam"))


def test_located_as_real_weights(published):
    locs = m.locate_all("base", "vits", models_dir=published["root"], hf_cache_dir=published["root"] / "none")
    assert all(loc.source == "models-dir" and not loc.random for loc in locs.values())
    assert locs["efficient_sam"].path.name == "efficient_sam_vits.pt.zip"
    assert locs["qa"].path == published["root"] / "qa"


def test_weights_are_the_published_tensors(manager):
    """Every parameter comes from the pickled state dict (nothing silently re-initialised); the
    legacy tensors old transformers saved (position_ids, T5's cross-attention bias) are ignored."""
    for loaded in (manager.itm(), manager.caption(), manager.qa()):
        saved = torch.load(loaded.location.path / "pytorch_model.bin", weights_only=True)
        state = loaded.model.state_dict()
        assert set(state) <= set(saved)
        for name, tensor in state.items():
            assert torch.equal(tensor, saved[name]), name
    cap = manager.caption().model.text_decoder
    assert cap.cls.predictions.decoder.weight.data_ptr() == cap.bert.embeddings.word_embeddings.weight.data_ptr()


def test_unifiedqa_tokenizer_built_from_spiece(manager, published, spiece):
    import sentencepiece as spm

    tok = manager.qa().tokenizer
    pieces = published["qa"]["pieces"]
    assert not (manager.qa().location.path / "tokenizer.json").exists()
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    assert len(tok) == pieces + 100
    # T5's sentinels sit after the SentencePiece pieces, in reverse order.
    assert tok.convert_tokens_to_ids("<extra_id_0>") == pieces + 99
    assert tok.convert_tokens_to_ids("<extra_id_99>") == pieces
    text = "what is the man holding? \\n a picture of a man holding a bat."
    sp = spm.SentencePieceProcessor(model_proto=spiece)
    assert tok(text)["input_ids"] == sp.encode(text) + [1]
    assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text


def test_blip_tokenizer_without_dec_and_enc(manager, published):
    """The published tokenizers are plain bert-base-uncased: [ENC] and [DEC] map to [UNK], so
    Grad-CAM takes bos_token_id + 1 for [ENC] and captions take bos_token_id for [DEC]."""
    ids = published["blip"]
    itm = manager.itm()
    tok = itm.tokenizer
    assert len(tok) == ids["bos"]
    assert tok.convert_tokens_to_ids("[ENC]") == tok.convert_tokens_to_ids("[DEC]") == ids["unk"]
    assert itm.model.config.text_config.bos_token_id == ids["bos"]
    assert enc_token_id(itm.processor, itm.model.config) == ids["enc"]
    assert dec_token_id(manager.caption().model.config) == ids["bos"]
    input_ids, mask = tokenize_questions(itm.processor, itm.model.config, ["What is the man holding?"])
    assert input_ids[0, 0] == ids["enc"] and input_ids[0, -1] == ids["sep"]
    assert ids["unk"] not in input_ids[0].tolist() and mask.all()


class _InputIds:
    """Records the input ids a text embedding module sees (first call = the full prompt)."""

    def __init__(self, module: torch.nn.Module):
        self.calls: list[torch.Tensor] = []
        self.handle = module.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None:
            self.calls.append(ids.detach().cpu().clone())


def _run_and_check(pipe: Pipeline, ids: dict) -> None:
    itm = pipe.manager.itm().model
    cap = pipe.manager.caption().model
    seen_itm = _InputIds(itm.text_encoder.embeddings)
    seen_cap = _InputIds(cap.text_decoder.bert.embeddings)
    try:
        pipe.set_image(_image(), "published")
        chain = pipe.run("What is the man holding?")
    finally:
        seen_itm.handle.remove()
        seen_cap.handle.remove()
    assert seen_itm.calls and all((c[:, 0] == ids["enc"]).all() for c in seen_itm.calls)
    prompt = seen_cap.calls[0]
    assert (prompt[:, 0] == ids["bos"]).all() and ids["sep"] not in prompt.tolist()[0]
    assert chain.heatmap.tokens == ("what", "is", "the", "man", "holding")
    assert chain.heatmap.question_map.shape == (6, 6) and (chain.heatmap.question_map >= 0).all()
    assert chain.segmentation is not None and chain.mask.shape == (90, 120)
    assert 1 <= len(chain.captions.captions) <= 4
    assert isinstance(chain.answer.answer, str)
    assert pipe.random_weights is False


def test_pipeline_runs_on_published_models_dir(published):
    settings = PipelineSettings(device="cpu", sam_variant="vits", num_captions=4, max_caption_rounds=2,
                                caption_batch_size=4)
    pipe = Pipeline.from_settings(settings, models_dir=published["root"],
                                  hf_cache_dir=published["root"] / "no-hf-cache")
    _run_and_check(pipe, published["blip"])
    sam = pipe.manager.sam()
    assert sam.checkpoint.name == "efficient_sam_vits.pt.zip"  # read in place
    assert m.sam_checkpoint_file(sam.checkpoint).name == "efficient_sam_vits.pt"  # the Mac shadow file skipped


def test_pipeline_runs_from_the_hugging_face_cache(published, tmp_path):
    """`from_pretrained`/`snapshot_download` caches: blobs, symlinked snapshots, refs/main,
    .no_exist markers; EfficientSAM's zip in QMask's own cache. Found offline."""
    root, cache = published["root"], tmp_path / "hf"
    snaps = {role: pl.hf_cache_snapshot(cache, m.repo_id(role), root / role) for role in ("itm", "caption", "qa")}
    sam_cache = tmp_path / "qmask-cache" / "efficient_sam"
    sam_cache.mkdir(parents=True)
    shutil.copy(root / "efficient_sam" / "efficient_sam_vits.pt.zip", sam_cache)
    settings = PipelineSettings(device="cpu", sam_variant="vits", num_captions=4, max_caption_rounds=2,
                                caption_batch_size=4)
    pipe = Pipeline.from_settings(settings, models_dir=None, hf_cache_dir=cache)
    locs = pipe.manager.locations()
    for role, snap in snaps.items():
        assert locs[role].source == "hf-cache" and locs[role].path == snap and locs[role].model_id == m.repo_id(role)
        assert locs[role].revision == snap.name and (snap / "config.json").is_symlink()
        assert locs[role].size_bytes > (root / role / "pytorch_model.bin").stat().st_size  # symlinks followed
    assert locs["efficient_sam"].source == "qmask-cache"
    _run_and_check(pipe, published["blip"])


def test_interrupted_hub_download_is_not_found(published, tmp_path):
    cache = tmp_path / "hf"
    snap = pl.hf_cache_snapshot(cache, m.ITM_REPO, published["root"] / "itm")
    # huggingface_hub links a snapshot file only once its blob is complete; a lost blob leaves a
    # dangling link.
    for name in ("model.safetensors", "pytorch_model.bin"):
        (snap / name).resolve().unlink()
    loc = m.locate("itm", models_dir=tmp_path / "none", hf_cache_dir=cache)
    assert not loc.found and "only part" in loc.note


def test_missing_sentencepiece_is_named(published, monkeypatch):
    monkeypatch.setitem(sys.modules, "sentencepiece", None)  # import now fails
    mm = m.ModelManager(device="cpu", models_dir=published["root"], hf_cache_dir=published["root"] / "none")
    with pytest.raises(ResourceError, match="pip install sentencepiece"):
        mm.qa()
    assert not mm.is_loaded("qa")


def test_git_lfs_pointer_is_named(published, tmp_path):
    """`git clone` without git-lfs leaves ~130-byte pointer files where the weights should be."""
    md = tmp_path / "md"
    shutil.copytree(published["root"] / "qa", md / "qa")
    shutil.copytree(published["root"] / "itm", md / "itm")
    pointer = ("version https://git-lfs.github.com/spec/v1\n"
               "oid sha256:" + "0" * 64 + "\nsize 891691430\n")
    (md / "qa" / "pytorch_model.bin").write_text(pointer)
    (md / "itm" / "tf_model.h5").write_text(pointer)  # never read: not an error
    (md / "itm" / "pytorch_model.bin").write_text(pointer)  # safetensors preferred: not an error
    mm = m.ModelManager(device="cpu", models_dir=md, hf_cache_dir=tmp_path / "none")
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin .*Git LFS pointer.*git lfs pull"):
        mm.qa()
    assert mm.itm().model is not None
    (md / "itm" / "model.safetensors").write_text(pointer)
    mm.release_all()
    with pytest.raises(CheckpointError, match=r"model\.safetensors .*Git LFS"):
        m.ModelManager(device="cpu", models_dir=md, hf_cache_dir=tmp_path / "none").itm()


def test_memory_estimate_counts_only_the_weights_read(published, tmp_path):
    folder = tmp_path / "itm"
    shutil.copytree(published["root"] / "itm", folder)
    (folder / "tf_model.h5").write_bytes(b"\0" * 500_000)  # a full clone's TF copy
    mm = m.ModelManager(device="cpu", models_dir=tmp_path, hf_cache_dir=tmp_path / "none")
    loc = mm.location("itm")
    assert m.weight_files(folder) == [folder / "model.safetensors"]
    assert mm._estimate_bytes(loc) == (folder / "model.safetensors").stat().st_size < loc.size_bytes
    (folder / "model.safetensors").unlink()
    assert m.weight_files(folder) == [folder / "pytorch_model.bin"]
