"""``qmask models make-random``: layouts, tokenizers, determinism, atomic writes."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from engine.models import random_models as rm, random_vocab as rv
from engine.errors import InputError


def test_tiny_layout_and_markers(tiny_models_dir):
    for role in rm.ROLES:
        marker = json.loads((tiny_models_dir / role / rm.MARKER_NAME).read_text())
        assert marker["random"] is True and marker["role"] == role and marker["size"] == "tiny"
        assert marker["seed"] == 0 and marker["name_or_path"]
    for role in ("itm", "caption", "qa"):
        assert (tiny_models_dir / role / "config.json").is_file()
        assert (tiny_models_dir / role / "model.safetensors").is_file()
        assert (tiny_models_dir / role / "tokenizer.json").is_file()
    ckpt = torch.load(tiny_models_dir / "efficient_sam" / "efficient_sam_vitt.pt", weights_only=True)
    assert set(ckpt) == {"model"} and "image_encoder.patch_embed.proj.weight" in ckpt["model"]
    # No temporary folders left behind.
    assert sorted(p.name for p in tiny_models_dir.iterdir()) == sorted(rm.ROLES)


def test_itm_and_caption_share_the_vision_geometry(tiny_models_dir):
    itm = json.loads((tiny_models_dir / "itm" / "config.json").read_text())
    cap = json.loads((tiny_models_dir / "caption" / "config.json").read_text())
    assert itm["architectures"] == ["BlipForImageTextRetrieval"]
    assert cap["architectures"] == ["BlipForConditionalGeneration"]
    for key in ("image_size", "patch_size", "hidden_size"):
        assert itm["vision_config"][key] == cap["vision_config"][key]
    # Grad-CAM's default layer (7, as in PNP-VQA) must exist in the tiny text encoder.
    assert itm["text_config"]["num_hidden_layers"] > 7


def test_blip_tokenizer_specials(tiny_models_dir):
    from transformers import BlipProcessor

    proc = BlipProcessor.from_pretrained(tiny_models_dir / "itm")
    tok = proc.tokenizer
    config = json.loads((tiny_models_dir / "itm" / "config.json").read_text())["text_config"]
    vocab = (tiny_models_dir / "itm" / "vocab.txt").read_text().split("\n")[:-1]
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert vocab[-2:] == ["[DEC]", "[ENC]"]
    assert tok.convert_tokens_to_ids("[DEC]") == config["bos_token_id"] == len(vocab) - 2
    assert tok.convert_tokens_to_ids("[ENC]") == len(vocab) - 1 == config["vocab_size"] - 1
    assert tok.pad_token_id == config["pad_token_id"] == 0
    assert tok.sep_token_id == config["sep_token_id"]
    ids = tok("What is the man holding?")["input_ids"]
    pieces = tok.convert_ids_to_tokens(ids)
    assert pieces == ["[CLS]", "what", "is", "the", "man", "holding", "?", "[SEP]"]
    # Words outside the list still tokenise without [UNK].
    assert tok.unk_token_id not in tok("Xylophonist Qwerty42")["input_ids"]
    assert proc.image_processor.size == {"height": 96, "width": 96}


def test_t5_tokenizer(tiny_models_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_models_dir / "qa")
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    text = "what is the man holding? \\n a man holding a red bat."
    ids = tok(text)["input_ids"]
    assert ids[-1] == 1 and 2 not in ids
    assert tok.decode(ids, skip_special_tokens=True) == text
    config = json.loads((tiny_models_dir / "qa" / "config.json").read_text())
    assert config["vocab_size"] == len(tok)
    assert config["decoder_start_token_id"] == 0 and config["eos_token_id"] == 1


def test_full_vocab_sizes_match_the_published_models():
    vocab = rv.blip_vocab("full")
    assert len(vocab) == rv.BLIP_VOCAB_SIZE == 30524
    assert vocab.index("[DEC]") == 30522 and vocab.index("[ENC]") == 30523
    assert len(set(vocab)) == len(vocab)
    pieces = rv.t5_vocab("full")
    assert len(pieces) == rv.T5_VOCAB_SIZE == 32128
    assert [p for p, _ in pieces[:3]] == ["<pad>", "</s>", "<unk>"]
    assert len({p for p, _ in pieces}) == len(pieces)


def test_full_architectures_on_meta_device():
    from transformers import BlipConfig, BlipForImageTextRetrieval, T5Config, T5ForConditionalGeneration

    vision, text, hidden = rm._blip_configs("full", rv.BLIP_VOCAB_SIZE, 30522, 3)
    assert (vision["image_size"] // vision["patch_size"]) ** 2 == 576
    with torch.device("meta"):
        blip = BlipForImageTextRetrieval(BlipConfig(text_config=text, vision_config=vision,
                                                    image_text_hidden_size=hidden))
    vit = sum(p.numel() for p in blip.vision_model.parameters())
    assert 300e6 < vit < 310e6  # ViT-L/16 at 384 px: ~304M
    d_model, d_ff, d_kv, heads, layers = rm.T5_SIZES["base"]
    with torch.device("meta"):
        t5 = T5ForConditionalGeneration(T5Config(vocab_size=32128, d_model=d_model, d_ff=d_ff, d_kv=d_kv,
                                                 num_heads=heads, num_layers=layers, feed_forward_proj="relu"))
    assert abs(sum(p.numel() for p in t5.parameters()) - 222.9e6) < 0.5e6  # T5-base


def test_deterministic_per_seed(tmp_path):
    a = rm.make_random_models(tmp_path / "a", size="tiny", seed=3, roles=("itm", "qa"))
    b = rm.make_random_models(tmp_path / "b", size="tiny", seed=3, roles=("itm", "qa"))
    c = rm.make_random_models(tmp_path / "c", size="tiny", seed=4, roles=("itm",))
    wa, wb, wc = (load_file(x.roles["itm"] / "model.safetensors") for x in (a, b, c))
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    key = "vision_model.encoder.layers.0.self_attn.qkv.weight"
    assert not torch.equal(wa[key], wc[key])


def test_failed_role_leaves_nothing_half_written(tmp_path, monkeypatch):
    rm.make_random_models(tmp_path, size="tiny", seed=0, roles=("qa",))
    before = (tmp_path / "qa" / "model.safetensors").read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(rm, "_write_t5", boom)
    with pytest.raises(RuntimeError):
        rm.make_random_models(tmp_path, size="tiny", seed=1, roles=("qa",))
    assert (tmp_path / "qa" / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qa"]


def test_bad_arguments(tmp_path):
    with pytest.raises(InputError, match="size"):
        rm.make_random_models(tmp_path, size="huge")
    with pytest.raises(InputError, match="preset"):
        rm.make_random_models(tmp_path, preset="xl")
    with pytest.raises(InputError, match="role"):
        rm.make_random_models(tmp_path, roles=("vqa",))


def test_full_3b_warns_about_size(tmp_path, monkeypatch):
    monkeypatch.setattr(rm, "_write_t5", lambda out, seed, size, preset: {"qa_size": preset})
    with pytest.warns(UserWarning, match="11 GB"):
        rm.make_random_models(tmp_path, size="full", preset="3b", roles=("qa",))
    marker = rm.read_marker(tmp_path / "qa")
    assert marker["size"] == "full" and marker["qa_size"] == "3b"


def test_cli_make_random(tmp_path, capsys):
    import argparse

    from engine.commands import models as cmd

    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    args = parser.parse_args(["make-random", str(tmp_path / "m"), "--seed", "5"])
    assert cmd.run(args) == 0
    out = capsys.readouterr().out
    assert "random weights" in out and str(tmp_path / "m") in out
    assert rm.read_marker(tmp_path / "m" / "caption")["seed"] == 5
