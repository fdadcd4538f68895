"""Small BLIP text helpers shared by Grad-CAM (``engine.vqa.gradcam``) and captioning (``engine.vqa.captions``).

BLIP's text side uses a BERT WordPiece vocabulary with two extra tokens appended: ``[DEC]``
(= ``text_config.bos_token_id``, starts the caption decoder) and ``[ENC]`` (right after it,
starts the image-grounded text encoder used for ITM). The published Hugging Face BLIP
tokenizers were made from plain ``bert-base-uncased`` and may not know ``[ENC]``; it then maps
to ``[UNK]``, so we fall back to the id that follows ``[DEC]``.
"""

from __future__ import annotations

from typing import Any


ENC_TOKEN = "[ENC]"
DEC_TOKEN = "[DEC]"
ITM_MAX_TEXT_TOKENS = 35  # BLIP ITM's max_txt_len (LAVIS blip_itm)


def text_tokenizer(tokenizer_or_processor: Any) -> Any:
    """The text tokenizer of a ``BlipProcessor``, or the argument itself when it is a tokenizer."""
    inner = getattr(tokenizer_or_processor, "tokenizer", None)
    return inner if inner is not None else tokenizer_or_processor


def _text_config(model_config: Any) -> Any:
    # Accept a BlipConfig (has text_config) or a BlipTextConfig directly.
    return getattr(model_config, "text_config", None) or model_config


def enc_token_id(tokenizer: Any, model_config: Any) -> int:
    """Id of ``[ENC]``: the tokenizer's own when it knows the token, else ``bos_token_id + 1``."""
    tok = text_tokenizer(tokenizer)
    token_id = tok.convert_tokens_to_ids(ENC_TOKEN)
    if token_id is None or token_id == tok.unk_token_id:
        return int(_text_config(model_config).bos_token_id) + 1
    return int(token_id)


def dec_token_id(model_config: Any) -> int:
    """Id of ``[DEC]``, the caption decoder's start token (``text_config.bos_token_id``)."""
    return int(_text_config(model_config).bos_token_id)


def cross_attention_kv(layers: Any) -> list[tuple[str, Any]]:
    """The image-side ``key`` and ``value`` Linear layers of a BLIP text stack's
    cross-attentions, named ``"<layer>.key"`` / ``"<layer>.value"``.

    ``layers``: ``model.text_encoder.encoder.layer`` (ITM) or
    ``model.text_decoder.bert.encoder.layer`` (captioning). Layers without cross-attention
    are skipped.
    """
    return [(f"{index}.{which}", getattr(layer.crossattention.self, which))
            for index, layer in enumerate(layers)
            if getattr(layer, "crossattention", None) is not None for which in ("key", "value")]
