"""Segmenter: encode once per image (LRU), decode per prompt, fast full-size masks."""

from __future__ import annotations

import copy
import json

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.sam.checkpoint import load_efficient_sam
from engine.sam.model import EfficientSamConfig, build_efficient_sam
from engine.errors import ImageError, InputError, PromptError, ResourceError
from engine.prompts import Box, Point
from engine.results import SegmentationResult
from engine.sam.segmenter import Segmenter, logits_to_masks, select_points

TINY = {
    "img_size": 1024, "patch_size": 16, "patch_embed_dim": 32, "depth": 2, "num_heads": 2, "mlp_ratio": 4.0,
    "neck_dims": [32, 32], "decoder_max_num_input_points": 6, "decoder_transformer_depth": 2,
    "decoder_transformer_mlp_dim": 64, "decoder_num_heads": 4, "decoder_upscaling_layer_dims": [16, 8],
    "num_multimask_outputs": 3, "iou_head_depth": 3, "iou_head_hidden_dim": 32,
}


def _tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    model = build_efficient_sam(EfficientSamConfig(**TINY)).eval()
    with torch.no_grad():  # random but not degenerate: masks with real edges
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.fixture(scope="module")
def base_model():
    return _tiny_model()


@pytest.fixture
def seg(base_model) -> Segmenter:
    return Segmenter(copy.deepcopy(base_model), device="cpu", cache_size=2)


def _image(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    img[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = (220, 30, 30)  # an object
    return img


class _Spy:
    """Wraps ``predict_masks`` to record what the decoder was given."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, embeddings, points, labels, *args, **kwargs):
        self.calls.append((points.clone(), labels.clone()))
        return self.fn(embeddings, points, labels, *args, **kwargs)


# --- images and the cache ---------------------------------------------------------------------

def test_encoder_runs_once_per_image_lru(seg):
    a, b, c = _image(seed=1), _image(seed=2), _image(seed=3)
    assert seg.set_image(a, "a") is True and seg.encode_count == 1
    assert seg.set_image(a, "a") is False and seg.encode_count == 1
    seg.set_image(b, "b")
    assert seg.set_image(a, "a") is False  # back to a: free, and a becomes most recent
    seg.set_image(c, "c")  # cache of 2: evicts b, the least recently used
    assert seg.encode_count == 3
    assert seg.is_cached("a") and seg.is_cached("c") and not seg.is_cached("b")
    seg.set_image(b, "b")
    assert seg.encode_count == 4
    assert seg.image_id == "b" and seg.image_size == (64, 48)


def test_same_id_with_another_size_is_encoded_again(seg):
    seg.set_image(_image(48, 64), "x")
    seg.set_image(_image(40, 30), "x")
    assert seg.encode_count == 2 and seg.image_size == (30, 40)


@pytest.mark.parametrize("h, w", [(37, 53), (1100, 1500)])  # scaled up, scaled down
def test_embeddings_follow_published_preprocessing(seg, h, w):
    img = _image(h, w)
    seg.set_image(img, "odd-size")
    pixels = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        expected = seg.model.get_image_embeddings(pixels)
    torch.testing.assert_close(seg._cache["odd-size"].embeddings, expected)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((8, 8, 3), np.float32), "uint8"),
    (np.zeros((8, 8, 2), np.uint8), "H x W x 3"),
    (np.zeros((0, 8, 3), np.uint8), "empty"),
    ([[0, 0, 0]], "numpy array"),
])
def test_bad_images(seg, bad, message):
    with pytest.raises(ImageError, match=message):
        seg.set_image(bad, "bad")


def test_grey_and_rgba_images_are_accepted(seg):
    seg.set_image(np.full((20, 30), 128, np.uint8), "grey")
    seg.set_image(np.full((20, 30, 4), 128, np.uint8), "rgba")
    assert seg.encode_count == 2


def test_constructor_checks(base_model):
    with pytest.raises(InputError):
        Segmenter(copy.deepcopy(base_model), device="cpu", cache_size=0)
    with pytest.raises(InputError, match="CUDA only"):
        Segmenter(copy.deepcopy(base_model), device="cpu", dtype="float16")
    with pytest.raises(InputError):
        Segmenter(object())  # type: ignore[arg-type]


def test_out_of_memory_becomes_resource_error(seg, monkeypatch):
    def oom(_):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(seg.model, "get_image_embeddings", oom)
    with pytest.raises(ResourceError, match="Out of memory"):
        seg.set_image(_image(), "big")
    assert not seg.is_cached("big") and seg.encode_count == 0


# --- prompts -----------------------------------------------------------------------------------

def test_predict_returns_ranked_full_size_candidates(seg):
    seg.set_image(_image(), "img")
    result = seg.predict([Point(20, 15), Point(50, 40, label=0)])
    assert isinstance(result, SegmentationResult) and len(result.candidates) == 3
    ious = [c.iou for c in result.candidates]
    assert ious == sorted(ious, reverse=True)
    for c in result.candidates:
        assert c.mask.shape == (48, 64) and c.mask.dtype == bool
        assert c.low_res_logits.shape == (256, 256) and c.low_res_logits.dtype == np.float32
    assert result.best is result.candidates[0] and result.dropped_points == 0 and result.note == ""
    single = seg.predict([Point(20, 15)], multimask=False)
    assert len(single.candidates) == 1


def test_labels_are_exactly_one_or_zero_never_scores(seg, monkeypatch):
    seg.set_image(_image(), "img")
    spy = _Spy(seg.model.predict_masks)
    monkeypatch.setattr(seg.model, "predict_masks", spy)
    seg.predict([Point(10, 10, label=1, score=0.37, source="auto"), Point(30, 20, label=0, score=0.9, source="auto")])
    points, labels = spy.calls[-1]
    assert labels.flatten().tolist() == [1, 0]
    assert points.flatten().tolist() == [10, 10, 30, 20]


def test_box_uses_corner_labels_and_is_clipped(seg, monkeypatch):
    seg.set_image(_image(), "img")
    spy = _Spy(seg.model.predict_masks)
    monkeypatch.setattr(seg.model, "predict_masks", spy)
    result = seg.predict([Point(20, 20)], box=Box(-5, 10, 40, 100))
    points, labels = spy.calls[-1]
    assert labels.flatten().tolist() == [1, 2, 3]
    assert points.flatten().tolist() == [20, 20, 0, 10, 40, 48]
    assert result.box == Box(0, 10, 40, 48)
    box_only = seg.predict(box=Box(5, 5, 30, 30))
    assert box_only.points == () and len(box_only.candidates) == 3
    with pytest.raises(PromptError, match="outside"):
        seg.predict(box=Box(100, 100, 120, 120))


def test_more_than_six_prompts_keeps_the_newest(seg):
    seg.set_image(_image(), "img")
    created = [5, 1, 8, 3, 7, 2, 6, 4]
    points = [Point(float(i + 1), float(i + 1), created=t) for i, t in enumerate(created)]
    result = seg.predict(points)
    assert [p.created for p in result.points] == [5, 8, 3, 7, 6, 4]  # given order, oldest two gone
    assert result.dropped_points == 2 and "2 oldest" in result.note
    with_box = seg.predict(points, box=Box(1, 1, 30, 30))
    assert [p.created for p in with_box.points] == [5, 8, 7, 6] and with_box.dropped_points == 4


def test_select_points_ties_keep_order_given():
    points = [Point(float(i), 0.0, created=0.0) for i in range(8)]
    kept, dropped = select_points(points, 6)
    assert [p.x for p in kept] == [2, 3, 4, 5, 6, 7] and dropped == 2
    assert select_points(points[:3], 6) == (tuple(points[:3]), 0)


def test_prompt_errors(seg):
    with pytest.raises(InputError, match="set_image"):
        seg.predict([Point(1, 1)])
    seg.set_image(_image(), "img")
    with pytest.raises(PromptError, match="at least one point"):
        seg.predict([])
    with pytest.raises(PromptError, match="outside the 64x48 image"):
        seg.predict([Point(64.5, 10)])
    with pytest.raises(PromptError, match="outside"):
        seg.predict([Point(-1, 10)])
    with pytest.raises(PromptError, match="Point objects"):
        seg.predict([(3, 4)])  # type: ignore[list-item]
    seg.predict([Point(64, 48)])  # the far corner is inside the image frame


# --- agreement with the published model ------------------------------------------------------------

def test_predict_matches_published_decoder_and_upsampling(shared_fixtures):
    sam_dir = shared_fixtures / "efficient_sam"
    config = EfficientSamConfig(**json.loads((sam_dir / "tiny_efficient_sam_config.json").read_text()))
    model = load_efficient_sam(sam_dir / "tiny_efficient_sam.pt", config=config)
    ref = torch.load(sam_dir / "tiny_efficient_sam_reference.pt", weights_only=True)
    image = (ref["image"][0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()  # 120 x 160
    seg = Segmenter(model, device="cpu")
    seg.set_image(image, "ref")
    result = seg.predict([Point(40, 30, label=1), Point(100, 80, label=0), Point(150, 10, label=1)])

    pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        published, iou = model(pixels, ref["points"][:, :1], ref["labels"][:, :1])
        low_res, _ = model(pixels, ref["points"][:, :1], ref["labels"][:, :1], scale_to_original_image_size=False)
    order = torch.argsort(iou[0, 0], descending=True)
    for cand, k in zip(result.candidates, order.tolist()):
        assert cand.iou == pytest.approx(float(iou[0, 0, k]), abs=1e-5)
        np.testing.assert_allclose(cand.low_res_logits, low_res[0, 0, k].numpy(), atol=1e-5)
        expected = (published[0, 0, k] > 0).numpy()
        union = (cand.mask | expected).sum()
        assert union == 0 or (cand.mask & expected).sum() / union > 0.99


# --- full-size masks -------------------------------------------------------------------------------

def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.mark.parametrize("size", [(750, 1000), (300, 200), (128, 128)])
def test_fast_masks_agree_with_published_bicubic(size):
    rng = np.random.default_rng(7)
    noise = rng.normal(size=(3, 256, 256)).astype(np.float32)
    logits = np.stack([cv2.GaussianBlur(n, (0, 0), 8) for n in noise]) * 300  # smooth blobs
    h, w = size
    fast = logits_to_masks(logits, h, w)
    reference = (F.interpolate(torch.from_numpy(logits)[None], (h, w), mode="bicubic") > 0)[0].numpy()
    assert fast.shape == (3, h, w) and fast.dtype == bool
    for k in range(3):
        assert 0.05 < reference[k].mean() < 0.95  # the test logits have real edges
        assert _iou(fast[k], reference[k]) > 0.999


def test_mask_edges_follow_the_logits_not_blocks():
    """A disc in 64x64 logits scaled 16x: the mask edge must stay on the circle, within about two
    pixels, where nearest-neighbour upsampling leaves 16-pixel steps (errors up to ~11 px)."""
    side, scale, radius, centre = 64, 16, 20.3, (31.7, 33.2)
    yy, xx = np.mgrid[0:side, 0:side] + 0.5
    logits = (radius - np.hypot(xx - centre[0], yy - centre[1])).astype(np.float32)[None]
    out = side * scale

    def edge_error(mask: np.ndarray) -> float:
        cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
        inner = mask & ~cv2.erode(mask.astype(np.uint8), cross).astype(bool)  # edge pixels
        ys, xs = np.nonzero(inner)
        dist = np.hypot((xs + 0.5) / scale - centre[0], (ys + 0.5) / scale - centre[1])
        return float(np.abs(dist - radius).max() * scale)  # in full-size pixels

    fast = logits_to_masks(logits, out, out)[0]
    blocky = cv2.resize((logits[0] > 0).astype(np.uint8), (out, out), interpolation=cv2.INTER_NEAREST) > 0
    assert edge_error(fast) < 2.5  # pixel centres lie up to ~1.5 px inside the true edge
    assert edge_error(blocky) > 6.0  # the measure does see blocks


def test_degenerate_logits():
    masks = logits_to_masks(np.zeros((2, 256, 256), np.float32), 30, 40)
    assert masks.shape == (2, 30, 40) and not masks.any()
    with pytest.raises(InputError):
        logits_to_masks(np.zeros((256, 256), np.float32), 30, 40)


# --- dtypes and devices ----------------------------------------------------------------------------

def test_bfloat16_on_cpu_runs(base_model):
    seg = Segmenter(copy.deepcopy(base_model), device="cpu", dtype="bfloat16")
    seg.set_image(_image(), "img")
    result = seg.predict([Point(20, 15)])
    assert seg._cache["img"].embeddings.dtype == torch.bfloat16
    assert result.best.low_res_logits.dtype == np.float32 and np.isfinite(result.best.low_res_logits).all()


@pytest.mark.gpu
@pytest.mark.parametrize("dtype, tol", [(None, 1e-3), ("float16", 3e-2), ("bfloat16", 1e-1)])
def test_cuda_matches_cpu(base_model, dtype, tol):
    img = _image(96, 128)
    points = [Point(40, 30), Point(100, 70, label=0)]
    cpu = Segmenter(copy.deepcopy(base_model), device="cpu")
    cpu.set_image(img, "img")
    expected = cpu.predict(points)
    gpu = Segmenter(copy.deepcopy(base_model), device="cuda", dtype=dtype)
    assert gpu.device.type == "cuda" and gpu.dtype == (torch.float32 if dtype is None else getattr(torch, dtype))
    gpu.set_image(img, "img")
    got = gpu.predict(points)
    emb_cpu, emb_gpu = cpu._cache["img"].embeddings, gpu._cache["img"].embeddings.float().cpu()
    assert (emb_gpu - emb_cpu).abs().max() <= tol * max(float(emb_cpu.abs().max()), 1.0)
    scale = max(max(np.abs(c.low_res_logits).max() for c in expected.candidates), 1.0)
    # Half precision may swap candidates whose IoUs are nearly equal: match each to its nearest.
    for cand in got.candidates:
        assert cand.mask.shape == (96, 128)
        diffs = [np.abs(cand.low_res_logits - e.low_res_logits).max() for e in expected.candidates]
        nearest = expected.candidates[int(np.argmin(diffs))]
        assert min(diffs) <= tol * scale
        assert abs(cand.iou - nearest.iou) <= tol * max(abs(nearest.iou), 1.0)
    if dtype is None:
        assert [c.iou for c in got.candidates] == pytest.approx([c.iou for c in expected.candidates], abs=1e-4)


def test_decoder_context_follows_the_current_image(base_model):
    a, b = _image(seed=11), _image(seed=12)
    points = [Point(20, 15), Point(50, 40, label=0)]
    seg = Segmenter(copy.deepcopy(base_model), device="cpu")
    seg.set_image(a, "a")
    first_a = seg.predict(points)
    seg.set_image(b, "b")
    on_b = seg.predict(points)
    seg.set_image(a, "a")
    again_a = seg.predict(points)
    fresh = Segmenter(copy.deepcopy(base_model), device="cpu")
    fresh.set_image(b, "b")
    expected_b = fresh.predict(points)
    np.testing.assert_allclose(on_b.best.low_res_logits, expected_b.best.low_res_logits, atol=1e-5)
    np.testing.assert_allclose(again_a.best.low_res_logits, first_a.best.low_res_logits, atol=1e-5)
    assert not np.allclose(first_a.best.low_res_logits, on_b.best.low_res_logits, atol=1e-3)


# --- the CPU fast path (oneDNN, engine.runtime.cpu_linear) --------------------------------------------

def test_cpu_fast_path_gives_the_plain_path_masks(base_model, monkeypatch):
    from engine.runtime import cpu_linear

    if not torch.backends.mkldnn.is_available():  # where oneDNN is present, packing must work
        pytest.skip("this PyTorch build has no oneDNN (torch.backends.mkldnn)")
    monkeypatch.setenv(cpu_linear.ENV_SWITCH, "default")
    plain = Segmenter(copy.deepcopy(base_model), device="cpu")
    assert not any(cpu_linear.is_packed(m) for m in plain.model.modules())
    monkeypatch.setenv(cpu_linear.ENV_SWITCH, "onednn")
    fast = Segmenter(copy.deepcopy(base_model), device="cpu")
    assert any(cpu_linear.is_packed(m) for m in fast.model.image_encoder.modules())
    assert not any(cpu_linear.is_packed(m) for m in fast.model.mask_decoder.modules())
    img = _image(60, 80)
    pts = [Point(30, 25), Point(70, 50, label=0)]
    results = []
    for segmenter, mode in ((plain, "default"), (fast, "onednn")):
        monkeypatch.setenv(cpu_linear.ENV_SWITCH, mode)
        segmenter.set_image(img, "img")
        results.append(segmenter.predict(pts))
    a, b = results
    for ca, cb in zip(a.candidates, b.candidates):
        np.testing.assert_allclose(cb.low_res_logits, ca.low_res_logits, rtol=1e-4, atol=1e-4)
        assert (ca.mask == cb.mask).mean() > 0.999
        assert abs(ca.iou - cb.iou) < 1e-4

    # The decoder's packed upscaling weights follow an in-place change of the model's weights.
    for segmenter in (plain, fast):
        with torch.no_grad():
            segmenter.model.mask_decoder.final_output_upscaling_layers[0][0].weight.mul_(-1.5)
    after = []
    for segmenter, mode in ((plain, "default"), (fast, "onednn")):
        monkeypatch.setenv(cpu_linear.ENV_SWITCH, mode)
        after.append(segmenter.predict(pts).candidates[0].low_res_logits)
    np.testing.assert_allclose(after[1], after[0], rtol=1e-4, atol=1e-4)
    assert not np.allclose(after[0], a.candidates[0].low_res_logits, atol=1e-3)
