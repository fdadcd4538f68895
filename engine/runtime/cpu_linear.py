"""Faster fp32 ``nn.Linear`` layers on the CPU: oneDNN with each weight packed once.

Why: PyTorch's x86 wheels send fp32 Linear layers to MKL. On the project's reference CPU (a
2-core AMD EPYC) MKL ran the shapes our models use at 70-160 GFLOPS; oneDNN, with the weight
reordered once into its own blocked layout, ran the same products at 180-210 GFLOPS. The gain is
largest where few rows meet a big weight: caption decoding (100 rows per step, 30,524-word head)
and FiD decoding (1 row per step).

How: :func:`pack_linears` keeps a packed copy of each fp32 CPU ``nn.Linear``'s weight of an
inference-only module, and the accelerator's layer forward (``engine.runtime.accelerate``, the
one place that replaces ``forward``) calls ``torch.ops.mkldnn._linear_pointwise`` (the op
PyTorch's own compiler uses for packed CPU weights) on it. These ops are private: each use is
probed once per process (the op exists and gives the plain result on a small input); where a
probe fails, the plain path runs and a log line (logger ``qmask.accelerate``) says why. Results equal ``F.linear`` up to fp32
rounding (the sum runs in another order). The model's classes and weights stay as loaded.

Memory: the dense weight is then released, so the model does not take twice the memory. Its
``weight`` becomes a NaN placeholder of the same shape, dtype and device (stride 0, 4 bytes), so
that code reading the weight directly gets NaNs rather than plausible numbers; ``state_dict()``
still holds the real weight (unpacked again), and ``load_state_dict`` fails loudly (unpack first).
Weights mapped from a safetensors file also give their resident pages back (measured on the
base models: 5.48 GB resident after a chain, against 5.28 GB unpacked). A weight that is
also used elsewhere (tied word embeddings and output heads) keeps its dense copy. Calls that the
packed path cannot take (autograd through the layer, another dtype or device) run ``F.linear``
on the weight unpacked again, so they are slow but right. :func:`unpack_linears` undoes it all.
"""

from __future__ import annotations

import ctypes
import logging
import os
from typing import Any, Callable, Iterable

import torch
import torch.nn.functional as F

from .cpu_tuning import libc, switched_off

_PACKED = "_qmask_packed_weight"  # instance attribute of a packed Linear (a mkldnn tensor)
_RELEASED = "_qmask_dense_released"  # True when the dense weight was dropped
_HOOK = "_qmask_state_dict_hook"  # handle of the hook that puts the real weight in state_dict()
_MADV_DONTNEED = 4  # Linux <sys/mman.h>
_MADV_POPULATE_READ = 22
ENV_SWITCH = "QMASK_CPU_LINEAR"  # "default" turns packing off (MKL, as PyTorch ships)

_probes: dict[str, tuple[bool, str]] = {}  # probe name -> (passed, why not), once per process
_log = logging.getLogger("qmask.accelerate")


def _probe(name: str, check: Callable[[], str | None]) -> bool:
    """Run ``check`` once per process (it returns None when the private op exists and gives the
    plain result on a small input, else why not); the plain path is used where it fails, with a
    log line saying why."""
    if name not in _probes:
        try:
            why = check()
        except Exception as err:  # noqa: BLE001 - a missing or changed private op raises anything
            why = f"{type(err).__name__}: {err}"
        _probes[name] = (why is None, why or "")
        if why is not None:
            _log.warning("CPU acceleration: %s is not used, the plain PyTorch path runs instead (%s)", name, why)
    return _probes[name][0]


def probe_failures() -> dict[str, str]:
    """The probes run so far that failed, with why (for tests and benchmark headers)."""
    return {name: why for name, (ok, why) in _probes.items() if not ok}


def reset_probes() -> None:
    """Forget every probe result (tests that replace a private op call this)."""
    _probes.clear()


def _case(rows: int = 5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return (torch.randn(37, 19, generator=gen), torch.randn(37, generator=gen),
            torch.randn(3, rows, 19, generator=gen))


def _differs(out: Any, expected: torch.Tensor) -> str | None:
    if not isinstance(out, torch.Tensor) or out.shape != expected.shape or out.dtype != expected.dtype:
        return f"returned {type(out).__name__} {getattr(out, 'shape', '')}, expected a tensor {tuple(expected.shape)}"
    if not torch.allclose(out, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max())):
        return f"differs from the plain result by up to {(out - expected).abs().max().item():.3g}"
    return None


def _check_packed_linear() -> str | None:
    if not torch.backends.mkldnn.is_available():
        return "this PyTorch build has no oneDNN"
    weight, bias, x = _case()
    packed = torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), None)
    if not torch.equal(packed.to_dense(), weight):
        return "torch.ops.mkldnn._reorder_linear_weight does not keep the weight's values"
    with torch.no_grad():
        return _differs(torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], ""), F.linear(x, weight, bias))


def _check_fused_gelu() -> str | None:
    weight, bias, x = _case()
    packed = torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), None)
    with torch.no_grad():
        return _differs(torch.ops.mkldnn._linear_pointwise(x, packed, bias, "gelu", [], "none"),
                        F.gelu(F.linear(x, weight, bias)))


def _check_dense_nt() -> str | None:
    weight, _, x = _case()
    with torch.no_grad():
        return _differs(torch.ops.mkldnn._linear_pointwise(x[0], weight.contiguous(), None, "none", [], ""),
                        x[0] @ weight.t())


def onednn_linear_available() -> bool:
    """True when this PyTorch build has the packed oneDNN Linear ops (``_reorder_linear_weight``,
    ``_linear_pointwise``) and they give the same numbers as ``F.linear`` on a small case
    (checked once per process; see :func:`_probe`)."""
    return _probe("packed oneDNN Linear (torch.ops.mkldnn._reorder_linear_weight + _linear_pointwise)",
                  _check_packed_linear)


def fused_gelu_available() -> bool:
    """The packed product with GELU fused in gives ``F.gelu(F.linear(...))`` (checked once)."""
    return onednn_linear_available() and _probe("oneDNN Linear with fused GELU (_linear_pointwise 'gelu')",
                                                _check_fused_gelu)


def dense_nt_available() -> bool:
    """``_linear_pointwise`` on a plain (unpacked) ``[N, K]`` operand gives ``a @ b^T`` (checked once)."""
    return onednn_linear_available() and _probe("oneDNN product with an unpacked operand (_linear_pointwise)",
                                                _check_dense_nt)


def _self_check() -> bool:
    """The packing self-check, run afresh (tests: where oneDNN is present it must pass)."""
    try:
        return _check_packed_linear() is None
    except Exception:  # noqa: BLE001
        return False


def packing_enabled() -> bool:
    """Whether model loading should pack: not where ``QMASK_CPU_LINEAR=default`` or
    ``QMASK_ACCELERATE=off`` turns it off, nor where the op's probe failed."""
    return not switched_off(ENV_SWITCH) and onednn_linear_available()


def is_packed(linear: torch.nn.Module) -> bool:
    return _PACKED in linear.__dict__


def dense_weight(linear: torch.nn.Linear) -> torch.Tensor:
    """The layer's real weight ``[out, in]``: the dense one, or the packed one unpacked again."""
    if linear.__dict__.get(_RELEASED):
        return linear.__dict__[_PACKED].to_dense()
    return linear.weight


def _onednn_input(x: torch.Tensor) -> bool:
    # The packed op takes fp32 CPU tensors and has no autograd formula.
    return x.device.type == "cpu" and x.dtype == torch.float32 and not (x.requires_grad and torch.is_grad_enabled())


def usable_for(x: torch.Tensor) -> bool:
    """Whether ``x`` may take the oneDNN path: an fp32 CPU tensor, packing on, no autograd."""
    return _onednn_input(x) and packing_enabled()


def pack_weight(weight: torch.Tensor) -> torch.Tensor:
    """``[out, in]`` fp32 CPU weight -> oneDNN's packed copy, for :func:`packed_linear`."""
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), None)


def packed_linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None = None,
                  gelu: bool = False) -> torch.Tensor:
    """``x @ W^T + bias`` (then exact, erf GELU when ``gelu``, fused into the product) for a
    weight packed by :func:`pack_weight`; ``x`` as :func:`usable_for` allows."""
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "gelu" if gelu else "none", [],
                                              "none" if gelu else "")


def matmul_nt(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b^T`` for ``[M, K]`` and contiguous ``[N, K]`` operands that change every call
    (oneDNN when :func:`usable_for` allows: 10-25% faster than MKL for the mask decoder's
    ``[88, 256] x [256, 4096]`` scores on the reference CPU; else ``torch.mm``)."""
    if usable_for(a) and b.is_contiguous() and b.dtype == a.dtype and b.device == a.device and dense_nt_available():
        return torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "")
    return a @ b.transpose(-1, -2)


def _real_weight_in_state_dict(module: torch.nn.Module, state: dict, prefix: str, _meta: Any) -> None:
    # state_dict() of a packed layer holds its real weight, not the placeholder.
    state[prefix + "weight"] = dense_weight(module)


def linear_forward(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """What a Linear computes, packed or not (the accelerator's layer forward calls this)."""
    packed = self.__dict__.get(_PACKED)
    if packed is None:
        return F.linear(x, self.weight, self.bias)
    if _onednn_input(x):
        return packed_linear(x, packed, self.bias)
    # Autograd, or another device/dtype: the plain layer.
    weight = dense_weight(self).to(device=x.device, dtype=x.dtype)
    bias = None if self.bias is None else self.bias.to(device=x.device, dtype=x.dtype)
    return F.linear(x, weight, bias)


def _shared_storage(root: torch.nn.Module, linears: Iterable[torch.nn.Linear]) -> set[int]:
    """data_ptrs of Linear weights that some other tensor of ``root`` also uses (tied weights)."""
    own = {id(lin.weight) for lin in linears}
    seen: dict[int, int] = {}
    # remove_duplicate=False: tied weights are often one Parameter object under two names.
    tensors = [t for _, t in root.named_parameters(remove_duplicate=False)]
    tensors += [t for _, t in root.named_buffers(remove_duplicate=False)]
    for tensor in tensors:
        if tensor.device.type != "cpu" or tensor.numel() == 0:
            continue
        key = tensor.untyped_storage().data_ptr()
        seen[key] = seen.get(key, 0) + (1 if id(tensor) in own else 2)
    return {key for key, count in seen.items() if count > 1}


def pack_linears(module: torch.nn.Module, root: torch.nn.Module | None = None, release_dense: bool = True) -> int:
    """Pack every fp32 CPU ``nn.Linear`` inside ``module`` (see the module notes).

    ``module`` must be used for inference only (no parameter gradients): its packed layers'
    parameters get ``requires_grad=False``. ``root`` is the whole model, searched for tied
    weights (default: ``module``). Returns how many layers were packed; 0 when oneDNN is not
    usable here. Packing twice is harmless.
    """
    from .accelerate import own_forward

    if not onednn_linear_available():
        return 0
    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear) and not is_packed(m)
               and m.weight.device.type == "cpu" and m.weight.dtype == torch.float32 and m.weight.numel() > 0]
    shared = _shared_storage(root if root is not None else module, linears)
    files = _file_mappings() if linears else []
    for lin in linears:
        weight = lin.weight.detach()
        span = (weight.data_ptr(), weight.numel() * weight.element_size())
        _read_file_pages([span], files)
        lin.__dict__[_PACKED] = pack_weight(weight)
        if lin.bias is not None:
            lin.bias.requires_grad_(False)
        tied = weight.untyped_storage().data_ptr() in shared
        if release_dense and not tied:
            # Layer by layer, so that resident memory never holds both copies of a big model.
            _drop_file_pages([span], files)
            placeholder = torch.full((), float("nan"), dtype=weight.dtype).expand(weight.shape)
            lin.weight = torch.nn.Parameter(placeholder, requires_grad=False)
            lin.__dict__[_RELEASED] = True
            lin.__dict__[_HOOK] = lin.register_state_dict_post_hook(_real_weight_in_state_dict)
        else:
            lin.weight.requires_grad_(False)
        own_forward(lin)
    return len(linears)


def _drop_file_pages(ranges: list[tuple[int, int]], files: list[tuple[int, int]] | None = None) -> int:
    """Give back the resident pages of released weights that live in a file mapping.

    ``from_pretrained`` maps safetensors files into memory and every weight points into that
    mapping, which stays mapped for the tensors still in use: without this, the released
    weights' pages stay counted in the process (RSS ~2x the model). ``MADV_DONTNEED`` on a
    private file mapping only drops this process's copies (a later read would fetch the file's
    bytes again), so it is safe even if something still looked there. Anonymous memory is never
    touched (there it would read back zeros); freeing the tensor already returns it. Linux only;
    returns the bytes dropped. ``files``: :func:`_file_mappings`, when already read.
    """
    return _advise(ranges, files, _MADV_DONTNEED, inside=True)


def _read_file_pages(ranges: list[tuple[int, int]], files: list[tuple[int, int]] | None = None) -> int:
    """Fault in the pages of weights in a file mapping in one call (``MADV_POPULATE_READ``,
    Linux 5.14+; a no-op elsewhere): the weight reorder would take them one page fault at a
    time, which cost ~1 s per GB. Returns the bytes read in."""
    return _advise(ranges, files, _MADV_POPULATE_READ, inside=False)


def _advise(ranges: list[tuple[int, int]], files: list[tuple[int, int]] | None, advice: int, inside: bool) -> int:
    """``madvise`` the pages of each (address, bytes) range that lies in a file mapping: whole
    pages inside the range (``inside``) or every page it touches."""
    handle = libc()
    madvise = getattr(handle, "madvise", None) if handle is not None else None
    if not ranges or madvise is None:
        return 0
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    madvise.restype = ctypes.c_int
    files = _file_mappings() if files is None else files
    page = os.sysconf("SC_PAGE_SIZE")
    done = 0
    for address, size in ranges:
        if inside:
            start, end = -(-address // page) * page, (address + size) // page * page
        else:
            start, end = address // page * page, -(-(address + size) // page) * page
        if end <= start or not any(lo <= start and end <= hi for lo, hi in files):
            continue
        if madvise(start, end - start, advice) == 0:
            done += end - start
    return done


def _file_mappings() -> list[tuple[int, int]]:
    """Address ranges of this process's mappings backed by a regular file (/proc/self/maps);
    empty where there is no such file (not Linux)."""
    out: list[tuple[int, int]] = []
    if not os.path.exists("/proc/self/maps"):
        return out
    with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[4] != "0" and fields[5].startswith("/"):
                lo, hi = fields[0].split("-")
                out.append((int(lo, 16), int(hi, 16)))
    return out


def unpack_linears(module: torch.nn.Module) -> int:
    """Give every packed Linear in ``module`` its dense weight and own ``forward`` back."""
    from .accelerate import release_forward

    count = 0
    for lin in module.modules():
        if not isinstance(lin, torch.nn.Linear) or not is_packed(lin):
            continue
        if lin.__dict__.pop(_RELEASED, False):
            lin.weight = torch.nn.Parameter(lin.__dict__[_PACKED].to_dense(), requires_grad=False)
            lin.__dict__.pop(_HOOK).remove()
        del lin.__dict__[_PACKED]
        release_forward(lin)
        count += 1
    return count


__all__ = ["pack_linears", "unpack_linears", "is_packed", "dense_weight", "onednn_linear_available",
           "packing_enabled", "usable_for", "pack_weight", "packed_linear", "matmul_nt", "ENV_SWITCH",
           "fused_gelu_available", "dense_nt_available", "linear_forward", "probe_failures", "reset_probes"]
