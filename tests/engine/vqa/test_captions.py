"""Question-guided caption sampling (LAVIS forward_cap semantics) on a tiny random BLIP captioner."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.tolerance import close_to_scale

from engine.vqa.captions import (
    MIN_TOP_UP,
    TopKSampler,
    add_unique_captions,
    call_size,
    encode_image_caption,
    generate_captions,
    projected_patches,
    sample_patch_ids,
    sampling_weights,
    strip_prompt,
)
from engine.errors import InputError

GRID = 6  # the fixture config: 96 px images, 16 px patches


@pytest.fixture(scope="module")
def captioner(shared_fixtures):
    from transformers import AutoTokenizer, BlipConfig, BlipForConditionalGeneration

    folder = shared_fixtures / "blip_itm_gradcam" / "model"
    config = BlipConfig.from_pretrained(folder)
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(config).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    pixels = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    embeds = encode_image_caption(model, pixels)
    return model, tokenizer, embeds


class DecoderSpy:
    """Records what each text-decoder forward and each ``generate`` call received / returned."""

    def __init__(self, model, monkeypatch):
        self.hidden: list[torch.Tensor] = []
        self.prompts: list[torch.Tensor] = []
        self.outputs: list[torch.Tensor] = []
        decoder = model.text_decoder
        self._handle = decoder.register_forward_pre_hook(self._pre, with_kwargs=True)
        original = decoder.generate

        def generate(*args, **kwargs):
            self.prompts.append(kwargs["input_ids"].clone())
            out = original(*args, **kwargs)
            self.outputs.append(out.clone())
            return out

        monkeypatch.setattr(decoder, "generate", generate)

    def _pre(self, module, args, kwargs):
        self.hidden.append(kwargs["encoder_hidden_states"].detach().clone())

    def close(self):
        self._handle.remove()


@pytest.fixture
def spy(captioner, monkeypatch):
    recorder = DecoderSpy(captioner[0], monkeypatch)
    yield recorder
    recorder.close()


def _map_with_cells(cells: list[int]) -> np.ndarray:
    weights = np.zeros(GRID * GRID, np.float32)
    weights[cells] = np.linspace(0.2, 1.0, len(cells))
    return weights.reshape(GRID, GRID)


def test_decoder_sees_only_the_nonzero_patches(captioner, spy):
    model, tokenizer, embeds = captioner
    cells = [0, 1, 2, 3, 5, 7, 8, 10, 11, 13, 14, 17, 19, 20, 22, 25, 27, 30, 33, 35]
    result = generate_captions(model, tokenizer, embeds, _map_with_cells(cells), num_captions=6,
                               batch_size=3, seed=0, max_rounds=1)
    assert result.rounds == 1
    expected = embeds[0, torch.tensor(cells) + 1]  # +1: CLS is not a patch
    assert spy.hidden, "the decoder never ran"
    for hidden in spy.hidden:
        assert hidden.shape[1:] == (20, embeds.shape[-1])
        for row in hidden:
            assert torch.equal(row, expected)


def test_fewer_nonzero_cells_than_patches_uses_them_all(captioner, spy):
    model, tokenizer, embeds = captioner
    result = generate_captions(model, tokenizer, embeds, _map_with_cells([4, 9, 31]), num_captions=2,
                               batch_size=2, seed=0, max_rounds=1)
    assert result.rounds == 1
    for hidden in spy.hidden:
        assert torch.equal(hidden[0], embeds[0, torch.tensor([5, 10, 32])])


def test_prompt_and_lengths_follow_lavis(captioner, spy):
    model, tokenizer, embeds = captioner
    generate_captions(model, tokenizer, embeds, np.ones((GRID, GRID)), num_captions=8, batch_size=8,
                      seed=3, max_rounds=1, min_length=10, max_length=20)
    dec = model.config.text_config.bos_token_id
    prompt = tokenizer("a picture of ")["input_ids"][1:-1]
    assert spy.prompts[0][0].tolist() == [dec, *prompt]
    sep = model.config.text_config.sep_token_id
    for out in spy.outputs:
        assert out.shape[1] <= 20
        for row in out.tolist():
            if sep in row:  # no end before min_length (which counts the prompt)
                assert row.index(sep) >= 9


def test_same_seed_same_captions_other_seed_differs(captioner):
    model, tokenizer, embeds = captioner
    heat = np.random.default_rng(0).random((GRID, GRID))
    state = torch.get_rng_state()
    first = generate_captions(model, tokenizer, embeds, heat, num_captions=5, batch_size=5, seed=7)
    assert torch.equal(torch.get_rng_state(), state), "the global RNG must be restored"
    again = generate_captions(model, tokenizer, embeds, heat, num_captions=5, batch_size=5, seed=7)
    other = generate_captions(model, tokenizer, embeds, heat, num_captions=5, batch_size=5, seed=8)
    assert first.captions == again.captions
    assert first.captions != other.captions
    assert first.complete and len(first.captions) == 5 and not first.cancelled


def test_kept_captions_are_never_substrings_of_earlier_ones(captioner):
    model, tokenizer, embeds = captioner
    result = generate_captions(model, tokenizer, embeds, np.ones((GRID, GRID)), num_captions=12,
                               batch_size=6, seed=1)
    kept = result.captions
    assert len(kept) == 12 and all(kept)
    for i, caption in enumerate(kept):
        assert not any(caption in earlier for earlier in kept[:i])
        assert not caption.startswith("a picture of")


def test_add_unique_captions_substring_direction():
    kept = ["a dog on the grass"]
    added = add_unique_captions(kept, ["a dog", "a dog on the grass", "", "a dog on the grass by a tree",
                                       "a cat", "a bird"], limit=3)
    # "a dog" is inside a kept caption: dropped. A longer caption holding a kept one is kept.
    assert kept == ["a dog on the grass", "a dog on the grass by a tree", "a cat"]
    assert added == 2


def test_strip_prompt():
    assert strip_prompt("a picture of a man riding a horse", "a picture of ") == "a man riding a horse"
    assert strip_prompt("A picture of two dogs", "a picture of ") == "two dogs"
    assert strip_prompt("a picture of", "a picture of ") == ""
    assert strip_prompt(" two dogs ", "a picture of ") == "two dogs"


def test_repeating_model_stops_at_round_cap(captioner):
    model, tokenizer, embeds = captioner
    # Exactly num_patches nonzero cells and top_k 1: every caption is the same.
    cells = list(range(0, 36, 2))[:18]
    progress = []
    result = generate_captions(model, tokenizer, embeds, _map_with_cells(cells), num_captions=4,
                               num_patches=18, top_k=1, batch_size=4, seed=0, max_rounds=3,
                               progress=lambda r, n: progress.append((r, n)))
    assert len(result.captions) == 1
    assert result.rounds == 3 and not result.complete and not result.cancelled
    assert progress == [(0, 1), (1, 1), (2, 1)]


def test_cancel_between_calls_keeps_partial(captioner):
    model, tokenizer, embeds = captioner
    calls = []
    result = generate_captions(model, tokenizer, embeds, np.ones((GRID, GRID)), num_captions=10,
                               batch_size=3, seed=0, progress=lambda r, n: calls.append((r, n)),
                               cancel=lambda: len(calls) >= 2)
    assert result.cancelled and not result.complete
    assert len(calls) == 2 and 1 <= len(result.captions) <= 6
    assert calls[-1][1] == len(result.captions)


def test_cancel_before_start_generates_nothing(captioner, spy):
    model, tokenizer, embeds = captioner
    result = generate_captions(model, tokenizer, embeds, np.ones((GRID, GRID)), num_captions=3,
                               cancel=lambda: True)
    assert result.cancelled and result.captions == () and not spy.outputs


def test_progress_once_per_round_with_whole_round_batches(captioner):
    model, tokenizer, embeds = captioner
    calls = []
    result = generate_captions(model, tokenizer, embeds, np.ones((GRID, GRID)), num_captions=4,
                               batch_size=4, seed=2, progress=lambda r, n: calls.append((r, n)))
    assert [r for r, _ in calls] == list(range(result.rounds))
    assert calls[-1][1] == len(result.captions) == 4


def test_sampling_weights_validation():
    assert torch.equal(sampling_weights(np.zeros((2, 2)), 4), torch.ones(4))
    assert sampling_weights(torch.arange(4.0).reshape(2, 2), 4).tolist() == [0, 1, 2, 3]
    with pytest.raises(InputError, match="negative"):
        sampling_weights(np.array([1.0, -0.1, 0, 0]), 4)
    with pytest.raises(InputError, match="NaN"):
        sampling_weights(np.array([1.0, np.nan, 0, 0]), 4)
    with pytest.raises(InputError, match="9 cells"):
        sampling_weights(np.ones((3, 3)), 4)


def test_patch_draws_follow_the_weights():
    weights = torch.tensor([0.0, 1.0, 3.0, 0.0])
    ids = sample_patch_ids(weights, 4000, 1, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(ids[:, 0], minlength=5)
    assert counts[0] == 0 and counts[1] == 0 and counts[4] == 0  # CLS and zero-weight cells
    assert 2.6 < counts[3] / counts[2] < 3.4
    pairs = sample_patch_ids(weights, 10, 5)
    assert pairs.shape == (10, 2) and (pairs == torch.tensor([2, 3])).all()


def test_bad_settings_are_input_errors(captioner):
    model, tokenizer, embeds = captioner
    heat = np.ones((GRID, GRID))
    with pytest.raises(InputError):
        generate_captions(model, tokenizer, embeds, heat, num_captions=0)
    with pytest.raises(InputError):
        generate_captions(model, tokenizer, embeds, heat, min_length=30, max_length=20)
    with pytest.raises(InputError, match="no room"):
        generate_captions(model, tokenizer, embeds, heat, min_length=0, max_length=4)
    with pytest.raises(InputError):
        generate_captions(model, tokenizer, embeds.expand(2, -1, -1), heat)


@pytest.mark.parametrize("top_k, top_p", [(50, 1.0), (5, 1.0), (50, 0.9), (20, 0.3), (1, 1.0)])
def test_sampler_keeps_the_distribution_of_hugging_face_warpers(top_k, top_p):
    from transformers import TopKLogitsWarper, TopPLogitsWarper

    scores = torch.randn(4, 300, generator=torch.Generator().manual_seed(top_k)) * 3
    scores[0, 7] = float("-inf")  # e.g. [SEP] before min_length
    warped = TopKLogitsWarper(top_k)(None, scores.clone())
    if top_p < 1.0:
        warped = TopPLogitsWarper(top_p)(None, warped)
    expected = torch.softmax(warped, dim=-1)
    probs, ids = TopKSampler(top_k, top_p).candidates(scores)
    ours = torch.zeros_like(scores).scatter_(-1, ids, probs / probs.sum(-1, keepdim=True))
    assert torch.allclose(ours, expected, atol=1e-6)


def test_sampler_draws_in_proportion_and_only_from_the_top_k():
    scores = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05, 1e-3, 1e-3]]))
    sampler = TopKSampler(top_k=3)
    torch.manual_seed(0)
    picks = torch.cat([sampler(None, scores).argmax(-1) for _ in range(4000)])
    counts = torch.bincount(picks, minlength=6).float() / len(picks)
    assert counts[3:].sum() == 0  # outside the top 3: never
    renormalised = torch.tensor([0.5, 0.3, 0.15]) / 0.95
    assert torch.allclose(counts[:3], renormalised, atol=0.03)
    out = sampler(None, scores.repeat(2, 1))
    assert ((out == 0).sum(-1) == 1).all() and torch.isinf(out).sum() == 2 * 5  # one winner per row


def test_projected_patches_change_nothing_but_the_cost(captioner, monkeypatch):
    import contextlib

    import engine.vqa.captions as captions_module

    model, tokenizer, embeds = captioner
    heat = np.random.default_rng(3).random((GRID, GRID))
    served = generate_captions(model, tokenizer, embeds, heat, num_captions=6, batch_size=3, seed=11)
    decoder = model.text_decoder
    linears = [getattr(layer.crossattention.self, w) for layer in decoder.bert.encoder.layer for w in ("key", "value")]
    assert all("forward" not in linear.__dict__ for linear in linears), "the layers must get their forward back"

    # The same seed with every sampled patch projected by the decoder itself: the same captions.
    monkeypatch.setattr(captions_module, "projected_patches",
                        lambda decoder, tokens: contextlib.nullcontext({"ids": None}))
    plain = generate_captions(model, tokenizer, embeds, heat, num_captions=6, batch_size=3, seed=11)
    assert plain.captions == served.captions

    hidden = embeds[0]
    ids = torch.tensor([[1, 4, 9], [2, 3, 30]])
    with torch.no_grad(), projected_patches(decoder, hidden) as state:
        state["ids"] = ids
        rows = [linear(hidden[ids]) for linear in linears]
        assert state["projected"] == len(linears)
        state["ids"] = None
        computed = [linear(hidden[ids]) for linear in linears]
    for a, b in zip(rows, computed):  # ~3e-7 with the tiny random decoder: relative to that
        assert close_to_scale(a, b, rel=1e-5)


def test_call_size_first_call_then_top_ups():
    assert call_size(100, 100, sampled=0, missing=100) == 100  # the first call asks for all
    assert call_size(50, 100, sampled=0, missing=100) == 50
    assert call_size(50, 100, sampled=50, missing=52) == 50  # still filling the first round
    assert call_size(100, 100, sampled=0, missing=3) == MIN_TOP_UP  # a new round topping up a few
    assert call_size(100, 100, sampled=0, missing=30) == 60
    assert call_size(100, 100, sampled=90, missing=30) == 10  # never past the round's num_captions
    assert call_size(100, 5, sampled=0, missing=2) == 5


def test_cancel_during_a_call_stops_it_and_drops_its_unfinished_captions(captioner, spy):
    model, tokenizer, embeds = captioner
    checks = []

    def cancel():  # True from the third check after the first call: inside the second one
        if spy.outputs:
            checks.append(1)
        return len(checks) >= 3

    result = generate_captions(model, tokenizer, embeds, np.ones((GRID, GRID)), num_captions=8, batch_size=4,
                               seed=0, cancel=cancel, min_length=15, max_length=20)
    assert result.cancelled and not result.complete
    assert len(spy.outputs) == 2 and spy.outputs[1].shape[1] < 20  # the second call was cut short
    assert 1 <= len(result.captions) <= 4  # only the first call's captions


def test_step_progress_moves_within_one_call(captioner):
    model, tokenizer, embeds = captioner
    steps: list[float] = []
    result = generate_captions(model, tokenizer, embeds, np.ones((GRID, GRID)), num_captions=4, batch_size=4,
                               seed=5, min_length=20, max_length=20, max_rounds=1, step_progress=steps.append)
    assert result.rounds == 1
    # One call of 4 captions decoding 20 - 4 (prompt) steps: the estimate climbs to 4.
    assert len(steps) == 20 - 4 and steps == sorted(steps)
    assert steps[0] > 0 and steps[-1] == pytest.approx(4.0)
