"""UnifiedQA Fusion-in-Decoder answers against the LAVIS reference (tiny random T5)."""

from __future__ import annotations

import pytest
import torch

from engine.vqa.answer import answer_from_captions, build_contexts, encode_contexts, generate_answer_ids
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
    # Only real tokens are fused (LAVIS keeps the padding, masked): every position counts.
    assert mask.shape == (1, int(ref["attention_mask"].sum())) and bool(mask.all())


def test_answer_tokens_identical_to_reference(qa):
    model, tokenizer, ref = qa
    ids = generate_answer_ids(model, tokenizer, ref["question"], ref["captions"])
    assert torch.equal(ids.cpu(), ref["answer_ids"])
    assert answer_from_captions(model, tokenizer, ref["question"], ref["captions"]) == ref["answer"]


def test_separator_is_a_literal_backslash_n():
    (context,) = build_contexts("  What colour IS it? ", ["A Red Car "])
    assert context == "what colour is it? \\n a red car."
    assert "\n" not in context and context[len("what colour is it?"):][:4] == " \\n "


def test_contexts_encoded_in_length_chunks_then_fused(qa, monkeypatch):
    import engine.vqa.answer as answer_module

    model, tokenizer, ref = qa
    monkeypatch.setattr(answer_module, "CONTEXTS_PER_CHUNK", 2)
    seen = {"encoder": []}

    def record(name, key):
        def hook(module, args, kwargs):
            if name == "encoder":
                seen[name].append((tuple(kwargs[key].shape), kwargs["attention_mask"].clone()))
            else:
                seen.setdefault(name, kwargs[key].shape)  # a pre-hook must return None
        return hook

    enc_handle = model.get_encoder().register_forward_pre_hook(record("encoder", "input_ids"),
                                                               with_kwargs=True)
    dec_handle = model.get_decoder().register_forward_pre_hook(
        record("decoder", "encoder_hidden_states"), with_kwargs=True)
    try:
        ids = answer_module.generate_answer_ids(model, tokenizer, ref["question"], ref["captions"])
    finally:
        enc_handle.remove()
        dec_handle.remove()
    assert torch.equal(ids.cpu(), ref["answer_ids"])  # chunking changes nothing in the answer
    lengths = ref["attention_mask"].sum(dim=1)
    # 5 contexts in chunks of 2, shortest first, each padded only to its own longest.
    assert [shape[0] for shape, _ in seen["encoder"]] == [2, 2, 1]
    widths = [shape[1] for shape, _ in seen["encoder"]]
    assert widths == sorted(widths) and widths[-1] == int(lengths.max())
    assert all(bool(mask[:, -1].any()) for _, mask in seen["encoder"]), "a chunk was padded past its longest"
    assert seen["decoder"] == (1, int(lengths.sum()), model.config.d_model)


def test_fusion_uses_every_caption(qa):
    # The fused encoder states are each context's real tokens laid end to end, in caption order.
    model, tokenizer, ref = qa
    contexts = build_contexts(ref["question"], ref["captions"])
    fused, _, tokens = encode_contexts(model, tokenizer, contexts)
    lengths = tokens["attention_mask"].sum(dim=1).tolist()
    for i in range(len(contexts)):
        with torch.no_grad():
            alone = model.get_encoder()(input_ids=tokens["input_ids"][i:i + 1, :lengths[i]]).last_hidden_state
        start = sum(lengths[:i])
        torch.testing.assert_close(fused.last_hidden_state[0, start:start + lengths[i]], alone[0],
                                   rtol=1e-5, atol=1e-5)


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


def test_question_use_measures_the_context_head_the_answer_builds(qa):
    """The question's UnifiedQA tokens are counted on exactly the text each context starts with."""
    from engine.vqa.question import normalise_question
    from engine.vqa.question_use import question_use

    _, tokenizer, _ = qa
    seen: list[str] = []

    class RecordingTokenizer:
        model_max_length = 512  # UnifiedQA's (the tiny fixture sets none)

        def __call__(self, text: str):
            seen.append(text)
            return tokenizer(text)

    question, captions = "  What colour  IS the car? ", ["A Red Car ", "a bus"]
    use = question_use(tokenizer, question, RecordingTokenizer())
    (head,) = seen
    contexts = build_contexts(normalise_question(question), captions)
    assert contexts == [head + "a red car.", head + "a bus."]
    assert use.answer_tokens == len(tokenizer(head)["input_ids"]) > len(tokenizer(question.lower())["input_ids"])
