"""Packed oneDNN Linear layers on the CPU (engine.runtime.cpu_linear): same numbers, memory released,
tied weights kept, autograd and other devices still right, and the pipeline unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from support.tolerance import assert_close_to_scale

from engine.runtime import cpu_linear
from engine.runtime.cpu_linear import dense_weight, is_packed, pack_linears, packing_enabled, unpack_linears

# Skipped only where this PyTorch build has no oneDNN at all. Where it has oneDNN, a packing
# self-check that fails (a wrong reorder, a changed private op) must fail tests, not turn
# packing off and leave every test here skipped.
pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(),
                                reason="this PyTorch build has no oneDNN (torch.backends.mkldnn)")


def test_self_check_passes_where_onednn_is_present():
    """Packing is on wherever oneDNN is: the self-check compares a packed product with F.linear."""
    gen = torch.Generator().manual_seed(1)
    weight, bias = torch.randn(37, 19, generator=gen), torch.randn(37, generator=gen)
    x = torch.randn(4, 19, generator=gen)
    try:
        with torch.no_grad():
            diff = (cpu_linear.packed_linear(x, cpu_linear.pack_weight(weight), bias) - F.linear(x, weight, bias))
        why = f"packed product differs from F.linear by up to {diff.abs().max().item():.3g}"
    except Exception as err:  # noqa: BLE001 - the reason is the message
        why = f"packed path raised {type(err).__name__}: {err}"
    assert cpu_linear._self_check(), f"oneDNN is present but the packing self-check fails ({why})"
    assert cpu_linear.onednn_linear_available()


class TiedLM(torch.nn.Module):
    """An embedding whose weight is also the output head's (as BLIP's decoder and T5 tie them)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(50, 16)
        self.body = torch.nn.Sequential(torch.nn.Linear(16, 40), torch.nn.ReLU(), torch.nn.Linear(40, 16, bias=False))
        self.head = torch.nn.Linear(16, 50, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.embed(ids)))


def _model(seed: int = 0) -> TiedLM:
    torch.manual_seed(seed)
    return TiedLM().eval()


def test_packed_layers_give_the_same_numbers_and_release_dense_weights():
    model, reference = _model(), _model()
    ids = torch.randint(0, 50, (3, 7))
    with torch.no_grad():
        expected = reference(ids)
    originals = {name: dense_weight(m).clone() for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert pack_linears(model) == 3
    assert all(is_packed(m) for m in model.modules() if isinstance(m, torch.nn.Linear))
    with torch.no_grad():
        got = model(ids)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    # The untied layers dropped their dense weights: a 4-byte NaN placeholder of the same shape.
    for layer in (model.body[0], model.body[2]):
        assert layer.weight.stride() == (0, 0) and torch.isnan(layer.weight).all()
        assert layer.weight.untyped_storage().nbytes() == 4
        assert layer.weight.shape == dense_weight(layer).shape
    # The head shares the embedding's weight, so that stays dense and still feeds the embedding.
    assert model.head.weight is model.embed.weight and not torch.isnan(model.embed.weight).any()
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear):
            assert torch.equal(dense_weight(m), originals[name])
    assert not any(p.requires_grad for m in model.modules() if isinstance(m, torch.nn.Linear) for p in m.parameters())
    assert pack_linears(model) == 0  # twice is harmless
    # state_dict() still holds the real weights.
    state, ref_state = model.state_dict(), reference.state_dict()
    assert state.keys() == ref_state.keys() and all(torch.equal(state[k], ref_state[k]) for k in state)


def test_autograd_and_other_dtypes_take_the_plain_path():
    model, reference = _model(), _model()
    pack_linears(model)
    for m in (model, reference):
        m.requires_grad_(False)
    x = torch.randn(4, 16, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    model.body(x).sum().backward()
    reference.body(x_ref).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(model.body(x.double()), reference.body.double()(x.double()), rtol=1e-6, atol=1e-8)


def test_unpack_restores_the_layers_exactly():
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pack_linears(model)
    assert unpack_linears(model) == 3
    assert not any(is_packed(m) for m in model.modules())
    assert all("forward" not in m.__dict__ for m in model.modules())
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_three_and_four_dimensional_and_strided_inputs():
    layer = torch.nn.Linear(24, 10)
    weight, bias = layer.weight.detach().clone(), layer.bias.detach().clone()
    assert pack_linears(layer) == 1
    with torch.no_grad():
        for x in (torch.randn(2, 5, 24), torch.randn(2, 3, 4, 24), torch.randn(24, 6).t(), torch.randn(0, 24)):
            torch.testing.assert_close(layer(x), F.linear(x, weight, bias), rtol=1e-5, atol=1e-5)


def test_switch_off_with_the_environment(monkeypatch):
    monkeypatch.setenv(cpu_linear.ENV_SWITCH, "default")
    assert packing_enabled() is False
    monkeypatch.setenv(cpu_linear.ENV_SWITCH, "onednn")
    assert packing_enabled() is True


def _chain(models_dir, monkeypatch, mode: str):
    from engine.annotation.pipeline import Pipeline
    from engine.annotation.settings import PipelineSettings

    monkeypatch.setenv(cpu_linear.ENV_SWITCH, mode)
    pipe = Pipeline.from_settings(PipelineSettings(device="cpu", num_captions=6, max_caption_rounds=3, seed=7),
                                  models_dir=models_dir)
    rgb = np.random.default_rng(3).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    pipe.set_image(rgb, "img")
    return pipe, pipe.run("what is the man holding?")


def test_model_loading_packs_the_inference_parts_and_the_chain_is_unchanged(tiny_models_dir, monkeypatch):
    plain_pipe, plain = _chain(tiny_models_dir, monkeypatch, "default")
    packed_pipe, packed = _chain(tiny_models_dir, monkeypatch, "onednn")
    manager = packed_pipe.manager
    itm, cap, qa, sam = manager.itm().model, manager.caption().model, manager.qa().model, manager.sam().model
    assert all(is_packed(m) for m in itm.vision_model.modules() if isinstance(m, torch.nn.Linear))
    # Grad-CAM differentiates through the ITM text encoder, and EfficientSAM's decoder reads its
    # own weights: neither is packed.
    assert not any(is_packed(m) for m in itm.text_encoder.modules())
    assert not any(is_packed(m) for m in sam.mask_decoder.modules())
    assert any(is_packed(m) for m in sam.image_encoder.modules())
    assert any(is_packed(m) for m in cap.text_decoder.modules()) and any(is_packed(m) for m in qa.modules())
    assert not any(is_packed(m) for m in plain_pipe.manager.caption().model.modules())

    # The tiny model's map is ~4e-8: an absolute 1e-5 could never fail; relative to its scale.
    assert_close_to_scale(packed.heatmap.question_map, plain.heatmap.question_map, rel=1e-4)
    assert packed.captions.captions == plain.captions.captions
    assert packed.answer.answer == plain.answer.answer
    assert [(p.x, p.y) for p in packed.points] == [(p.x, p.y) for p in plain.points]
    assert (packed.mask == plain.mask).mean() > 0.999
    # Caption sampling's patch projections hand the packed forward back afterwards.
    assert all("forward" in m.__dict__ for m in cap.text_decoder.modules() if is_packed(m))


def test_released_weights_in_a_file_mapping_give_their_pages_back(tmp_path):
    """A weight that lives in a mapped file (safetensors, as from_pretrained loads it) drops its
    resident pages once released; anonymous memory is never touched."""
    from engine.runtime.cpu_linear import _drop_file_pages

    values = torch.arange(1 << 20, dtype=torch.float32)
    path = tmp_path / "weights.bin"
    values.numpy().tofile(path)
    mapped = torch.from_file(str(path), shared=False, size=values.numel(), dtype=torch.float32)
    assert torch.equal(mapped, values)  # pages now resident
    dropped = _drop_file_pages([(mapped.data_ptr(), mapped.numel() * 4)])
    assert dropped >= (1 << 22) - 2 * 4096
    assert torch.equal(mapped, values)  # a later read fetches the file's bytes again

    anonymous = values.clone()
    assert _drop_file_pages([(anonymous.data_ptr(), anonymous.numel() * 4)]) == 0
    assert torch.equal(anonymous, values)
