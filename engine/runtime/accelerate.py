"""Acceleration in one place: what runs faster than the plain model code, and the switches.

Model code (``engine.sam``, ``engine.vqa``) keeps plain forwards, as the published models
read. This module is the only one that replaces a ``forward`` (``tests/engine/runtime/test_accelerate.py``
checks it), so nothing depends on the order in which speed-ups were applied:

- :func:`accelerate` ``(model, role, device, dtype)``, called once a model is loaded where it
  will run, decides what each role gets (:data:`PACKED_PARTS`):

  ========================  ======================================================  ==================
  role                      packed oneDNN Linear layers (fp32 on the CPU)           fast path
  ========================  ======================================================  ==================
  ``itm``                   the vision model (Grad-CAM differentiates the text      -
                            encoder, which stays plain)
  ``caption``               the vision model and the text decoder                   -
  ``qa``                    all of UnifiedQA                                        -
  ``efficient_sam``         the image encoder (the decoder reads its own weights)   the mask decoder
  ========================  ======================================================  ==================

  The EfficientSAM decoder's fast path (``engine.runtime.sam_decoder_fast``: image-only work
  kept per image, cross-attention re-associated, upscaling as packed GEMMs with fused GELU,
  oneDNN score products) is given to the decoder instance here, on every device.
- Layer forwards: a Linear that is packed or served (below) gets one forward,
  :func:`own_forward`, that first asks its servers, in order, then computes (packed or plain).
  :func:`serve` adds a server; it is how the per-image caches below work.
- Per-image caches of layer outputs that depend on the image alone (exact, not switched):
  :class:`CrossAttentionKVCache` (ITM cross-attention keys and values, per image) and
  :func:`projected_patches` (caption decoder's key/value projections of all patches, served
  for each sampled subset).

Private torch ops are checked before use: ``engine.runtime.cpu_linear`` probes
``torch.ops.mkldnn._reorder_linear_weight`` / ``_linear_pointwise`` (each argument form used)
and ``engine.runtime.versions`` probes ``Tensor._version``, once per process; where a probe
fails the plain path runs and a warning on the ``qmask.accelerate`` logger says why.

Off switches (environment variables):

- ``QMASK_CPU_LINEAR=default``: no oneDNN packing or products (PyTorch's own kernels);
- ``QMASK_CPU_ALLOCATOR=default``: glibc's allocator thresholds left alone
  (``engine.runtime.cpu_tuning.keep_freed_memory``);
- ``QMASK_OPENMP_WAIT=default``: OpenMP's waiting left alone
  (``engine.runtime.cpu_tuning.configure_openmp_wait``);
- ``QMASK_SAM_DECODER=plain``: the EfficientSAM decoder as published (no fast path);
- ``QMASK_ACCELERATE=off``: all of the above at once.
"""

from __future__ import annotations

import contextlib
import types
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch

from ..errors import InputError
from ..vqa.blip_text import cross_attention_kv
from .cpu_linear import linear_forward, pack_linears, packing_enabled
from .cpu_tuning import ALL_SWITCH, switched_off

DECODER_SWITCH = "QMASK_SAM_DECODER"  # "plain": EfficientSAM's decoder as published
ROLES = ("itm", "caption", "qa", "efficient_sam")
# Role -> submodules whose Linear layers are packed (names for ``get_submodule``; "" = all).
PACKED_PARTS: dict[str, tuple[str, ...]] = {
    "itm": ("vision_model",), "caption": ("vision_model", "text_decoder"), "qa": ("",),
    "efficient_sam": ("image_encoder",)}

_SERVERS = "_qmask_servers"  # instance attribute: list of servers of a layer
_OWNED = "_qmask_accelerated"  # marks a forward or prepare given by this module
Server = Callable[[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]], torch.Tensor]


@dataclass(frozen=True)
class Accelerated:
    """What :func:`accelerate` did to a model."""

    role: str
    packed_layers: int = 0
    fast_paths: tuple[str, ...] = ()


def accelerate(model: Any, role: str, device: Any = None, dtype: Any = None) -> Accelerated:
    """Make ``model`` (of ``role``) faster where it runs, computing the same (see the module notes).

    ``device`` / ``dtype``: where and how the model will run (default: those of its first
    parameter). Packing needs fp32 on the CPU; the decoder fast path applies everywhere.
    Calling it again is harmless.
    """
    if role not in PACKED_PARTS:
        raise InputError(f"Unknown model role {role!r}; expected one of {', '.join(ROLES)}.")
    first = next(iter(model.parameters()), None)
    device = torch.device(device if device is not None else (first.device if first is not None else "cpu"))
    dtype = dtype if dtype is not None else (first.dtype if first is not None else torch.float32)
    packed = 0
    if device.type == "cpu" and dtype == torch.float32 and packing_enabled():
        packed = sum(pack_linears(model.get_submodule(name), root=model) for name in PACKED_PARTS[role])
    fast: tuple[str, ...] = ()
    if role == "efficient_sam" and install_decoder_fast_path(model.mask_decoder):
        fast = ("mask_decoder",)
    return Accelerated(role, packed, fast)


def decoder_fast_path_enabled() -> bool:
    return not switched_off(DECODER_SWITCH)


def install_decoder_fast_path(decoder: torch.nn.Module) -> bool:
    """Give an EfficientSAM ``MaskDecoder`` the fast ``forward`` and ``prepare`` (unless
    switched off); True when it has them."""
    if not decoder_fast_path_enabled():
        return False
    if getattr(decoder.__dict__.get("forward"), _OWNED, False):
        return True
    from . import sam_decoder_fast as fast

    cache: dict[int, Any] = {}  # the packed upscaling matrices of this decoder

    def forward(*args: Any, **kwargs: Any) -> Any:
        return fast.forward(decoder, cache, *args, **kwargs)

    def prepare(image_embeddings: torch.Tensor, image_pe: torch.Tensor) -> Any:
        return fast.prepare(decoder, image_embeddings, image_pe)

    setattr(forward, _OWNED, True)
    setattr(prepare, _OWNED, True)
    decoder.forward = forward
    decoder.prepare = prepare
    return True


def remove_decoder_fast_path(decoder: torch.nn.Module) -> None:
    """The decoder's own (published) ``forward`` and ``prepare`` again."""
    for name in ("forward", "prepare"):
        if getattr(decoder.__dict__.get(name), _OWNED, False):
            del decoder.__dict__[name]


# -- layer forwards ---------------------------------------------------------------------------

def _layer_forward(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    def compute(inp: torch.Tensor) -> torch.Tensor:
        return linear_forward(self, inp)

    for server in reversed(self.__dict__.get(_SERVERS, ())):
        compute = _bind(server, compute)
    return compute(x)


def _bind(server: Server, compute: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda inp: server(inp, compute)


def own_forward(layer: torch.nn.Linear) -> None:
    """Give ``layer`` the accelerator's forward (servers, then packed or plain); idempotent."""
    current = layer.__dict__.get("forward")
    if current is not None and getattr(current, "__func__", None) is _layer_forward:
        return
    if current is not None:
        raise InputError(f"{type(layer).__name__} already has a forward of its own; only "
                         "engine.runtime.accelerate replaces forwards.")
    layer.forward = types.MethodType(_layer_forward, layer)


def release_forward(layer: torch.nn.Linear) -> None:
    """Give ``layer`` its class's forward back once nothing needs the accelerator's (not
    packed, no server)."""
    from .cpu_linear import is_packed

    if not is_packed(layer) and not layer.__dict__.get(_SERVERS):
        layer.__dict__.pop(_SERVERS, None)
        current = layer.__dict__.get("forward")
        if current is not None and getattr(current, "__func__", None) is _layer_forward:
            del layer.__dict__["forward"]


def serve(layer: torch.nn.Linear, server: Server) -> Callable[[], None]:
    """Let ``server(x, compute)`` answer for ``layer`` (it may call ``compute(x)``, the
    layer's own computation, packed or plain); returns the function that removes it."""
    layer.__dict__.setdefault(_SERVERS, []).append(server)
    own_forward(layer)

    def remove() -> None:
        servers = layer.__dict__.get(_SERVERS, [])
        if server in servers:
            servers.remove(server)
        release_forward(layer)
    return remove


# -- per-image caches of layer outputs --------------------------------------------------------

class CrossAttentionKVCache:
    """The image-side keys and values of BLIP's text cross-attention, kept per image.

    They depend on the image alone, yet they are most of a new question's Grad-CAM cost
    (12 layers x 2 projections of 577 x 1024 -> 768, against a question of ~10 tokens). The
    ``key``/``value`` Linear layers of each cross-attention are served (:func:`serve`) the stored
    output while ``active(image_id)`` is on; otherwise they compute as usual (model classes and
    state_dict untouched). A stored projection is a detached leaf that requires grad, so the
    attention probabilities stay in the autograd graph and Grad-CAM's ``dL/dA`` is unchanged
    (it never needs gradients through the keys or values).
    """

    def __init__(self, model: Any, max_images: int = 2):
        self.model = model
        self.max_images = max(1, int(max_images))
        self.hits = 0
        self._store: OrderedDict[str, dict[str, tuple[tuple, Any]]] = OrderedDict()
        self._key: str | None = None
        self._removers = [serve(linear, self._server(name))
                          for name, linear in cross_attention_kv(model.text_encoder.encoder.layer)]

    def _server(self, name: str) -> Server:
        def server(x: torch.Tensor, compute: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
            key = self._key
            if key is None:
                return compute(x)
            entry = self._store[key]
            signature = (tuple(x.shape), x.dtype, x.device)
            hit = entry.get(name)
            if hit is not None and hit[0] == signature:
                self.hits += 1
                return hit[1]
            out = compute(x)
            entry[name] = (signature, out.detach().requires_grad_(True))
            return out
        return server

    @contextlib.contextmanager
    def active(self, image_id: str) -> Iterator[None]:
        self._store.setdefault(image_id, {})
        self._store.move_to_end(image_id)
        while len(self._store) > self.max_images:
            self._store.popitem(last=False)
        self._key = image_id
        try:
            yield
        finally:
            self._key = None

    def drop(self, image_id: str) -> None:
        self._store.pop(image_id, None)

    def close(self) -> None:
        """The layers' own computation again (the cache emptied)."""
        for remove in self._removers:
            remove()
        self._removers = []
        self._store.clear()


@contextlib.contextmanager
def projected_patches(decoder: Any, image_tokens: torch.Tensor) -> Iterator[dict[str, Any]]:
    """Serve the caption decoder's cross-attention key/value projections of sampled patches
    from projections of all of ``image_tokens`` ``[1 + G*G, D]``, each computed once (lazily).

    Yields a dict: set ``"ids"`` to the ``[B, k]`` patch indices before each ``generate`` call
    whose ``encoder_hidden_states`` are ``image_tokens[ids]``; with ``"ids"`` None (or another
    shape) the layers compute as usual. A Linear acts on each row alone, so the gathered rows
    equal the rows computed from the gathered patches. The servers are removed afterwards.
    """
    state: dict[str, Any] = {"ids": None, "projected": 0}
    full: dict[int, torch.Tensor] = {}

    def server_for(index: int) -> Server:
        def server(x: torch.Tensor, compute: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
            ids = state["ids"]
            if ids is None or tuple(x.shape[:2]) != tuple(ids.shape):
                return compute(x)
            if index not in full:
                full[index] = compute(image_tokens)
                state["projected"] += 1
            return full[index][ids]
        return server

    layers = [linear for _, linear in cross_attention_kv(decoder.bert.encoder.layer)]
    removers = [serve(linear, server_for(i)) for i, linear in enumerate(layers)]
    try:
        yield state
    finally:
        for remove in removers:
            remove()


__all__ = ["accelerate", "Accelerated", "PACKED_PARTS", "ROLES", "CrossAttentionKVCache", "projected_patches",
           "serve", "own_forward", "release_forward", "install_decoder_fast_path", "remove_decoder_fast_path",
           "DECODER_SWITCH", "ALL_SWITCH"]
