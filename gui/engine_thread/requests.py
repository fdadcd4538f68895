"""Typed messages between the GUI thread and the engine worker thread.

The GUI sends a :class:`Request` (a frozen dataclass; the client stamps ``request_id``) and gets
back, through Qt signals, :class:`Progress` while it runs, one :class:`Reply` per result it
produces (stage by stage, so the window fills in as results arrive), then exactly one of
:class:`Finished`, :class:`Failed` or :class:`Cancelled`. Arrays travel by reference: the GUI never
mutates an array after sending it, and the worker never mutates one it received.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.annotation.settings import PipelineSettings
from engine.annotation.prompts import PromptState


@dataclass(frozen=True)
class Request:
    request_id: int = field(default=0, kw_only=True)
    #: True for long jobs the Cancel button stops (model loading, asking, answering).
    cancellable = False
    #: Shown in the status bar while the request runs.
    title = "working"
    #: True for work the user did not ask for (encoding a newly shown image): it stops as soon as
    #: a request about another image is sent, and its failures are logged, not shown.
    background = False


@dataclass(frozen=True)
class ImageRef:
    """Which image a request is about: ``key`` identifies the GUI's session (its path)."""

    key: str
    rgb: np.ndarray = field(repr=False, compare=False)
    image_id: str


@dataclass(frozen=True)
class LoadModels(Request):
    """Create the pipeline in the worker thread and load the models it needs."""

    settings: PipelineSettings
    models_dir: str | None = None
    cancellable = True
    title = "loading models"


@dataclass(frozen=True)
class OpenImage(Request):
    """Read an image file (worker thread: decoding a big file must not freeze the window)."""

    key: str
    path: str
    title = "opening image"


@dataclass(frozen=True)
class EncodeImage(Request):
    """Run the image's vision encoders now (EfficientSAM first), before a question or a click."""

    image: ImageRef
    cancellable = True
    title = "encoding image"
    background = True


@dataclass(frozen=True)
class EncodeNext(Request):
    """Read the image after the shown one and run its vision encoders while the engine is idle, so
    that moving to it finds them cached. Its pixels stay in the engine's cache only (no session
    holds them); it gives way to any other request and to a click (see ``EngineWorker.superseded``)."""

    key: str
    path: str
    cancellable = True
    title = "encoding the next image"
    background = True


@dataclass(frozen=True)
class Ask(Request):
    """The whole chain for a question: heat map, automatic points, the objects it proposes
    (``instances``: "one", "several" or "auto", see engine.annotation.chain), fusion, captions,
    answer."""

    image: ImageRef
    question: str
    alpha: float = 0.5
    num_points: int | None = None
    instances: str = "auto"
    cancellable = True
    title = "asking"


@dataclass(frozen=True)
class Segment(Request):
    """Decoder only, on the cached image embedding, for one object (``uid``); ``generation``
    orders the edits of that object."""

    image: ImageRef
    prompts: PromptState
    generation: int
    uid: str = ""
    grid_shape: tuple[int, int] | None = None  # the heat map's grid: each candidate's coverage comes back too
    title = "segmenting"


@dataclass(frozen=True)
class Answer(Request):
    """Captions guided by ``fused_map`` and the answer (the "Re-run answer" button)."""

    image: ImageRef
    question: str
    fused_map: np.ndarray = field(repr=False, compare=False)
    run_key: str = ""  # the question run the new answer belongs to
    cancellable = True
    title = "answering"


@dataclass(frozen=True)
class Notice:
    """Something the user should know about a request that still goes on (a mask that cannot
    be made, a question cut to the tokenizer's length): shown in the message area."""

    text: str
    level: str = "warning"


@dataclass(frozen=True)
class ModelsInfo:
    """What the status bar shows about the engine."""

    device: str
    preset: str
    models: dict[str, str]  # role -> model id or folder
    random_weights: bool


# ------------------------------------------------------------------------------ worker -> GUI
@dataclass(frozen=True)
class Progress:
    request_id: int
    stage: str
    fraction: float  # 0..1, or -1 when unknown


@dataclass(frozen=True)
class Reply:
    """One result of ``request``: a typed stage result (engine.results, engine.annotation.chain.AutoPoints),
    ModelsInfo, LoadedImage."""

    request: Request
    payload: Any

    @property
    def request_id(self) -> int:
        return self.request.request_id


@dataclass(frozen=True)
class Finished:
    request: Request
    seconds: float = 0.0


@dataclass(frozen=True)
class Failed:
    """A request that raised. ``message`` is for the user; ``kind`` the error class name."""

    request: Request
    kind: str
    message: str
    role: str | None = None  # for a missing model: which one
    details: str = ""  # traceback of an unexpected error, for the log


@dataclass(frozen=True)
class Cancelled:
    request: Request
    superseded: bool = False  # a background job that gave way to a request about another image
