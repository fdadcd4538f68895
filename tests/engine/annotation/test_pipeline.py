"""The Pipeline end to end on tiny random models, through the product's loading code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.errors import CancelledError, ImageError, InputError, ModelMissingError
from engine.annotation.pipeline import Pipeline
from engine.annotation.settings import CPU_CAPTION_BATCH, PipelineSettings, caption_batch_size_for
from engine.prompts import Point
from engine.results import ChainResult


@pytest.fixture(scope="module")
def pipe(tiny_models_dir):
    settings = PipelineSettings(device="cpu", num_captions=6, max_caption_rounds=3)
    return Pipeline.from_settings(settings, models_dir=tiny_models_dir)


def _image(seed: int = 0, h: int = 90, w: int = 120) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_lazy_construction_and_facts(tiny_models_dir):
    p = Pipeline.from_settings(PipelineSettings(device="cpu"), models_dir=tiny_models_dir)
    assert not any(p.manager.is_loaded(r) for r in ("itm", "caption", "qa", "efficient_sam"))
    assert p.random_weights is True and p.device == "cpu"
    assert set(p.model_ids()) == {"itm", "caption", "qa", "efficient_sam"}
    p.check_models()


def test_full_chain(pipe):
    pipe.set_image(_image(), "img-0")
    stages = []
    chain = pipe.run("What is the man holding?", progress=lambda s, f: stages.append((s, f)))
    assert isinstance(chain, ChainResult)
    assert chain.image_size == (120, 90) and chain.image_id == "img-0"
    g = chain.heatmap.question_map
    assert g.shape == (6, 6) and g.dtype == np.float32 and (g >= 0).all()
    assert chain.heatmap.tokens == ("what", "is", "the", "man", "holding")
    assert chain.heatmap.token_maps.shape == (5, 6, 6)
    assert 0.0 <= chain.heatmap.itm_probability <= 1.0
    assert 1 <= len(chain.points) <= 5 and all(p.source == "auto" and p.label == 1 for p in chain.points)
    assert all(0 <= p.x <= 120 and 0 <= p.y <= 90 for p in chain.points)
    assert chain.segmentation is not None and chain.mask.shape == (90, 120) and chain.mask.dtype == bool
    ious = [c.iou for c in chain.segmentation.candidates]
    assert ious == sorted(ious, reverse=True)
    f = chain.fusion.fused_map
    assert f.shape == (6, 6) and f.min() >= 0 and f.max() <= 1 and chain.fusion.alpha == 0.5
    assert 1 <= len(chain.captions.captions) <= 6
    assert isinstance(chain.answer.answer, str)
    assert chain.random_weights is True and chain.models == pipe.model_ids()
    for key in ("heatmap", "points", "segment", "fuse", "captions", "answer", "total"):
        assert chain.timings[key] >= 0
    assert {s for s, _ in stages} >= {"heatmap", "segment", "captions", "answer"}
    captions = [f for s, f in stages if s == "captions"]
    assert len(captions) > 2 and captions == sorted(captions)  # moves within a generate() call, never back


def test_new_question_on_cached_image_reuses_encoders(pipe):
    pipe.set_image(_image(1), "img-1")
    pipe.run("what color is the car?")
    counts = dict(pipe.encode_count)
    heat = pipe.heatmap("how many people are there?")
    pipe.segment(pipe.auto_points(heat))
    pipe.captions(heat.question_map, num_captions=2)
    assert pipe.encode_count == counts
    # Back to an earlier image: still cached (LRU holds 8), no encoder runs.
    pipe.set_image(_image(0), "img-0")
    pipe.run("is there a dog?")
    assert pipe.encode_count == counts
    # A new image runs each encoder exactly once.
    pipe.set_image(_image(2), "img-2")
    pipe.run("is there a dog?")
    assert pipe.encode_count == {k: v + 1 for k, v in counts.items()}


def test_image_cache_is_lru(tiny_models_dir):
    p = Pipeline.from_settings(PipelineSettings(device="cpu", image_cache_size=2), models_dir=tiny_models_dir)
    for i in range(3):
        p.set_image(_image(i), f"i{i}")
        p.heatmap("a question")
    assert p.encode_count["itm"] == 3
    p.set_image(_image(2), "i2")
    p.heatmap("another")
    assert p.encode_count["itm"] == 3
    p.set_image(_image(0), "i0")  # evicted
    p.heatmap("another")
    assert p.encode_count["itm"] == 4


def test_stages_rerun_independently(pipe):
    pipe.set_image(_image(3), "img-3")
    heat = pipe.heatmap("where is the cat")
    pts = pipe.auto_points(heat)
    seg1 = pipe.segment(pts)
    # A user click reruns only the decoder.
    before = dict(pipe.encode_count)
    seg2 = pipe.segment(pts + (Point(10.0, 10.0, label=0),))
    assert pipe.encode_count == before
    assert len(seg2.points) == len(pts) + 1
    a = pipe.fuse(heat.question_map, seg1.best.mask, alpha=1.0)
    b = pipe.fuse(heat.question_map, seg1.best.mask, alpha=0.0)
    assert not np.allclose(a.fused_map, b.fused_map) or seg1.best.mask.all() or not seg1.best.mask.any()
    # alpha 1 is the normalised heat map alone
    h = heat.question_map
    np.testing.assert_allclose(a.fused_map, (h - h.min()) / (h.max() - h.min()), atol=1e-6)


def test_captions_are_reproducible_with_a_seed(pipe):
    pipe.set_image(_image(4), "img-4")
    m = np.ones((6, 6), np.float32)
    c1 = pipe.captions(m, num_captions=3, seed=7)
    c2 = pipe.captions(m, num_captions=3, seed=7)
    assert c1.captions == c2.captions


def test_no_segment_and_fallback(pipe):
    pipe.set_image(_image(5), "img-5")
    chain = pipe.run("what is this", segment=False)
    assert chain.segmentation is None and chain.mask is None
    h = chain.heatmap.question_map
    np.testing.assert_allclose(chain.fusion.fused_map, (h - h.min()) / (h.max() - h.min()), atol=1e-6)
    # No salient point (empty point list): fall back to the heat map, say why.
    chain = pipe.run("what is this", points=())
    assert chain.segmentation is None
    assert any("plain heat map" in n for n in pipe.last_notes)


def test_user_points_are_used(pipe):
    pipe.set_image(_image(6), "img-6")
    pts = (Point(30.0, 40.0), Point(100.0, 20.0, label=0))
    chain = pipe.run("is it red", points=pts)
    assert chain.points == pts
    assert chain.segmentation.points == pts


def test_bad_input(pipe, tiny_models_dir):
    pipe.set_image(_image(), "img-0")
    for q in ("", "   ", "??"):
        with pytest.raises(InputError, match="empty"):
            pipe.heatmap(q)
        with pytest.raises(InputError):
            pipe.run(q)
    with pytest.raises(ImageError):
        pipe.set_image(np.zeros((10, 10), np.uint8), "grey")
    with pytest.raises(ImageError):
        pipe.set_image(np.zeros((10, 10, 3), np.float32), "float")
    with pytest.raises(InputError):
        pipe.fuse(np.ones((6, 6)), None, alpha=1.5)
    with pytest.raises(InputError):
        PipelineSettings(alpha=-0.1).check()
    fresh = Pipeline.from_settings(PipelineSettings(device="cpu"), models_dir=tiny_models_dir)
    with pytest.raises(InputError, match="set_image"):
        fresh.heatmap("a question")


def test_cancel(pipe):
    pipe.set_image(_image(7), "img-7")
    with pytest.raises(CancelledError):
        pipe.run("anything", cancel=lambda: True)
    caps = pipe.captions(np.ones((6, 6), np.float32), cancel=lambda: True)
    assert caps.cancelled and caps.captions == ()


def test_missing_model_is_reported_up_front(tmp_path, tiny_models_dir):
    import shutil

    md = tmp_path / "m"
    for role in ("itm", "caption", "efficient_sam"):
        shutil.copytree(tiny_models_dir / role, md / role)
    p = Pipeline.from_settings(PipelineSettings(device="cpu"), models_dir=md, hf_cache_dir=tmp_path / "hf")
    with pytest.raises(ModelMissingError, match="qmask models download base"):
        p.check_models()


def test_word_maps_merge_pieces():
    from engine.results import HeatmapResult

    maps = np.arange(4 * 2 * 2, dtype=np.float32).reshape(4, 2, 2)
    heat = HeatmapResult(question="x", question_map=maps.sum(0), token_maps=maps,
                         tokens=("what", "is", "xylo", "##phone"), itm_probability=0.5)
    words = heat.word_maps()
    assert [w for w, _ in words] == ["what", "is", "xylophone"]
    np.testing.assert_allclose(words[2][1], (maps[2] + maps[3]) / 2)


def test_preset_switch_releases_qa(pipe):
    pipe.set_image(_image(8), "img-8")
    pipe.answer("what", ["a cat on a mat"])
    assert pipe.manager.is_loaded("qa")
    pipe.set_preset("large")  # tiny random qa/ stands in for every preset
    assert not pipe.manager.is_loaded("qa")
    pipe.answer("what", ["a cat on a mat"])
    pipe.set_preset("base")


@pytest.mark.gpu
def test_chain_on_cuda_half_precision(tiny_models_dir):
    p = Pipeline.from_settings(PipelineSettings(device="cuda", num_captions=4, max_caption_rounds=3),
                               models_dir=tiny_models_dir)
    p.set_image(_image(9), "gpu-img")
    chain = p.run("what is the man holding?")
    assert p.device.startswith("cuda")
    assert p.manager.itm().model.dtype == torch.float16
    assert chain.segmentation is not None and chain.mask.shape == (90, 120)
    assert np.isfinite(chain.heatmap.question_map).all() and len(chain.captions.captions) >= 1
    counts = dict(p.encode_count)
    p.heatmap("another question")
    assert p.encode_count == counts


def test_cross_attention_cache_is_exact(tiny_models_dir):
    import contextlib

    p = Pipeline.from_settings(PipelineSettings(device="cpu"), models_dir=tiny_models_dir)
    p.set_image(_image(11), "kv")
    first = p.heatmap("what is the man holding?")
    assert p._kv.hits == 0
    second = p.heatmap("what is the man holding?")
    assert p._kv.hits == 24  # 12 layers x (key, value), all served from the cache
    active = p._kv.active
    p._kv.active = lambda key: contextlib.nullcontext()  # force the uncached path
    plain = p.heatmap("what is the man holding?")
    p._kv.active = active
    for a in (second, plain):
        np.testing.assert_array_equal(a.question_map, first.question_map)
        np.testing.assert_array_equal(a.token_maps, first.token_maps)
        assert a.itm_probability == first.itm_probability
    # Another image never sees this image's keys and values.
    p.set_image(_image(12), "kv2")
    other = p.heatmap("what is the man holding?")
    assert p._kv.hits == 24 and not np.array_equal(other.question_map, first.question_map)


def test_broken_sam_checkpoint_fails_the_chain_that_asked_for_a_mask(tmp_path, tiny_models_dir):
    import shutil

    from engine.errors import CheckpointError

    md = tmp_path / "m"
    shutil.copytree(tiny_models_dir, md)
    (md / "efficient_sam" / "efficient_sam_vitt.pt").write_bytes(b"not a checkpoint")
    p = Pipeline.from_settings(PipelineSettings(device="cpu", num_captions=2), models_dir=md)
    p.set_image(_image(13), "broken-sam")
    with pytest.raises(CheckpointError, match=r"^A mask was asked for but cannot be made\. .*efficient_sam_vitt"
                                              r"\.pt is not a readable EfficientSAM checkpoint.*--no-segment"):
        p.run("what is it?")
    # without segmentation the same models answer from the heat map
    chain = p.run("what is it?", segment=False)
    assert chain.segmentation is None and chain.answer.answer is not None
    # the app loads the other models and is told why there will be no masks
    q = Pipeline.from_settings(PipelineSettings(device="cpu"), models_dir=md)
    notes = q.load(optional=("efficient_sam",))
    assert q.manager.is_loaded("qa") and len(notes) == 1 and "efficient_sam_vitt.pt" in notes[0]


def test_load_brings_every_needed_role_with_progress(tiny_models_dir):
    p = Pipeline.from_settings(PipelineSettings(device="cpu"), models_dir=tiny_models_dir)
    calls: list[tuple[str, float]] = []
    p.load(progress=lambda stage, f: calls.append((stage, f)))
    assert all(p.manager.is_loaded(r) for r in ("itm", "caption", "qa", "efficient_sam"))
    assert [s for s, _ in calls] == ["loading heat-map model", "loading segmentation model",
                                     "loading caption model", "loading answer model", "models loaded"]
    assert [f for _, f in calls] == [0.0, 0.25, 0.5, 0.75, 1.0]
    # Segmentation off: EfficientSAM is not needed, so not loaded.
    q = Pipeline.from_settings(PipelineSettings(device="cpu", segment=False), models_dir=tiny_models_dir)
    q.load()
    assert q.manager.is_loaded("qa") and not q.manager.is_loaded("efficient_sam")


def test_load_cancels_between_roles(tiny_models_dir):
    p = Pipeline.from_settings(PipelineSettings(device="cpu"), models_dir=tiny_models_dir)
    calls: list[str] = []
    with pytest.raises(CancelledError, match="loading the models"):
        # cancel() turns true once the first role has started loading
        p.load(progress=lambda stage, f: calls.append(stage), cancel=lambda: len(calls) >= 1)
    assert calls == ["loading heat-map model"]
    assert p.manager.is_loaded("itm")
    assert not any(p.manager.is_loaded(r) for r in ("efficient_sam", "caption", "qa"))
    with pytest.raises(CancelledError):
        p.load(cancel=lambda: True)


def test_caption_batch_size_choice():
    # Auto: everything in one generate() call on CUDA, the measured CPU default elsewhere.
    assert caption_batch_size_for("cuda", 100) == 100
    assert caption_batch_size_for("cuda:1", 37) == 37
    assert caption_batch_size_for("cpu", 100) == CPU_CAPTION_BATCH == 100
    assert caption_batch_size_for("mps", 100) == CPU_CAPTION_BATCH
    # An explicit size always wins.
    assert caption_batch_size_for("cuda", 100, requested=25) == 25
    assert caption_batch_size_for("cpu", 100, requested=7) == 7
    assert PipelineSettings().caption_batch_size is None and PipelineSettings().check() is not None
    with pytest.raises(InputError, match="caption_batch_size"):
        PipelineSettings(caption_batch_size=0).check()


def test_pipeline_uses_the_auto_caption_batch(tiny_models_dir, monkeypatch):
    import engine.vqa.captions as captions_module

    p = Pipeline.from_settings(PipelineSettings(device="cpu", num_captions=3, max_caption_rounds=2),
                               models_dir=tiny_models_dir)
    assert p.caption_batch_size() == CPU_CAPTION_BATCH
    seen: list[int] = []
    real = captions_module.generate_captions

    def recording(*args, **kwargs):
        seen.append(kwargs["batch_size"])
        return real(*args, **kwargs)

    monkeypatch.setattr(captions_module, "generate_captions", recording)
    p.set_image(_image(14), "batch")
    p.captions(np.ones((6, 6), np.float32))
    assert seen == [CPU_CAPTION_BATCH]
    # The same pipeline on a CUDA device (not moved there: only the choice is checked) asks for all at once.
    monkeypatch.setattr(p.manager, "device", torch.device("cuda"))
    assert p.caption_batch_size() == 3 and p.caption_batch_size(100) == 100
    p.settings.caption_batch_size = 2
    assert p.caption_batch_size() == 2


def test_prepare_encodes_once_sam_first_and_later_stages_reuse_it(tiny_models_dir):
    p = Pipeline.from_settings(PipelineSettings(device="cpu", num_captions=2), models_dir=tiny_models_dir)
    p.set_image(_image(20), "prep-20")
    stages = []
    res = p.prepare(progress=lambda s, f: stages.append((s, f)))
    assert res.image_id == "prep-20" and res.notes == ()
    assert res.encoded == ("efficient_sam", "itm", "caption")  # clicks are served first
    assert p.encode_count == {"itm": 1, "caption": 1, "efficient_sam": 1}
    assert [f for _, f in stages] == sorted(f for _, f in stages) and stages[-1] == ("image encoded", 1.0)
    assert "segmentation model" in stages[0][0]
    # Cached: again is a no-op, and the whole chain runs no encoder.
    assert p.prepare().encoded == ()
    p.run("what is on the table?")
    assert p.encode_count == {"itm": 1, "caption": 1, "efficient_sam": 1}
    # Some roles only, in the fixed order whatever the order asked.
    p.set_image(_image(21), "prep-21")
    assert p.prepare(roles=("caption", "itm")).encoded == ("itm", "caption")
    assert p.encode_count == {"itm": 2, "caption": 2, "efficient_sam": 1}
    with pytest.raises(InputError, match="Unknown encoder 'qa'"):
        p.prepare(roles=("qa",))


def test_prepare_without_segmentation_skips_sam(tiny_models_dir):
    p = Pipeline.from_settings(PipelineSettings(device="cpu", segment=False), models_dir=tiny_models_dir)
    p.set_image(_image(22), "prep-22")
    assert p.prepare().encoded == ("itm", "caption")
    assert not p.manager.is_loaded("efficient_sam")


def test_prepare_cancels_inside_an_encoder_and_keeps_what_finished(tiny_models_dir):
    p = Pipeline.from_settings(PipelineSettings(device="cpu"), models_dir=tiny_models_dir)
    p.set_image(_image(23), "prep-23")
    p.prepare(roles=("efficient_sam",))
    layers = p.manager.itm().model.vision_model.encoder.layers
    assert len(layers) >= 2
    first_done, last_done = [], []
    hooks = [layers[0].register_forward_hook(lambda m, a, o: first_done.append(1)),
             layers[-1].register_forward_hook(lambda m, a, o: last_done.append(1))]
    try:
        # Cancel comes while the ITM encoder runs (after its first block): it stops there.
        with pytest.raises(CancelledError, match="heat-map model"):
            p.prepare(cancel=lambda: bool(first_done))
    finally:
        for h in hooks:
            h.remove()
    assert first_done == [1] and last_done == []
    assert p.encode_count == {"itm": 0, "caption": 0, "efficient_sam": 1}
    # Nothing half-done was kept: the next call encodes ITM and caption in full, SAM stays cached.
    assert p.prepare().encoded == ("itm", "caption")
    # The hooks are gone: an ordinary stage with a cancel that says yes is not stopped by them.
    assert all(not layer._forward_pre_hooks for layer in layers)


def test_prepare_with_a_broken_sam_checkpoint_still_encodes_the_rest(tmp_path, tiny_models_dir):
    import shutil

    md = tmp_path / "m"
    shutil.copytree(tiny_models_dir, md)
    (md / "efficient_sam" / "efficient_sam_vitt.pt").write_bytes(b"not a checkpoint")
    p = Pipeline.from_settings(PipelineSettings(device="cpu"), models_dir=md)
    p.set_image(_image(24), "prep-24")
    res = p.prepare()
    assert res.encoded == ("itm", "caption")
    assert len(res.notes) == 1 and "efficient_sam_vitt.pt" in res.notes[0]


def test_prepare_needs_an_image(tiny_models_dir):
    p = Pipeline.from_settings(PipelineSettings(device="cpu"), models_dir=tiny_models_dir)
    with pytest.raises(InputError, match="No image"):
        p.prepare()


def test_answer_stops_between_t5_blocks(tiny_models_dir):
    p = Pipeline.from_settings(PipelineSettings(device="cpu"), models_dir=tiny_models_dir)
    p.set_image(_image(25), "ans-25")
    qa = p.manager.qa().model
    blocks = [*qa.encoder.block, *qa.decoder.block]
    done = []
    hook = qa.encoder.block[0].register_forward_hook(lambda m, a, o: done.append(1))
    try:
        with pytest.raises(CancelledError, match="writing the answer"):
            p.answer("what is it?", ["a red cup", "a table"], cancel=lambda: bool(done))
    finally:
        hook.remove()
    assert done == [1]  # it stopped right after the first block of the first context chunk
    assert all(not b._forward_pre_hooks for b in blocks)
    assert p.answer("what is it?", ["a red cup", "a table"], cancel=lambda: False).answer is not None


def test_is_encoded_follows_the_current_image(tiny_models_dir):
    p = Pipeline.from_settings(PipelineSettings(device="cpu"), models_dir=tiny_models_dir)
    p.set_image(_image(26), "enc-26")
    assert not any(p.is_encoded(r) for r in ("itm", "caption", "efficient_sam"))
    p.prepare(roles=("efficient_sam", "caption"))
    assert p.is_encoded("efficient_sam") and p.is_encoded("caption") and not p.is_encoded("itm")
    p.set_image(_image(27), "enc-27")
    assert not p.is_encoded("efficient_sam")
    with pytest.raises(InputError):
        p.is_encoded("qa")
