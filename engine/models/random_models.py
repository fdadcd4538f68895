"""Random-weight models in the exact layouts QMask loads (``qmask models make-random``).

Each role folder holds what ``from_pretrained`` (or, for EfficientSAM, our checkpoint loader)
expects, so tests and benchmarks go through the product's own loading code:

    itm/            BlipForImageTextRetrieval + BlipProcessor      (save_pretrained)
    caption/        BlipForConditionalGeneration + BlipProcessor   (save_pretrained)
    qa/             T5ForConditionalGeneration + T5 tokenizer       (save_pretrained)
    efficient_sam/  efficient_sam_vitt.pt (or _vits.pt) = {"model": state_dict}

Every folder also carries ``QMASK_RANDOM_WEIGHTS.json`` (see :data:`MARKER_NAME`); whatever is
built on these models reports "random weights".

``size="tiny"`` runs in well under a second per stage on a laptop CPU (tests, CI);
``size="full"`` has the published architectures (BLIP-large ViT-L/16 at 384 px, BERT-base text,
UnifiedQA T5 of the preset's size) for benchmarks. Tokenizers are built offline from a built-in
word list: no network, no download.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import InputError
from .random_vocab import blip_vocab, make_blip_tokenizer, make_t5_tokenizer

MARKER_NAME = "QMASK_RANDOM_WEIGHTS.json"
ROLES = ("itm", "caption", "qa", "efficient_sam")
SIZES = ("tiny", "full")
PRESETS = ("base", "large", "3b")

# BLIP image normalisation (CLIP statistics), as in the published processors.
BLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
BLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# The tiny EfficientSAM hyper-parameters (same values as the reference fixture's
# tiny_efficient_sam_config.json; embedded so nothing outside the package is read at run time).
TINY_EFFICIENT_SAM: dict[str, Any] = {
    "img_size": 1024,
    "patch_size": 16,
    "patch_embed_dim": 32,
    "depth": 2,
    "num_heads": 2,
    "mlp_ratio": 4.0,
    "neck_dims": [32, 32],
    "decoder_max_num_input_points": 6,
    "decoder_transformer_depth": 2,
    "decoder_transformer_mlp_dim": 64,
    "decoder_num_heads": 4,
    "decoder_upscaling_layer_dims": [16, 8],
    "num_multimask_outputs": 3,
    "iou_head_depth": 3,
    "iou_head_hidden_dim": 32,
}

# (d_model, d_ff, d_kv, heads, layers) of the original T5 v1.0 sizes UnifiedQA-v2 fine-tuned.
T5_SIZES: dict[str, tuple[int, int, int, int, int]] = {
    "base": (768, 3072, 64, 12, 12),
    "large": (1024, 4096, 64, 16, 24),
    "3b": (1024, 16384, 128, 32, 24),
}
T5_PARAMS_3B = 2.85e9

@dataclass(frozen=True)
class RandomModelsInfo:
    """What :func:`make_random_models` wrote."""

    root: Path
    size: str
    seed: int
    preset: str
    sam_variant: str
    roles: dict[str, Path]


def read_marker(role_dir: Path) -> dict[str, Any] | None:
    """The random-weights marker of a role folder (or checkpoint's folder), None when absent."""
    path = Path(role_dir) / MARKER_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        # A damaged marker still means "not real weights": never report them as published.
        return {"random": True, "damaged": True}


def make_random_models(
    out: str | os.PathLike[str],
    size: str = "tiny",
    seed: int = 0,
    preset: str = "base",
    sam_variant: str = "vitt",
    roles: tuple[str, ...] = ROLES,
    progress: Callable[[str], None] | None = None,
) -> RandomModelsInfo:
    """Write random-weight models for ``roles`` under ``out`` (created if needed).

    ``size`` is ``"tiny"`` or ``"full"``; ``preset`` picks the T5 size for ``full``
    (``3b`` writes about 11 GB and warns); ``sam_variant`` ``vitt`` or ``vits`` writes
    ``efficient_sam_vitt.pt`` or ``efficient_sam_vits.pt`` (tiny: the tiny EfficientSAM, twice as
    wide for ``vits``, as S is to Ti). Each role is built
    in a temporary folder next to its destination and renamed into place, so an interrupted
    run never leaves a half-written role behind. Deterministic for a given ``seed``.
    """
    if size not in SIZES:
        raise InputError(f"Unknown random-model size {size!r}; choose one of {', '.join(SIZES)}.")
    if preset not in PRESETS:
        raise InputError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    if sam_variant not in ("vitt", "vits"):
        raise InputError(f"Unknown EfficientSAM variant {sam_variant!r}; choose vitt or vits.")
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise InputError(f"Unknown model role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}.")
    if size == "full" and preset == "3b" and "qa" in roles:
        warnings.warn("A full-size random 3b UnifiedQA model is about 11 GB on disk and needs as much memory.",
                      stacklevel=2)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _msg: None)
    from .loading import quiet_transformers

    quiet_transformers()  # no "Writing model shards" bars: ``say`` tells what is written
    builders: dict[str, Callable[[Path, int], dict[str, Any]]] = {
        "itm": lambda d, s: _write_blip(d, s, size, retrieval=True),
        "caption": lambda d, s: _write_blip(d, s, size, retrieval=False),
        "qa": lambda d, s: _write_t5(d, s, size, preset),
        "efficient_sam": lambda d, s: _write_efficient_sam(d, s, size, sam_variant),
    }
    written: dict[str, Path] = {}
    for index, role in enumerate(roles):
        say(f"writing {role} ({size})")
        dest = root / role
        tmp = Path(tempfile.mkdtemp(prefix=f".{role}-", dir=root))
        try:
            # A different seed per role, so the ITM and caption vision weights are not identical.
            extra = builders[role](tmp, seed * 1000 + index)
            marker = {"random": True, "role": role, "size": size, "seed": seed, "preset": preset,
                      "name_or_path": f"qmask-random-{size}/{role}", **extra}
            (tmp / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
            _make_readable(tmp)
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        written[role] = dest
    return RandomModelsInfo(root=root, size=size, seed=seed, preset=preset, sam_variant=sam_variant,
                            roles=written)


def _make_readable(folder: Path) -> None:
    """mkdtemp and some writers create owner-only files; model folders are ordinary data."""
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


# ----------------------------------------------------------------------------- model writers


def _blip_configs(size: str, vocab_size: int, bos: int, sep: int) -> tuple[dict, dict, int]:
    """(vision_config, text_config, image_text_hidden_size) for ITM and captioning alike."""
    if size == "tiny":
        # 96 px / patch 16 -> a 6x6 grid. 12 text layers like BLIP so Grad-CAM block 7 exists.
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      image_size=96, patch_size=16, projection_dim=32, layer_norm_eps=1e-5,
                      initializer_range=0.02)
        text = dict(hidden_size=32, encoder_hidden_size=32, intermediate_size=64, num_hidden_layers=12,
                    num_attention_heads=4, max_position_embeddings=64, projection_dim=32)
        hidden = 16
    else:
        # BLIP-large: ViT-L/16 at 384 px (24x24 grid), BERT-base text with cross-attention.
        vision = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                      image_size=384, patch_size=16, projection_dim=512, layer_norm_eps=1e-5,
                      initializer_range=0.02)
        text = dict(hidden_size=768, encoder_hidden_size=1024, intermediate_size=3072, num_hidden_layers=12,
                    num_attention_heads=12, max_position_embeddings=512, projection_dim=768)
        hidden = 256
    text.update(vocab_size=vocab_size, bos_token_id=bos, sep_token_id=sep, eos_token_id=sep, pad_token_id=0,
                is_decoder=True, layer_norm_eps=1e-12)
    return vision, text, hidden


def _write_blip(out: Path, seed: int, size: str, retrieval: bool) -> dict[str, Any]:
    import torch
    from transformers import (BlipConfig, BlipForConditionalGeneration, BlipForImageTextRetrieval,
                              BlipImageProcessor, BlipProcessor)

    tokenizer = make_blip_tokenizer(size)
    vocab_size = len(tokenizer)
    bos = tokenizer.convert_tokens_to_ids("[DEC]")
    sep = tokenizer.sep_token_id
    vision, text, hidden = _blip_configs(size, vocab_size, bos, sep)
    config = BlipConfig(text_config=text, vision_config=vision, image_text_hidden_size=hidden,
                        projection_dim=vision["projection_dim"])
    torch.manual_seed(seed)
    cls = BlipForImageTextRetrieval if retrieval else BlipForConditionalGeneration
    model = cls(config).eval()
    side = vision["image_size"]
    image_processor = BlipImageProcessor(size={"height": side, "width": side}, resample=3, do_resize=True,
                                         do_rescale=True, do_normalize=True, image_mean=list(BLIP_MEAN),
                                         image_std=list(BLIP_STD), do_convert_rgb=True)
    processor = BlipProcessor(image_processor=image_processor, tokenizer=tokenizer)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    # The vocab file too, for tools that build a WordPiece tokenizer from it.
    (out / "vocab.txt").write_text("\n".join(blip_vocab(size)) + "\n", encoding="utf-8")
    return {"architecture": cls.__name__, "vocab_size": vocab_size, "image_size": side,
            "parameters": sum(p.numel() for p in model.parameters())}


def _write_t5(out: Path, seed: int, size: str, preset: str) -> dict[str, Any]:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = make_t5_tokenizer(size)
    vocab_size = len(tokenizer)
    if size == "tiny":
        d_model, d_ff, d_kv, heads, layers = 32, 64, 8, 4, 2
    else:
        d_model, d_ff, d_kv, heads, layers = T5_SIZES[preset]
    config = T5Config(vocab_size=vocab_size, d_model=d_model, d_ff=d_ff, d_kv=d_kv, num_heads=heads,
                      num_layers=layers, num_decoder_layers=layers, feed_forward_proj="relu",
                      relative_attention_num_buckets=32, dropout_rate=0.1, layer_norm_epsilon=1e-6,
                      tie_word_embeddings=True, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                      is_encoder_decoder=True)
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return {"architecture": "T5ForConditionalGeneration", "vocab_size": vocab_size,
            "qa_size": "tiny" if size == "tiny" else preset,
            "parameters": sum(p.numel() for p in model.parameters())}


def tiny_efficient_sam_config():
    """The tiny EfficientSAM configuration as an ``EfficientSamConfig``."""
    from ..sam.model import EfficientSamConfig

    return EfficientSamConfig.from_dict(TINY_EFFICIENT_SAM)


def _write_efficient_sam(out: Path, seed: int, size: str, variant: str) -> dict[str, Any]:
    import torch

    from ..sam.model import EfficientSamConfig, build_efficient_sam

    if size == "tiny":
        config = tiny_efficient_sam_config()
        if variant == "vits":  # S is Ti twice as wide, heads likewise: so is the tiny one
            config = dataclasses.replace(config, patch_embed_dim=2 * config.patch_embed_dim,
                                         num_heads=2 * config.num_heads)
    else:
        config = EfficientSamConfig.vitt() if variant == "vitt" else EfficientSamConfig.vits()
    torch.manual_seed(seed)
    model = build_efficient_sam(config).eval()
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    path = out / f"efficient_sam_{variant}.pt"
    torch.save({"model": state}, path)
    extra: dict[str, Any] = {"architecture": f"EfficientSAM-{variant}", "checkpoint": path.name,
                             "parameters": sum(v.numel() for v in state.values())}
    if size == "tiny":
        # The checkpoint does not say its own hyper-parameters; the loader reads them from here.
        extra["efficient_sam_config"] = config.to_dict()
    return extra
