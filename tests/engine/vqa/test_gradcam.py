"""BLIP Grad-CAM against the LAVIS reference vectors (tiny random BLIP ITM model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.tolerance import assert_close_to_scale

from engine.vqa.blip_text import enc_token_id
from engine.vqa.question import blip_question
from engine.errors import ImageError, InputError
from engine.vqa.gradcam import (
    compute_gradcam,
    encode_image_itm,
    itm_probability,
    preprocess_image,
    tokenize_questions,
)


@pytest.fixture(scope="module")
def itm(shared_fixtures):
    from transformers import AutoTokenizer, BlipForImageTextRetrieval, BlipProcessor

    folder = shared_fixtures / "blip_itm_gradcam" / "model"
    model = BlipForImageTextRetrieval.from_pretrained(folder).eval()
    reference = torch.load(shared_fixtures / "blip_itm_gradcam" / "reference.pt", weights_only=True)
    return model, AutoTokenizer.from_pretrained(folder), BlipProcessor.from_pretrained(folder), reference


def _assert_close_to_reference(actual: np.ndarray, expected: torch.Tensor) -> None:
    # Random weights give tiny values (maps of ~2e-7): tolerance relative to the reference's scale.
    assert_close_to_scale(actual, expected, rel=1e-4)


def test_matches_lavis_reference(itm):
    model, tokenizer, _, ref = itm
    result = compute_gradcam(model, tokenizer, ref["pixel_values"], ref["questions"], block_num=ref["block_num"])
    np.testing.assert_array_equal(result.input_ids, ref["input_ids"].numpy())
    np.testing.assert_array_equal(result.attention_mask, ref["attention_mask"].numpy())
    assert_close_to_scale(result.itm_logits, ref["itm_logits"], rel=1e-4)
    assert result.token_maps.shape == tuple(ref["token_gradcams"].shape)
    assert result.question_maps.shape == (2, 6, 6) and result.question_maps.dtype == np.float32
    _assert_close_to_reference(result.token_maps, ref["token_gradcams"])
    _assert_close_to_reference(result.question_maps, ref["gradcam"])


def test_processor_as_tokenizer_gives_same_ids(itm):
    model, _, processor, ref = itm
    ids, mask = tokenize_questions(processor, model.config, ref["questions"])
    assert torch.equal(ids, ref["input_ids"]) and torch.equal(mask, ref["attention_mask"])


def test_itm_logits_equal_hugging_face_forward_with_enc_token(itm):
    # Our text-encoder call is the one BlipForImageTextRetrieval(use_itm_head=True) makes.
    model, tokenizer, _, ref = itm
    result = compute_gradcam(model, tokenizer, ref["pixel_values"], ref["questions"], block_num=1)
    with torch.no_grad():
        hf = model(input_ids=torch.from_numpy(result.input_ids), pixel_values=ref["pixel_values"],
                   attention_mask=torch.from_numpy(result.attention_mask), use_itm_head=True).itm_score
    assert_close_to_scale(result.itm_logits, hf, rel=1e-5)


def test_no_parameter_gradients_even_when_disabled(itm):
    model, tokenizer, _, ref = itm
    compute_gradcam(model, tokenizer, ref["pixel_values"], ref["questions"], block_num=2)
    assert all(p.grad is None for p in model.parameters())
    flags = [p.requires_grad for p in model.parameters()]
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        frozen = compute_gradcam(model, tokenizer, ref["pixel_values"], ref["questions"], block_num=2)
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
    _assert_close_to_reference(frozen.question_maps, ref["gradcam"])
    assert all(p.grad is None for p in model.parameters())


def test_cached_image_embeds_skip_vision_model(itm):
    model, tokenizer, _, ref = itm
    calls = []
    handle = model.vision_model.register_forward_hook(lambda *args: calls.append(1))
    try:
        embeds = encode_image_itm(model, ref["pixel_values"])
        assert len(calls) == 1 and not embeds.requires_grad
        fresh = compute_gradcam(model, tokenizer, ref["pixel_values"], ref["questions"], block_num=2)
        assert len(calls) == 2
        cached = compute_gradcam(model, tokenizer, None, ref["questions"], block_num=2, image_embeds=embeds)
        assert len(calls) == 2
    finally:
        handle.remove()
    np.testing.assert_array_equal(cached.token_maps, fresh.token_maps)
    np.testing.assert_array_equal(cached.question_maps, fresh.question_maps)


def test_works_inside_inference_mode(itm):
    model, tokenizer, _, ref = itm
    with torch.inference_mode():
        embeds = encode_image_itm(model, ref["pixel_values"])
        result = compute_gradcam(model, tokenizer, None, ref["questions"], block_num=2, image_embeds=embeds)
    _assert_close_to_reference(result.question_maps, ref["gradcam"])
    with torch.no_grad():
        result = compute_gradcam(model, tokenizer, ref["pixel_values"], ref["questions"], block_num=2)
    _assert_close_to_reference(result.question_maps, ref["gradcam"])


def test_one_image_shared_by_several_questions(itm):
    model, tokenizer, _, ref = itm
    one = ref["pixel_values"][:1]
    shared = compute_gradcam(model, tokenizer, one, ref["questions"], block_num=2)
    twice = compute_gradcam(model, tokenizer, one.expand(2, -1, -1, -1), ref["questions"], block_num=2)
    assert_close_to_scale(shared.question_maps, twice.question_maps, rel=1e-5)


def test_question_map_is_mean_of_question_token_maps(itm):
    model, tokenizer, _, ref = itm
    # The reference layer: at layer 3 the tiny model's maps are all zero, and a mean of zeros checks nothing.
    result = compute_gradcam(model, tokenizer, ref["pixel_values"], ref["questions"], block_num=ref["block_num"])
    for b in range(2):
        tokens, maps = result.question_token_maps(b)
        assert "[ENC]" not in tokens and "[SEP]" not in tokens and len(tokens) == len(maps)
        assert_close_to_scale(result.question_maps[b], maps.mean(axis=0), rel=1e-5)
        padding = result.attention_mask[b] == 0
        assert not result.token_maps[b][padding].any()
    assert result.tokens[1] == ("[ENC]", "color", "of", "the", "dog", "[SEP]")
    assert (result.question_maps >= 0).all()


def test_itm_probability_is_softmax_class_one(itm):
    model, tokenizer, _, ref = itm
    result = compute_gradcam(model, tokenizer, ref["pixel_values"], ref["questions"], block_num=2)
    expected = torch.softmax(ref["itm_logits"], dim=1)[:, 1].numpy()
    np.testing.assert_allclose(itm_probability(result.itm_logits), expected, rtol=1e-4)
    np.testing.assert_allclose(result.itm_probabilities(), expected, rtol=1e-4)
    assert itm_probability(torch.tensor([[0.0, 0.0]]))[0] == pytest.approx(0.5)
    with pytest.raises(InputError):
        itm_probability(np.zeros(3))


@pytest.mark.parametrize("question", ["", "   ", "??", " ? "])
def test_empty_question_is_an_input_error(itm, question):
    model, tokenizer, _, ref = itm
    with pytest.raises(InputError, match="empty"):
        compute_gradcam(model, tokenizer, ref["pixel_values"][:1], [question], block_num=2)


def test_bad_layer_and_batch_mismatch(itm):
    model, tokenizer, _, ref = itm
    with pytest.raises(InputError, match="layer 4"):
        compute_gradcam(model, tokenizer, ref["pixel_values"], ref["questions"], block_num=4)
    with pytest.raises(InputError, match="3 images for 2 questions"):
        pixels = ref["pixel_values"][:1].expand(3, -1, -1, -1)
        compute_gradcam(model, tokenizer, pixels, ref["questions"], block_num=2)
    with pytest.raises(InputError):
        compute_gradcam(model, tokenizer, None, ref["questions"], block_num=2)


def test_blip_question_strips_question_marks_from_both_ends():
    assert blip_question("?what is it??") == "what is it"
    assert blip_question("  what? is it ?  ") == "what? is it"


def test_enc_token_falls_back_to_bos_plus_one():
    class NoEncTokenizer:  # a plain bert-base-uncased tokenizer maps [ENC] to [UNK]
        unk_token_id = 100

        def convert_tokens_to_ids(self, token):
            return self.unk_token_id

    class TextConfig:
        bos_token_id = 30522

    class Config:
        text_config = TextConfig()

    assert enc_token_id(NoEncTokenizer(), Config()) == 30523
    assert enc_token_id(NoEncTokenizer(), TextConfig()) == 30523


def test_enc_token_of_fixture_tokenizer(itm):
    model, tokenizer, _, _ = itm
    assert enc_token_id(tokenizer, model.config) == 43 == model.config.text_config.bos_token_id + 1


def test_preprocess_image_processor_and_pil_paths_agree(itm):
    _, _, processor, _ = itm
    rng = np.random.default_rng(0)
    # A smooth image: both bicubic resamplers then agree closely.
    ys, xs = np.mgrid[0:60, 0:140]
    image = np.stack([xs * 1.8, ys * 4.0, (xs + ys) * 1.2], axis=-1).clip(0, 255).astype(np.uint8)
    via_processor = preprocess_image(image, processor)
    via_pil = preprocess_image(image, 96)
    assert via_processor.shape == via_pil.shape == (1, 3, 96, 96)
    assert via_pil.dtype == torch.float32
    assert (via_processor - via_pil).abs().max() < 0.05
    # Normalisation: a mid-grey image maps to (0.5 - mean) / std.
    grey = preprocess_image(np.full((10, 20, 3), 128, np.uint8), 32)
    expected = (128 / 255 - 0.48145466) / 0.26862954
    assert grey[0, 0].mean().item() == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ImageError):
        preprocess_image(rng.random((10, 10, 3)), 96)
    with pytest.raises(ImageError):
        preprocess_image(np.zeros((10, 10), np.uint8), 96)
