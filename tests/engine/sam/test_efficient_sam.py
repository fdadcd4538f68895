"""EfficientSAM: published layout, reference numerics, and strict, safe checkpoint loading."""

from __future__ import annotations

import dataclasses
import json
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from engine.sam.checkpoint import infer_config, load_efficient_sam
from engine.sam.model import EfficientSamConfig, build_efficient_sam
from engine.errors import CheckpointError, InputError, ModelMissingError

TINY = {
    "img_size": 1024, "patch_size": 16, "patch_embed_dim": 32, "depth": 2, "num_heads": 2, "mlp_ratio": 4.0,
    "neck_dims": [32, 32], "decoder_max_num_input_points": 6, "decoder_transformer_depth": 2,
    "decoder_transformer_mlp_dim": 64, "decoder_num_heads": 4, "decoder_upscaling_layer_dims": [16, 8],
    "num_multimask_outputs": 3, "iou_head_depth": 3, "iou_head_hidden_dim": 32,
}


@pytest.fixture(scope="module")
def sam_dir(shared_fixtures: Path) -> Path:
    return shared_fixtures / "efficient_sam"


@pytest.fixture(scope="module")
def tiny_config() -> EfficientSamConfig:
    return EfficientSamConfig(**TINY)


@pytest.fixture(scope="module")
def tiny_state(tiny_config) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return build_efficient_sam(tiny_config).state_dict()


# --- config ---------------------------------------------------------------------------------------

def test_config_fields_are_the_fixture_keys(sam_dir):
    data = json.loads((sam_dir / "tiny_efficient_sam_config.json").read_text())
    config = EfficientSamConfig(**data)
    assert {f.name for f in dataclasses.fields(EfficientSamConfig)} == set(data)
    assert config.to_dict() == data
    assert EfficientSamConfig.from_dict(config.to_dict()) == config
    assert config.variant is None


def test_presets():
    ti, s = EfficientSamConfig.vitt(), EfficientSamConfig.vits()
    assert (ti.patch_embed_dim, ti.num_heads, s.patch_embed_dim, s.num_heads) == (192, 3, 384, 6)
    assert (ti.variant, s.variant) == ("vitt", "vits")
    assert EfficientSamConfig.preset("vits") == s
    with pytest.raises(InputError):
        EfficientSamConfig.preset("vitb")


@pytest.mark.parametrize("change", [
    {"num_heads": 5}, {"patch_size": 15}, {"depth": 0}, {"neck_dims": "256"}, {"iou_head_depth": 1},
    {"mlp_ratio": "4"}, {"depth": 2.5},
])
def test_invalid_config_is_refused(change):
    with pytest.raises(InputError):
        EfficientSamConfig(**{**TINY, **change})


def test_config_from_dict_names_unknown_keys():
    with pytest.raises(InputError, match="unknown keys \\['colour'\\]"):
        EfficientSamConfig.from_dict({**TINY, "colour": 1})


# --- published layout ----------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["vitt", "vits"])
def test_state_dict_matches_published_manifest(sam_dir, variant):
    manifest = json.loads((sam_dir / "efficient_sam_state_dict_manifest.json").read_text())[variant]
    model = build_efficient_sam(EfficientSamConfig.preset(variant), device="meta")
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert shapes == manifest["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == manifest["num_parameters"]


@pytest.mark.parametrize("variant", ["vitt", "vits"])
def test_preset_recognised_from_shapes(variant):
    state = build_efficient_sam(EfficientSamConfig.preset(variant), device="meta").state_dict()
    assert infer_config(state) == EfficientSamConfig.preset(variant)


def test_non_preset_shapes_need_a_config(tiny_state):
    with pytest.raises(CheckpointError, match="pass its config"):
        infer_config(tiny_state)


# --- reference numerics ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_model(sam_dir):
    config = EfficientSamConfig(**json.loads((sam_dir / "tiny_efficient_sam_config.json").read_text()))
    return load_efficient_sam(sam_dir / "tiny_efficient_sam.pt", config=config)


@pytest.fixture(scope="module")
def reference(sam_dir):
    return torch.load(sam_dir / "tiny_efficient_sam_reference.pt", weights_only=True)


def _close(actual: torch.Tensor, expected: torch.Tensor, tol: float = 1e-4) -> None:
    scale = max(float(expected.abs().max()), 1.0)
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol * scale)


def test_matches_published_forward(tiny_model, reference):
    with torch.inference_mode():
        masks, iou = tiny_model(reference["image"], reference["points"], reference["labels"])
        embeddings = tiny_model.get_image_embeddings(reference["image"])
        low_res, iou_low = tiny_model.predict_masks(embeddings, reference["points"], reference["labels"],
                                                    multimask_output=True, input_h=120, input_w=160)
    _close(embeddings, reference["image_embeddings"])
    _close(masks, reference["masks"])
    _close(low_res, reference["low_res_masks"])
    _close(iou, reference["iou_predictions"])
    _close(iou_low, reference["iou_predictions"])
    assert masks.shape == (1, 2, 3, 120, 160)


def test_predict_masks_with_prepared_context_and_output_size(tiny_model, reference):
    emb = reference["image_embeddings"]
    with torch.inference_mode():
        context = tiny_model.prepare_decoder(emb)
        masks, iou = tiny_model.predict_masks(emb, reference["points"], reference["labels"], True, 120, 160,
                                              output_h=120, output_w=160, image_context=context)
    _close(masks, reference["masks"])
    _close(iou, reference["iou_predictions"])


def _plain_decoder(model, embeddings, points, labels, multimask, h, w):
    """The published decoder written out plainly (no re-association, no caching, real transposed
    convolutions), from the same modules' weights: the reference for the fast paths."""
    dec = model.mask_decoder
    tr = dec.transformer
    b, q, p, _ = points.shape
    m = model.decoder_max_num_input_points
    pts = model.get_rescaled_pts(points, h, w)
    pts = F.pad(pts, (0, 0, 0, m - p), value=-1.0)
    lab = F.pad(labels, (0, m - p), value=-1)
    sparse = model.prompt_encoder(pts.reshape(b * q, m, 2), lab.reshape(b * q, m))
    image = embeddings[:, None].expand(-1, q, -1, -1, -1).reshape(b * q, *embeddings.shape[1:])
    pe = model.prompt_encoder.get_dense_pe()
    tokens = torch.cat([torch.cat([dec.iou_token.weight, dec.mask_tokens.weight])[None].expand(b * q, -1, -1),
                        sparse], dim=1)
    keys = image.flatten(2).transpose(1, 2)
    key_pe = pe.flatten(2).transpose(1, 2)
    queries = tokens
    for layer in tr.layers:
        qq = queries if layer.skip_first_layer_pe else queries + tokens
        queries = layer.norm1(qq + layer.self_attn(qq, qq, qq))
        queries = layer.norm2(queries + layer.cross_attn_token_to_image(queries + tokens, keys + key_pe, keys))
        queries = layer.norm3(queries + layer.mlp(queries))
        keys = layer.norm4(keys + layer.cross_attn_image_to_token(keys + key_pe, queries + tokens, queries))
    queries = tr.norm_final_attn(queries + tr.final_attn_token_to_image(queries + tokens, keys + key_pe, keys))
    up = keys.transpose(1, 2).reshape(image.shape)
    for layer in dec.final_output_upscaling_layers:
        up = layer(up)
    wanted = range(1, 4) if multimask else range(0, 1)
    hyper = torch.stack([dec.output_hypernetworks_mlps[i](queries[:, 1 + i]) for i in wanted], dim=1)
    masks = (hyper @ up.flatten(2)).reshape(b, q, len(wanted), *up.shape[-2:])
    iou = dec.iou_prediction_head(queries[:, 0])[:, list(wanted)].reshape(b, q, -1)
    return masks, iou


@pytest.mark.parametrize("multimask", [True, False])
def test_fast_decoder_equals_plain_computation(tiny_config, multimask):
    torch.manual_seed(3)
    model = build_efficient_sam(tiny_config).eval()
    with torch.no_grad():  # give the norms and biases non-trivial values
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    from engine.runtime.accelerate import accelerate

    assert accelerate(model, "efficient_sam").fast_paths == ("mask_decoder",)  # the decoder's fast path
    emb = torch.randn(2, 32, 64, 64)
    points = torch.tensor([[[[10.0, 20.0], [50.0, 60.0], [30.0, 5.0]], [[70.0, 10.0], [20.0, 40.0], [-1, -1]]],
                           [[[5.0, 5.0], [60.0, 30.0], [-1, -1]], [[40.0, 40.0], [10.0, 50.0], [75.0, 55.0]]]])
    labels = torch.tensor([[[1, 0, 1], [1, 1, -1]], [[1, 0, -1], [2, 3, 1]]])
    with torch.no_grad():
        fast, fast_iou = model.predict_masks(emb, points, labels, multimask, 64, 80)
        plain, plain_iou = _plain_decoder(model, emb, points, labels, multimask, 64, 80)
    assert fast.shape == plain.shape == (2, 2, 3 if multimask else 1, 256, 256)
    _close(fast, plain, 1e-5)
    _close(fast_iou, plain_iou, 1e-5)


@pytest.mark.parametrize("n, offset, spread", [(1, 0.0, 1.0), (2, 3.0, 5.0), (1, 100.0, 0.01)])
def test_upscaling_group_norm_is_as_accurate_as_torch_group_norm(n, offset, spread):
    from engine.runtime.sam_decoder_fast import group_norm_one_group as _group_norm_one_group

    torch.manual_seed(n)
    norm = torch.nn.GroupNorm(1, 16)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    x = torch.randn(n, 32 * 32, 16) * spread + offset  # channels-last rows, as the decoder holds them
    x64 = x.double()
    mean = x64.mean(dim=(1, 2), keepdim=True)
    var = x64.var(dim=(1, 2), unbiased=False, keepdim=True)
    exact = (x64 - mean) / torch.sqrt(var + norm.eps) * norm.weight.double() + norm.bias.double()
    with torch.no_grad():
        ours = _group_norm_one_group(x, norm)
        theirs = norm(x.transpose(1, 2).reshape(n, 16, 32, 32)).reshape(n, 16, -1).transpose(1, 2)
    our_error = (ours.double() - exact).abs().max().item()
    torch_error = (theirs.double() - exact).abs().max().item()
    # Well-conditioned: ~1e-6. A mean of 100 with spread 0.01 loses digits in float32 for
    # torch too; there ours must stay within torch's own error.
    assert our_error <= max(1e-5, 2 * torch_error)


def test_position_embedding_cache_follows_weight_changes(tiny_config):
    torch.manual_seed(4)
    model = build_efficient_sam(tiny_config).eval()
    image = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        before = model.get_image_embeddings(image)
    state = model.state_dict()
    state["image_encoder.pos_embed"] = torch.randn_like(state["image_encoder.pos_embed"])
    model.load_state_dict(state)
    fresh = build_efficient_sam(tiny_config).eval()
    fresh.load_state_dict(state)
    with torch.inference_mode():
        after = model.get_image_embeddings(image)
        expected = fresh.get_image_embeddings(image)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, expected)


# --- checkpoints ----------------------------------------------------------------------------------

def test_load_with_embedded_config_and_from_zip(tmp_path, tiny_config, tiny_state):
    plain = tmp_path / "tiny.pt"
    torch.save({"model": tiny_state, "config": tiny_config.to_dict()}, plain)
    model = load_efficient_sam(plain)
    assert model.config == tiny_config
    torch.testing.assert_close(model.state_dict()["mask_decoder.iou_token.weight"],
                               tiny_state["mask_decoder.iou_token.weight"])
    zipped = tmp_path / "efficient_sam_vits.pt.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.write(plain, "weights/efficient_sam_vits.pt")
    assert load_efficient_sam(zipped).config == tiny_config
    assert not model.training and model.pixel_mean.flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])


def test_missing_file_is_model_missing(tmp_path):
    with pytest.raises(ModelMissingError, match="does not exist"):
        load_efficient_sam(tmp_path / "nope.pt")


def _write_bad(kind: str, path: Path, good: Path, tiny_state) -> None:
    if kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "random bytes":
        path.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "not tensors":
        torch.save({"model": {"image_encoder.pos_embed": [1, 2, 3]}}, path)
    elif kind == "not a dict":
        torch.save(torch.zeros(3), path)
    elif kind == "zip without pt":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("readme.txt", "hello")


@pytest.mark.parametrize("kind, message", [
    ("truncated", "incomplete or damaged"),
    ("random bytes", "incomplete or damaged"),
    ("empty", "empty"),
    ("not tensors", "not tensors"),
    ("not a dict", "holds a Tensor"),
    ("zip without pt", "holds no .pt"),
])
def test_bad_files_raise_checkpoint_error(tmp_path, tiny_config, tiny_state, kind, message):
    good = tmp_path / "good.pt"
    torch.save({"model": tiny_state}, good)
    bad = tmp_path / f"bad-{kind.replace(' ', '-')}.pt"
    _write_bad(kind, bad, good, tiny_state)
    with pytest.raises(CheckpointError, match=message) as info:
        load_efficient_sam(bad, config=tiny_config)
    assert bad.name in str(info.value)


class _Sneaky:
    """Unpickling this would create a file: a safe loader must refuse it."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_objects_are_refused_not_run(tmp_path, tiny_config, tiny_state):
    marker = tmp_path / "was-unpickled"
    path = tmp_path / "evil.pt"
    torch.save({"model": dict(tiny_state), "extra": _Sneaky(str(marker))}, path)
    with pytest.raises(CheckpointError, match="Python objects other than tensors"):
        load_efficient_sam(path, config=tiny_config)
    plain_pickle = tmp_path / "plain.pkl"
    plain_pickle.write_bytes(pickle.dumps(_Sneaky(str(marker))))
    with pytest.raises(CheckpointError):
        load_efficient_sam(plain_pickle, config=tiny_config)
    assert not marker.exists()


def test_wrong_shapes_and_keys_are_summarised(tmp_path, tiny_config, tiny_state):
    state = dict(tiny_state)
    state["mask_decoder.iou_token.weight"] = torch.zeros(1, 31)
    del state["image_encoder.neck.0.weight"]
    state["extra.weight"] = torch.zeros(2)
    path = tmp_path / "mismatch.pt"
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointError) as info:
        load_efficient_sam(path, config=tiny_config)
    text = str(info.value)
    assert "mismatch.pt" in text
    assert "1 missing key(s): image_encoder.neck.0.weight" in text
    assert "1 unexpected key(s): extra.weight" in text
    assert "mask_decoder.iou_token.weight is (1, 31), expected (1, 32)" in text


def test_checkpoint_for_another_model_is_refused(tmp_path, tiny_state):
    path = tmp_path / "tiny.pt"
    torch.save({"model": tiny_state}, path)
    with pytest.raises(CheckpointError, match="EfficientSAM-Ti"):
        load_efficient_sam(path, config=EfficientSamConfig.vitt())
    with pytest.raises(CheckpointError, match="not one of the published"):
        load_efficient_sam(path)  # no config, not a preset


def test_nan_weights_are_refused(tmp_path, tiny_config, tiny_state):
    state = dict(tiny_state)
    state["mask_decoder.iou_token.weight"] = torch.full((1, 32), float("nan"))
    path = tmp_path / "nan.pt"
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointError, match="NaN"):
        load_efficient_sam(path, config=tiny_config)


def test_not_an_efficient_sam_state_dict(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, path)
    with pytest.raises(CheckpointError, match="not an EfficientSAM checkpoint"):
        load_efficient_sam(path)
