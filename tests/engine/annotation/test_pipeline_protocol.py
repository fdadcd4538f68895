"""The pipeline the chain, the batch, the Annotator and the app's engine thread drive is a typed
protocol (engine.annotation.pipeline_protocol.PipelineProtocol), called directly, never probed:
the real Pipeline implements all of it with the protocol's exact signatures, and so does every
test stand-in (same parameter names, kinds and defaults), so a test drives the same calls the
app makes."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from engine.annotation.pipeline import Pipeline
from engine.annotation.pipeline_protocol import PipelineProtocol
from engine.annotation.settings import PipelineSettings
from support.fakes import PipelineStandIn
from support.project_writers import BrightPixels
from reliability.hostile import StandInPipeline as HostileStandIn
from test_annotator import CountingDecoder
from test_batch import StandInPipeline
from test_batch_seed import SeedRecorder
from test_chain_instances import DiskPipeline

MEMBERS = sorted({n for n in vars(PipelineProtocol) if not n.startswith("_")} | set(PipelineProtocol.__annotations__))
METHODS = [n for n in MEMBERS if inspect.isfunction(vars(PipelineProtocol).get(n))]
PROPERTIES = [n for n in MEMBERS if isinstance(vars(PipelineProtocol).get(n), property)]


def _parameters(fn) -> list[tuple[str, object, object]]:
    """(name, kind, default) of each parameter after ``self``."""
    return [(p.name, p.kind, p.default) for p in list(inspect.signature(fn).parameters.values())[1:]]


def test_the_protocol_names_what_its_callers_use():
    assert {"prepare", "is_encoded", "check_models", "question_use", "load", "model_ids", "close", "set_image",
            "heatmap", "auto_points", "segment", "fuse", "captions", "answer", "run"} <= set(METHODS)
    assert set(PROPERTIES) == {"device", "random_weights", "image_id", "image_size"}
    assert "settings" in MEMBERS


def test_the_pipeline_implements_the_protocol_with_its_signatures(tiny_models_dir):
    pipe = Pipeline.from_settings(PipelineSettings(device="cpu"), models_dir=tiny_models_dir)
    assert pipe.image_id is None and pipe.model_ids() and pipe.random_weights  # (no model loaded for these)
    pipe.set_image(np.zeros((30, 40, 3), np.uint8), "black")
    assert isinstance(pipe, PipelineProtocol)  # (on Python 3.11 it reads the properties: with an image)
    for name in METHODS:  # names, kinds, defaults and annotations, as the protocol writes them
        assert inspect.signature(getattr(Pipeline, name)) == inspect.signature(getattr(PipelineProtocol, name)), name
    for name in PROPERTIES:
        ours, theirs = vars(Pipeline)[name], vars(PipelineProtocol)[name]
        assert isinstance(ours, property), name
        assert inspect.signature(ours.fget) == inspect.signature(theirs.fget), name
    assert isinstance(pipe.settings, PipelineSettings)
    assert pipe.image_id == "black" and pipe.image_size == (40, 30) and not pipe.is_encoded("itm")
    pipe.close()


STAND_INS = [PipelineStandIn, StandInPipeline, SeedRecorder, HostileStandIn, BrightPixels, CountingDecoder,
             DiskPipeline]


@pytest.mark.parametrize("cls", STAND_INS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_stand_in_implements_the_whole_protocol(cls):
    pipe = cls(0) if cls is SeedRecorder else cls()
    pipe.set_image(np.zeros((60, 80, 3), np.uint8), "black")
    assert isinstance(pipe, PipelineProtocol)
    assert isinstance(pipe.settings, PipelineSettings)
    for name in METHODS:
        assert _parameters(getattr(cls, name)) == _parameters(getattr(PipelineProtocol, name)), name
    for name in PROPERTIES:
        assert hasattr(cls, name), name


def test_a_pipeline_missing_a_member_is_not_one():
    class NoPrepare(PipelineStandIn):
        prepare = None  # a stand-in without it: the callers no longer probe for it

    class NoSettings(PipelineStandIn):
        def __init__(self) -> None:
            pass

    pipes = [PipelineStandIn(), NoPrepare(), NoSettings()]
    for pipe in pipes:
        pipe.set_image(np.zeros((60, 80, 3), np.uint8), "black")
    assert [isinstance(pipe, PipelineProtocol) for pipe in pipes] == [True, False, False]
