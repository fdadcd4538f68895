"""UnifiedQA Fusion-in-Decoder answers against the LAVIS reference (tiny random T5)."""

from __future__ import annotations

import pytest
import torch

from engine.answer import answer_from_captions, build_contexts, encode_contexts, generate_answer_ids
from engine.errors import InputError


@pytest.fixture(scope="module")
def qa(shared_fixtures):
    from transformers import AutoTokenizer, T5ForConditionalGeneration

    folder = shared_fixtures / "unifiedqa_fid" / "model"
    model = T5ForConditionalGeneration.from_pretrained(folder).eval()
    reference = torch.load(shared_fixtures / "unifiedqa_fid" / "reference.pt", weights_only=True)
    return model, AutoTokenizer.from_pretrained(folder), reference


def test_contexts_and_tokens_match_reference(qa):
    model, tokenizer, ref = qa
    contexts = build_contexts(ref["question"], ref["captions"])
    assert contexts == ref["contexts"]
    _, mask, tokens = encode_contexts(model, tokenizer, contexts)
    assert torch.equal(tokens["input_ids"], ref["input_ids"])
    assert torch.equal(tokens["attention_mask"], ref["attention_mask"])
    assert mask.shape == (1, ref["input_ids"].numel())
    assert torch.equal(mask[0].cpu(), ref["attention_mask"].reshape(-1))


def test_answer_tokens_identical_to_reference(qa):
    model, tokenizer, ref = qa
    ids = generate_answer_ids(model, tokenizer, ref["question"], ref["captions"])
    assert torch.equal(ids.cpu(), ref["answer_ids"])
    assert answer_from_captions(model, tokenizer, ref["question"], ref["captions"]) == ref["answer"]


def test_separator_is_a_literal_backslash_n():
    (context,) = build_contexts("  What colour IS it? ", ["A Red Car "])
    assert context == "what colour is it? \\n a red car."
    assert "\n" not in context and context[len("what colour is it?"):][:4] == " \\n "


def test_each_context_encoded_alone_then_fused(qa, monkeypatch):
    model, tokenizer, ref = qa
    seen = {}

    def record(name, key):
        def hook(module, args, kwargs):
            seen.setdefault(name, kwargs[key].shape)  # a pre-hook must return None
        return hook

    enc_handle = model.get_encoder().register_forward_pre_hook(record("encoder", "input_ids"),
                                                               with_kwargs=True)
    dec_handle = model.get_decoder().register_forward_pre_hook(
        record("decoder", "encoder_hidden_states"), with_kwargs=True)
    try:
        answer_from_captions(model, tokenizer, ref["question"], ref["captions"], max_length=3)
    finally:
        enc_handle.remove()
        dec_handle.remove()
    n, length = ref["input_ids"].shape
    assert seen["encoder"] == (n, length)
    assert seen["decoder"] == (1, n * length, model.config.d_model)


def test_fusion_uses_every_caption(qa):
    # The fused encoder states are the per-context states laid end to end, in caption order.
    model, tokenizer, ref = qa
    contexts = build_contexts(ref["question"], ref["captions"])
    fused, _, tokens = encode_contexts(model, tokenizer, contexts)
    with torch.no_grad():
        alone = model.get_encoder()(input_ids=tokens["input_ids"][2:3],
                                    attention_mask=tokens["attention_mask"][2:3]).last_hidden_state
    length = tokens["input_ids"].shape[1]
    torch.testing.assert_close(fused.last_hidden_state[0, 2 * length:3 * length], alone[0])


def test_max_length_bounds_the_answer(qa):
    model, tokenizer, ref = qa
    ids = generate_answer_ids(model, tokenizer, ref["question"], ref["captions"], max_length=5)
    assert ids.shape == (1, 5)
    beams = generate_answer_ids(model, tokenizer, ref["question"], ref["captions"], num_beams=2, max_length=5)
    assert beams.shape[0] == 1 and beams.shape[1] <= 5


@pytest.mark.parametrize("question,captions,match", [
    ("what is it?", [], "No captions"),
    ("", ["a dog"], "question is empty"),
    ("   ", ["a dog"], "question is empty"),
])
def test_bad_inputs(qa, question, captions, match):
    model, tokenizer, _ = qa
    with pytest.raises(InputError, match=match):
        answer_from_captions(model, tokenizer, question, captions)


def test_a_single_string_is_not_a_caption_list():
    with pytest.raises(InputError):
        build_contexts("what?", "a dog")
