"""engine.runtime.accelerate: the one place that replaces forwards, the EfficientSAM decoder's fast
path against its plain forward, private torch ops probed with the plain path as fallback, and an
off switch for every process-wide setting."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from support.tolerance import assert_close_to_scale

from engine.runtime import accelerate as acc
from engine.runtime import cpu_linear, versions
from engine.sam.model import EfficientSamConfig, build_efficient_sam

ENGINE = Path(__file__).resolve().parents[3] / "engine"
ONEDNN = torch.backends.mkldnn.is_available()
TINY = {
    "img_size": 1024, "patch_size": 16, "patch_embed_dim": 32, "depth": 2, "num_heads": 2, "mlp_ratio": 4.0,
    "neck_dims": [32, 32], "decoder_max_num_input_points": 6, "decoder_transformer_depth": 2,
    "decoder_transformer_mlp_dim": 64, "decoder_num_heads": 4, "decoder_upscaling_layer_dims": [16, 8],
    "num_multimask_outputs": 3, "iou_head_depth": 3, "iou_head_hidden_dim": 32,
}


@pytest.fixture(autouse=True)
def fresh_probes():
    cpu_linear.reset_probes()
    versions.reset()
    yield
    cpu_linear.reset_probes()
    versions.reset()


# -- architecture: forwards are replaced in one module only -------------------------------------

ASSIGNS_FORWARD = re.compile(r"""\.(forward|prepare)\s*=(?!=)|setattr\([^)]*['"](forward|prepare)['"]|"""
                             r"""__dict__\[['"](forward|prepare)['"]\]\s*=(?!=)""")


def test_only_the_accelerator_assigns_forward():
    offenders = []
    for path in sorted(ENGINE.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if ASSIGNS_FORWARD.search(line.split("#", 1)[0]):
                offenders.append(f"{path.relative_to(ENGINE.parent)}:{number}: {line.strip()}")
    allowed = [o for o in offenders if o.startswith("engine/runtime/accelerate.py:")]
    assert allowed, "the accelerator itself should be found by this search"
    assert offenders == allowed, "forward replaced outside engine/runtime/accelerate.py:\n" + "\n".join(offenders)


def _layer() -> tuple[torch.nn.Linear, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    layer = torch.nn.Linear(24, 10).eval()
    x = torch.randn(3, 24)
    with torch.no_grad():
        return layer, x, F.linear(x, layer.weight, layer.bias).clone()


@pytest.mark.parametrize("pack_first", [True, False])
def test_packing_and_serving_compose_in_either_order(pack_first):
    layer, x, expected = _layer()
    calls = []

    def server(inp, compute):  # a cache in front of the layer's own computation
        calls.append(inp.shape)
        return compute(inp) * 2

    if pack_first:
        cpu_linear.pack_linears(layer)
        remove = acc.serve(layer, server)
    else:
        remove = acc.serve(layer, server)
        cpu_linear.pack_linears(layer)
    assert layer.__dict__["forward"].__func__ is acc._layer_forward  # one forward, the accelerator's
    with torch.no_grad():
        assert_close_to_scale(layer(x), 2 * expected, rel=1e-5)
        remove()
        assert_close_to_scale(layer(x), expected, rel=1e-5)
    assert len(calls) == 1
    assert ("forward" in layer.__dict__) == cpu_linear.is_packed(layer)  # kept only while packed
    cpu_linear.unpack_linears(layer)
    assert "forward" not in layer.__dict__


def test_a_foreign_forward_is_refused():
    from engine.errors import InputError

    layer, _, _ = _layer()
    layer.__dict__["forward"] = lambda x: x
    with pytest.raises(InputError, match="only engine.runtime.accelerate"):
        acc.serve(layer, lambda x, compute: compute(x))


# -- the EfficientSAM decoder: plain forward == accelerated forward -----------------------------

def _tiny_sam(seed: int = 3):
    torch.manual_seed(seed)
    model = build_efficient_sam(EfficientSamConfig(**TINY)).eval()
    with torch.no_grad():  # non-trivial norms and biases
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def _decode(model, context: bool, multimask: bool):
    torch.manual_seed(5)
    emb = torch.randn(2, model.mask_decoder.transformer_dim, 64, 64)
    points = torch.tensor([[[[10.0, 20.0], [50.0, 60.0]], [[70.0, 10.0], [-1, -1]]],
                           [[[5.0, 5.0], [60.0, 30.0]], [[40.0, 40.0], [10.0, 50.0]]]])
    labels = torch.tensor([[[1, 0], [1, -1]], [[1, 1], [2, 3]]])
    with torch.no_grad():
        ctx = model.prepare_decoder(emb) if context else None
        return model.predict_masks(emb, points, labels, multimask, 64, 80, image_context=ctx)


@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("context", [True, False])
def test_decoder_plain_forward_equals_the_accelerated_one(multimask, context):
    model = _tiny_sam()
    plain_masks, plain_iou = _decode(model, context, multimask)
    done = acc.accelerate(model, "efficient_sam", "cpu", torch.float32)
    assert done.fast_paths == ("mask_decoder",)
    assert "forward" in model.mask_decoder.__dict__  # the instance's, given by the accelerator
    fast_masks, fast_iou = _decode(model, context, multimask)
    assert fast_masks.shape == plain_masks.shape
    assert_close_to_scale(fast_masks, plain_masks, rel=1e-4)
    assert_close_to_scale(fast_iou, plain_iou, rel=1e-4)
    acc.remove_decoder_fast_path(model.mask_decoder)
    again, _ = _decode(model, context, multimask)
    assert_close_to_scale(again, plain_masks, rel=1e-5)


# -- private ops: probed, and the plain path where they are missing or wrong --------------------

def _garbage(real):
    def op(*args, **kwargs):
        return torch.zeros_like(real(*args, **kwargs)) + 123.0
    return op


def _raising(*_args, **_kwargs):
    raise RuntimeError("no such op in this build")


@pytest.mark.skipif(not ONEDNN, reason="this PyTorch build has no oneDNN")
@pytest.mark.parametrize("op_name, replacement", [
    ("_linear_pointwise", "raise"), ("_linear_pointwise", "garbage"),
    ("_reorder_linear_weight", "raise"), ("_reorder_linear_weight", "garbage")])
def test_a_missing_or_wrong_private_op_falls_back_to_the_plain_path(monkeypatch, caplog, op_name, replacement):
    model = _tiny_sam()
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected = model.get_image_embeddings(image)
    plain_masks, plain_iou = _decode(model, True, True)
    real = getattr(torch.ops.mkldnn, op_name)
    monkeypatch.setattr(torch.ops.mkldnn, op_name, _raising if replacement == "raise" else _garbage(real))
    with caplog.at_level(logging.WARNING, logger="qmask.accelerate"):
        done = acc.accelerate(model, "efficient_sam", "cpu", torch.float32)
    assert done.packed_layers == 0 and not cpu_linear.packing_enabled()
    assert "plain PyTorch path runs instead" in caplog.text and cpu_linear.probe_failures()
    with torch.no_grad():
        assert_close_to_scale(model.get_image_embeddings(image), expected, rel=1e-4)
    masks, iou = _decode(model, True, True)
    assert_close_to_scale(masks, plain_masks, rel=1e-4)
    assert_close_to_scale(iou, plain_iou, rel=1e-4)


@pytest.mark.skipif(not ONEDNN, reason="this PyTorch build has no oneDNN")
@pytest.mark.parametrize("form", ["gelu", "dense"])
def test_one_wrong_argument_form_turns_off_that_use_only(monkeypatch, caplog, form):
    """The fused-GELU product and the product on an unpacked operand are probed on their own."""
    model = _tiny_sam()
    plain_masks, _ = _decode(model, True, True)
    real = torch.ops.mkldnn._linear_pointwise

    def op(x, w, b, attr, scalars, algorithm):
        out = real(x, w, b, attr, scalars, algorithm)
        wrong = attr == "gelu" if form == "gelu" else not w.is_mkldnn
        return out + 1.0 if wrong else out

    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", op)
    with caplog.at_level(logging.WARNING, logger="qmask.accelerate"):
        acc.accelerate(model, "efficient_sam", "cpu", torch.float32)
        masks, _ = _decode(model, True, True)
    assert cpu_linear.packing_enabled()  # the packed Linear itself still passes its probe
    assert cpu_linear.fused_gelu_available() is (form != "gelu")
    assert cpu_linear.dense_nt_available() is (form != "dense")
    assert_close_to_scale(masks, plain_masks, rel=1e-4)
    assert "plain PyTorch path runs instead" in caplog.text


def test_tensor_version_guard_falls_back_to_no_cache(monkeypatch, caplog):
    def broken(self):
        raise AttributeError("_version is gone")

    monkeypatch.setattr(torch.Tensor, "_version", property(broken), raising=False)
    with caplog.at_level(logging.WARNING, logger="qmask.accelerate"):
        assert versions.tensor_version(torch.zeros(2)) is None
    assert "Tensor._version is not usable" in caplog.text
    model = _tiny_sam()
    acc.accelerate(model, "efficient_sam", "cpu", torch.float32)
    first, _ = _decode(model, True, True)
    with torch.no_grad():  # weights change in place: nothing stale may be served
        model.mask_decoder.final_output_upscaling_layers[0][0].weight.mul_(-1)
        model.prompt_encoder.pe_layer.positional_encoding_gaussian_matrix.mul_(2)
    second, _ = _decode(model, True, True)
    acc.remove_decoder_fast_path(model.mask_decoder)
    plain, _ = _decode(model, True, True)
    assert_close_to_scale(second, plain, rel=1e-4)
    assert not torch.allclose(first, second)


# -- off switches, each in a fresh interpreter ----------------------------------------------------

SWITCHES = textwrap.dedent("""
    import json, os
    from engine.runtime.cpu_tuning import configure_openmp_wait
    configure_openmp_wait()
    openmp = {k: os.environ.get(k) for k in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    from engine.runtime.cpu_tuning import keep_freed_memory
    from engine.runtime.cpu_linear import packing_enabled
    from engine.runtime.accelerate import decoder_fast_path_enabled
    print(json.dumps({"openmp": any(openmp.values()), "allocator": keep_freed_memory(),
                      "packing": packing_enabled(), "decoder": decoder_fast_path_enabled()}))
""")


def _settings(**env: str) -> dict:
    import os

    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("QMASK_") and k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", SWITCHES], capture_output=True, text=True, check=True,
                         env={**clean, **env}, cwd=ENGINE.parent).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="GOMP_SPINCOUNT and mallopt are Linux settings")
def test_each_process_wide_setting_has_an_off_switch():
    on = _settings()
    assert on == {"openmp": True, "allocator": True, "packing": ONEDNN, "decoder": True}
    assert _settings(QMASK_OPENMP_WAIT="default") == {**on, "openmp": False}
    assert _settings(QMASK_CPU_ALLOCATOR="default") == {**on, "allocator": False}
    assert _settings(QMASK_CPU_LINEAR="default") == {**on, "packing": False}
    assert _settings(QMASK_SAM_DECODER="plain") == {**on, "decoder": False}
    assert _settings(QMASK_ACCELERATE="off") == {"openmp": False, "allocator": False, "packing": False,
                                                 "decoder": False}
