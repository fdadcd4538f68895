"""Tiny random models written in the layouts the real checkpoints are PUBLISHED in.

``engine.models.random_models`` writes what transformers 5 itself saves (safetensors, ``tokenizer.json``
with BLIP's ``[DEC]``/``[ENC]``, a QMASK_RANDOM_WEIGHTS marker). The published repositories look
different, and QMask must load them as they are. What each writer copies (checked against the
repositories' file lists and files on huggingface.co; see tests/engine/models/test_published_layouts.py):

* ``allenai/unifiedqa-v2-t5-{base,large,3b}-1363200`` (main): ``config.json``,
  ``generation_config.json``, ``pytorch_model.bin`` (a pickled state dict; no safetensors),
  ``spiece.model``, ``tokenizer_config.json`` and ``special_tokens_map.json`` (``extra_ids`` 100 and
  the ``<extra_id_N>`` list), no ``tokenizer.json``: transformers must build the T5 tokenizer from
  the SentencePiece model.
* ``Salesforce/blip-itm-large-coco`` and ``Salesforce/blip-image-captioning-large``:
  ``config.json`` written by transformers 4.2x (every legacy generation key inside
  ``text_config``/``vision_config``; ``text_config.bos_token_id`` 30522 = ``[DEC]``,
  ``eos_token_id`` 2, ``sep_token_id`` 102, ``vocab_size`` 30524), ``pytorch_model.bin`` and
  ``model.safetensors`` (same tensors), ``preprocessor_config.json`` (with ``do_pad`` /
  ``size_divisor`` keys BlipImageProcessor does not use), and the plain ``bert-base-uncased``
  tokenizer: ``vocab.txt`` (30522 entries, no ``[DEC]``/``[ENC]``), ``tokenizer.json``,
  ``tokenizer_config.json`` (``BertTokenizer``, no bos token), ``special_tokens_map.json`` (the
  five BERT specials only).
* ``yformer/EfficientSAM`` ``weights/efficient_sam_vits.pt.zip``: a zip holding
  ``efficient_sam_vits.pt`` (a torch file ``{"model": state_dict}``).

Sizes are tiny (tests); ids keep BERT's and T5's positions where they matter: ``[PAD]`` 0,
``[UNK]`` 100, ``[CLS]`` 101, ``[SEP]`` 102, ``[MASK]`` 103, ``[DEC]`` = ``len(vocab)`` and
``[ENC]`` right after it, outside the tokenizer; T5 ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import zipfile
from pathlib import Path
from typing import Any

# transformers 4.2x wrote every PretrainedConfig attribute into each sub-config.
_LEGACY_CONFIG_KEYS: dict[str, Any] = dict(
    return_dict=True, output_hidden_states=False, output_attentions=False, torchscript=False, torch_dtype=None,
    use_bfloat16=False, tf_legacy_loss=False, pruned_heads={}, tie_word_embeddings=True, is_encoder_decoder=False,
    cross_attention_hidden_size=None, add_cross_attention=False, tie_encoder_decoder=False, max_length=20,
    min_length=0, do_sample=False, early_stopping=False, num_beams=1, num_beam_groups=1, diversity_penalty=0.0,
    temperature=1.0, top_k=50, top_p=1.0, typical_p=1.0, repetition_penalty=1.0, length_penalty=1.0,
    no_repeat_ngram_size=0, encoder_no_repeat_ngram_size=0, bad_words_ids=None, num_return_sequences=1,
    chunk_size_feed_forward=0, output_scores=False, return_dict_in_generate=False, forced_bos_token_id=None,
    forced_eos_token_id=None, remove_invalid_values=False, exponential_decay_length_penalty=None,
    suppress_tokens=None, begin_suppress_tokens=None, architectures=None, finetuning_task=None,
    id2label={"0": "LABEL_0", "1": "LABEL_1"}, label2id={"LABEL_0": 0, "LABEL_1": 1}, tokenizer_class=None,
    prefix=None, decoder_start_token_id=None, task_specific_params=None, problem_type=None, _name_or_path="",
    transformers_version="4.26.0.dev0", initializer_factor=1.0)

BERT_SPECIALS = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}
BLIP_IMAGE_SIZE = 96  # 6x6 patches of 16 px


def bert_vocab() -> list[str]:
    """A plain BERT-uncased style WordPiece vocabulary: specials at BERT's ids, no [DEC]/[ENC]."""
    from engine.models.random_models import blip_vocab

    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += [t for t in blip_vocab("tiny") if not (t.startswith("[") and t.endswith("]"))]
    assert all(vocab[i] == tok for tok, i in BERT_SPECIALS.items())
    return vocab


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _legacy_state_dict(model: Any, extra_buffers: dict[str, Any]) -> dict[str, Any]:
    """What an old ``save_pretrained`` pickled: every tensor, tied ones included, plus the
    ``position_ids`` buffers transformers 4.2x still saved (int64, hence the published
    ``torch.LongStorage`` pickle import)."""
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    state.update(extra_buffers)
    return state


def write_blip(folder: Path, retrieval: bool, seed: int = 0, safetensors: bool = True) -> dict[str, int]:
    """A tiny BLIP (ITM or captioning) in the published Salesforce layout; returns its special ids."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipForImageTextRetrieval

    folder.mkdir(parents=True, exist_ok=True)
    vocab = bert_vocab()
    bos = len(vocab)  # [DEC]; [ENC] = bos + 1 exists only in the model's embedding table
    text = dict(_LEGACY_CONFIG_KEYS, vocab_size=bos + 2, hidden_size=32, encoder_hidden_size=32,
                intermediate_size=64, projection_dim=32, num_hidden_layers=12, num_attention_heads=4,
                max_position_embeddings=64, hidden_act="gelu", layer_norm_eps=1e-12, hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0, initializer_range=0.02, bos_token_id=bos, eos_token_id=2,
                pad_token_id=0, sep_token_id=BERT_SPECIALS["[SEP]"], is_decoder=True, use_cache=True,
                model_type="blip_text_model")
    vision = dict(_LEGACY_CONFIG_KEYS, hidden_size=32, intermediate_size=64, projection_dim=32, num_hidden_layers=2,
                  num_attention_heads=4, image_size=BLIP_IMAGE_SIZE, patch_size=16, hidden_act="gelu",
                  layer_norm_eps=1e-5, attention_dropout=0.0, dropout=0.0, initializer_range=1e-10,
                  num_channels=3, model_type="blip_vision_model")
    arch = "BlipForImageTextRetrieval" if retrieval else "BlipForConditionalGeneration"
    config = {"_commit_hash": None, "architectures": [arch], "image_text_hidden_size": 16,
              "initializer_factor": 1.0, "logit_scale_init_value": 2.6592, "model_type": "blip",
              "projection_dim": 32, "text_config": text, "torch_dtype": "float32",
              "transformers_version": None, "vision_config": vision}
    _write_json(folder / "config.json", config)

    torch.manual_seed(seed)
    cls = BlipForImageTextRetrieval if retrieval else BlipForConditionalGeneration
    model = cls(BlipConfig.from_pretrained(folder)).eval()
    prefix = "text_encoder" if retrieval else "text_decoder.bert"
    positions = torch.arange(text["max_position_embeddings"]).expand((1, -1)).clone()
    state = _legacy_state_dict(model, {f"{prefix}.embeddings.position_ids": positions})
    torch.save(state, folder / "pytorch_model.bin")
    if safetensors:
        # The safetensors variant the Hub's conversion bot added later: the same tensors, no
        # shared storage.
        from safetensors.torch import save_file

        save_file({k: v.clone() for k, v in state.items()}, str(folder / "model.safetensors"),
                  metadata={"format": "pt"})

    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    wordpiece = BertWordPieceTokenizer(str(folder / "vocab.txt"), lowercase=True)
    wordpiece.save(str(folder / "tokenizer.json"))
    tokenizer_config: dict[str, Any] = {
        "cls_token": "[CLS]", "do_basic_tokenize": True, "do_lower_case": True, "mask_token": "[MASK]",
        "model_max_length": 512, "name_or_path": "ybelkada/blip-image-captioning-base", "never_split": None,
        "pad_token": "[PAD]", "processor_class": "BlipProcessor", "sep_token": "[SEP]",
        "special_tokens_map_file": None, "strip_accents": None, "tokenize_chinese_chars": True,
        "tokenizer_class": "BertTokenizer", "unk_token": "[UNK]"}
    if not retrieval:  # the captioning repo's later tokenizer_config.json update
        tokenizer_config.update(name_or_path="Salesforce/blip-image-captioning-large",
                                model_input_names=["input_ids", "attention_mask"])
    _write_json(folder / "tokenizer_config.json", tokenizer_config)
    _write_json(folder / "special_tokens_map.json", {"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]",
                                                     "sep_token": "[SEP]", "unk_token": "[UNK]"})
    _write_json(folder / "preprocessor_config.json", {
        "do_normalize": True, "do_pad": True, "do_rescale": True, "do_resize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_processor_type": "BlipImageProcessor",
        "image_std": [0.26862954, 0.26130258, 0.27577711], "processor_class": "BlipProcessor", "resample": 3,
        "rescale_factor": 0.00392156862745098, "size": {"height": BLIP_IMAGE_SIZE, "width": BLIP_IMAGE_SIZE},
        "size_divisor": 32})
    return {"bos": bos, "enc": bos + 1, "sep": BERT_SPECIALS["[SEP]"], "pad": 0, "cls": BERT_SPECIALS["[CLS]"],
            "unk": BERT_SPECIALS["[UNK]"]}


def _t5_corpus(seed: int) -> list[str]:
    from engine.models.random_vocab import _WORDS

    rng = random.Random(seed)
    lines = [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 12))) + rng.choice([".", "?", ""])
             for _ in range(2000)]
    # UnifiedQA's literal backslash-n separator, as FiD contexts carry it.
    lines += [f"what is {w} \\n a picture of a {w}." for w in _WORDS[:200]]
    return lines


def train_spiece(seed: int = 0, vocab_size: int = 300) -> bytes:
    """A SentencePiece unigram model with T5's special ids (pad 0, eos 1, unk 2, no bos)."""
    import sentencepiece as spm

    out = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(_t5_corpus(seed)), model_writer=out,
                                   vocab_size=vocab_size, model_type="unigram", pad_id=0, eos_id=1, unk_id=2,
                                   bos_id=-1, character_coverage=1.0, num_threads=1, minloglevel=2)
    return out.getvalue()


def write_unifiedqa(folder: Path, seed: int = 0, spiece: bytes | None = None) -> dict[str, int]:
    """A tiny T5 in the published allenai/unifiedqa-v2 layout (pytorch_model.bin + spiece.model)."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    folder.mkdir(parents=True, exist_ok=True)
    model_bytes = spiece if spiece is not None else train_spiece(seed)
    (folder / "spiece.model").write_bytes(model_bytes)
    import sentencepiece as spm

    pieces = spm.SentencePieceProcessor(model_proto=model_bytes).get_piece_size()
    extra = [f"<extra_id_{i}>" for i in range(100)]
    # T5's embedding table is larger than its tokenizer (32128 vs 32100); keep that slack.
    vocab_size = pieces + len(extra) + 28
    config = {
        "architectures": ["T5ForConditionalGeneration"], "d_ff": 64, "d_kv": 8, "d_model": 32,
        "decoder_start_token_id": 0, "dropout_rate": 0.1, "eos_token_id": 1, "feed_forward_proj": "relu",
        "initializer_factor": 1.0, "is_encoder_decoder": True, "layer_norm_epsilon": 1e-06, "model_type": "t5",
        "n_positions": 512, "num_decoder_layers": 2, "num_heads": 4, "num_layers": 2, "output_past": True,
        "pad_token_id": 0, "relative_attention_num_buckets": 32,
        "task_specific_params": {"summarization": {"early_stopping": True, "length_penalty": 2.0, "max_length": 200,
                                                   "min_length": 30, "no_repeat_ngram_size": 3, "num_beams": 4,
                                                   "prefix": "summarize: "},
                                 "translation_en_to_de": {"early_stopping": True, "max_length": 300,
                                                          "num_beams": 4,
                                                          "prefix": "translate English to German: "}},
        "torch_dtype": "float32", "transformers_version": "4.16.2", "use_cache": True, "vocab_size": vocab_size}
    _write_json(folder / "config.json", config)
    _write_json(folder / "generation_config.json", {"_from_model_config": True, "decoder_start_token_id": 0,
                                                    "eos_token_id": 1, "pad_token_id": 0,
                                                    "transformers_version": "4.27.0.dev0"})
    _write_json(folder / "tokenizer_config.json", {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
                                                   "extra_ids": 100, "additional_special_tokens": extra,
                                                   "model_max_length": 512, "name_or_path": "t5-base"})
    _write_json(folder / "special_tokens_map.json", {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
                                                     "additional_special_tokens": extra})
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(T5Config.from_pretrained(folder)).eval()
    # Transformers 3.x/4.0 also gave the first decoder block's cross-attention a relative bias;
    # old T5 checkpoints still carry that tensor.
    legacy = {"decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight":
              torch.zeros(config["relative_attention_num_buckets"], config["num_heads"])}
    torch.save(_legacy_state_dict(model, legacy), folder / "pytorch_model.bin")
    return {"pieces": pieces, "vocab_size": vocab_size, "pad": 0, "eos": 1, "unk": 2}


def write_efficient_sam_zip(folder: Path, seed: int = 0) -> Path:
    """``efficient_sam_vits.pt.zip`` holding ``efficient_sam_vits.pt`` = {"model": state, ...}.

    The weights are the tiny EfficientSAM (a real S checkpoint is 100 MB); its hyper-parameters
    ride along in the checkpoint's ``config`` entry, which the loader reads when present (a
    published checkpoint has none and is recognised from its tensor shapes instead).
    """
    import torch

    from engine.sam.model import build_efficient_sam
    from engine.models.random_models import TINY_EFFICIENT_SAM, tiny_efficient_sam_config

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = build_efficient_sam(tiny_efficient_sam_config()).eval()
    buf = io.BytesIO()
    torch.save({"model": {k: v.detach().clone() for k, v in model.state_dict().items()},
                "config": dict(TINY_EFFICIENT_SAM)}, buf)
    path = folder / "efficient_sam_vits.pt.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("efficient_sam_vits.pt", buf.getvalue())
        # Archives made on a Mac carry resource-fork shadows; they must be ignored.
        zf.writestr("__MACOSX/._efficient_sam_vits.pt", b"\x00\x05\x16\x07")
    return path


def hf_cache_snapshot(cache: Path, repo: str, source: Path, revision: str = "0123456789abcdef" * 2 + "01234567"
                      ) -> Path:
    """Copy ``source``'s files into the Hugging Face cache layout, as ``huggingface_hub`` writes it:
    ``models--ORG--NAME/blobs/<sha256>``, ``snapshots/<rev>/<file>`` relative symlinks to the blobs,
    ``refs/main`` holding the revision, and ``.no_exist/<rev>/`` markers for files the Hub lacks."""
    root = cache / ("models--" + repo.replace("/", "--"))
    snap = root / "snapshots" / revision
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    snap.mkdir(parents=True, exist_ok=True)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(revision)
    for path in sorted(source.iterdir()):
        if not path.is_file():
            continue
        data = path.read_bytes()
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snap / path.name
        link.symlink_to(os.path.relpath(blob, snap))
    no_exist = root / ".no_exist" / revision
    no_exist.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "model.safetensors.index.json", "added_tokens.json", "chat_template.jinja"):
        if not (snap / name).exists():
            (no_exist / name).touch()
    return snap
