"""PNP-VQA's published defaults, and those of the EfficientSAM-enhanced system QMask was specified
from, pinned as ``../shared/notes/pipeline-facts.md`` gives them: where they are declared, and
where they take effect, i.e. what reaches each stage function (and Hugging Face's ``generate``)
when the chain runs with default settings from Python, from ``qmask ask`` and from ``qmask batch``.

The stage functions are spied on where they are defined (and wherever an engine module imported
them by name), with the tiny random models: a default changed anywhere between the settings
and the call shows up as a wrong argument.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from support.commands import run_qmask
from PIL import Image

# The facts (pipeline-facts.md), one place.
BLOCK_NUM = 7  # Grad-CAM: cross-attention of text-encoder layer 7 (0-based)
ITM_MAX_TOKENS = 35  # question tokens, at most
NUM_PATCHES = 20  # patches each caption cross-attends to
TOP_K, TOP_P = 50, 1.0
MIN_LENGTH, MAX_LENGTH = 10, 20  # caption length, counting the prompt's tokens
REPETITION_PENALTY = 1.0
PROMPT = "a picture of "
NUM_CAPTIONS = 100  # eval configs
NUM_POINTS = 5  # the enhanced system's salient points
ALPHA = 0.5  # enhanced = alpha * heat + (1 - alpha) * mask
ANSWER_MAX_LENGTH, ANSWER_MIN_LENGTH, ANSWER_BEAMS = 20, 0, 1  # FiD: greedy, 0 to 20 tokens

# (module, function) of each stage; the spy records the arguments each call binds, defaults
# included, so a default changed in the function's signature is seen too.
STAGES = (("engine.vqa.gradcam", "compute_gradcam"), ("engine.imaging.points", "auto_points"),
          ("engine.imaging.fusion", "fuse"), ("engine.imaging.fusion", "fuse_coverage"),
          ("engine.vqa.captions", "generate_captions"), ("engine.vqa.answer", "answer_from_captions"))


@dataclass
class StageSpy:
    calls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    generate: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (model class, kwargs)

    def one(self, name: str) -> dict[str, Any]:
        assert self.calls[name], f"{name} was never called"
        return self.calls[name][-1]

    def generate_kwargs(self, class_name: str) -> list[dict[str, Any]]:
        found = [kwargs for cls, kwargs in self.generate if cls == class_name]
        assert found, f"{class_name}.generate was never called"
        return found


@pytest.fixture
def spy(monkeypatch) -> StageSpy:
    from transformers.generation.utils import GenerationMixin

    recorder = StageSpy()
    for module_name, name in STAGES:
        module = importlib.import_module(module_name)
        original = getattr(module, name)
        signature = inspect.signature(original)
        recorder.calls[name] = []

        def wrapper(*args, _original=original, _signature=signature, _name=name, **kwargs):
            bound = _signature.bind(*args, **kwargs)
            bound.apply_defaults()
            recorder.calls[_name].append(dict(bound.arguments))
            return _original(*args, **kwargs)

        for loaded in list(sys.modules.values()):
            if getattr(loaded, "__name__", "").startswith("engine") and getattr(loaded, name, None) is original:
                monkeypatch.setattr(loaded, name, wrapper)

    original_generate = GenerationMixin.generate

    def generate(self, *args, **kwargs):
        recorder.generate.append((type(self).__name__, dict(kwargs)))
        return original_generate(self, *args, **kwargs)

    monkeypatch.setattr(GenerationMixin, "generate", generate)
    return recorder


def _check_chain(spy: StageSpy, models_dir) -> None:
    """What the chain handed each stage, against the facts."""
    gradcam = spy.one("compute_gradcam")
    assert gradcam["block_num"] == BLOCK_NUM

    assert spy.one("auto_points")["num_points"] == NUM_POINTS
    alphas = [c["alpha"] for c in spy.calls["fuse"] + spy.calls["fuse_coverage"]]
    assert alphas and all(a == ALPHA for a in alphas), alphas

    cap = spy.one("generate_captions")
    assert (cap["num_captions"], cap["num_patches"], cap["top_k"], cap["top_p"]) == \
        (NUM_CAPTIONS, NUM_PATCHES, TOP_K, TOP_P)
    assert (cap["min_length"], cap["max_length"], cap["repetition_penalty"], cap["prompt"]) == \
        (MIN_LENGTH, MAX_LENGTH, REPETITION_PENALTY, PROMPT)
    # ... and what reached the caption decoder's generate(): 20 patches per caption, the lengths,
    # the sampler's top-k and top-p, the prompt ("[DEC] a picture of").
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(models_dir / "caption")
    for kwargs in spy.generate_kwargs("BlipTextLMHeadModel"):
        assert kwargs["encoder_hidden_states"].shape[1] == NUM_PATCHES
        assert (kwargs["min_length"], kwargs["max_length"]) == (MIN_LENGTH, MAX_LENGTH)
        assert kwargs["repetition_penalty"] == REPETITION_PENALTY and kwargs["num_beams"] == 1
        (sampler,) = kwargs["logits_processor"]
        assert (sampler.top_k, sampler.top_p) == (TOP_K, TOP_P)
        prompt = tokenizer.decode(kwargs["input_ids"][0], skip_special_tokens=True)
        assert prompt == PROMPT.strip()

    ans = spy.one("answer_from_captions")
    assert (ans["max_length"], ans["num_beams"]) == (ANSWER_MAX_LENGTH, ANSWER_BEAMS)
    assert len(ans["captions"]) == NUM_CAPTIONS
    (qa,) = spy.generate_kwargs("T5ForConditionalGeneration")
    assert (qa["max_length"], qa["min_length"], qa["num_beams"], qa["do_sample"]) == \
        (ANSWER_MAX_LENGTH, ANSWER_MIN_LENGTH, ANSWER_BEAMS, False)


# --- declared ---------------------------------------------------------------------------------

def test_pipeline_settings_defaults_are_the_published_ones():
    from engine.annotation.settings import PipelineSettings

    s = PipelineSettings()
    assert (s.block_num, s.num_patches, s.top_k, s.num_captions) == (BLOCK_NUM, NUM_PATCHES, TOP_K, NUM_CAPTIONS)
    assert (s.num_points, s.alpha, s.max_answer_length) == (NUM_POINTS, ALPHA, ANSWER_MAX_LENGTH)
    assert s.segment is True  # the enhanced map is the default; the plain heat map is the fallback


def test_stage_function_defaults_are_the_published_ones():
    from engine.vqa import answer
    from engine.vqa import captions
    from engine.imaging import fusion
    from engine.vqa import gradcam
    from engine.imaging import points

    def defaults(fn):
        return {k: p.default for k, p in inspect.signature(fn).parameters.items()
                if p.default is not inspect.Parameter.empty}

    assert defaults(gradcam.compute_gradcam)["block_num"] == BLOCK_NUM
    assert gradcam.ITM_MAX_TEXT_TOKENS == ITM_MAX_TOKENS
    cap = defaults(captions.generate_captions)
    assert {k: cap[k] for k in ("num_captions", "num_patches", "top_k", "top_p", "min_length", "max_length",
                                "repetition_penalty", "prompt")} == {
        "num_captions": NUM_CAPTIONS, "num_patches": NUM_PATCHES, "top_k": TOP_K, "top_p": TOP_P,
        "min_length": MIN_LENGTH, "max_length": MAX_LENGTH, "repetition_penalty": REPETITION_PENALTY,
        "prompt": PROMPT}
    assert captions.CAPTION_PROMPT == PROMPT
    assert defaults(captions.TopKSampler)["top_p"] == TOP_P
    for fn in (answer.answer_from_captions, answer.generate_answer_ids):
        assert (defaults(fn)["max_length"], defaults(fn)["num_beams"]) == (ANSWER_MAX_LENGTH, ANSWER_BEAMS)
    assert defaults(points.auto_points)["num_points"] == NUM_POINTS
    assert defaults(points.extract_points)["num_points"] == NUM_POINTS
    assert defaults(fusion.fuse)["alpha"] == ALPHA


# --- in effect --------------------------------------------------------------------------------

def test_the_chain_hands_the_stages_the_published_defaults(tiny_models_dir, spy):
    from engine.annotation.pipeline import Pipeline
    from engine.annotation.settings import PipelineSettings

    pipe = Pipeline.from_settings(PipelineSettings(device="cpu"), models_dir=tiny_models_dir)
    pipe.set_image(np.random.default_rng(3).integers(0, 256, (90, 120, 3), dtype=np.uint8), "img")
    chain = pipe.run("what is the man holding?")
    assert chain.segmentation is not None  # the mask-fused map drove the captions
    _check_chain(spy, tiny_models_dir)


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (72, 100, 3), dtype=np.uint8)).save(folder / "a.png")
    return folder


def test_qmask_ask_defaults_reach_the_stages(tiny_models_dir, image_folder, spy, capsys):
    # Only where the models are and the device: every chain option is left at its default.
    rc = run_qmask("ask", [str(image_folder / "a.png"), "what is on the table?", "--models", str(tiny_models_dir),
                              "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    _check_chain(spy, tiny_models_dir)


def test_qmask_ask_options_default_to_the_published_values():
    from engine.commands import ask

    parser = argparse.ArgumentParser()
    ask.add_arguments(parser)
    settings = ask._settings(parser.parse_args(["a.png", "what?"]))
    assert (settings.num_captions, settings.num_points, settings.alpha, settings.segment) == \
        (NUM_CAPTIONS, NUM_POINTS, ALPHA, True)
    assert (settings.block_num, settings.num_patches, settings.top_k, settings.max_answer_length) == \
        (BLOCK_NUM, NUM_PATCHES, TOP_K, ANSWER_MAX_LENGTH)


def test_qmask_batch_defaults_reach_the_stages(tiny_models_dir, image_folder, tmp_path, spy, capsys):
    rc = run_qmask("batch", [str(image_folder), "-q", "what is on the table?", "-p", str(tmp_path / "p.qmask"),
                                "--models", str(tiny_models_dir), "--device", "cpu", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    _check_chain(spy, tiny_models_dir)
