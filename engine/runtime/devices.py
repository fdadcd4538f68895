"""Choosing the torch device and dtype, and turning out-of-memory into advice.

Spellings accepted (CLI ``--device`` / ``--dtype``, PipelineSettings):

- device: ``auto`` (the first CUDA GPU if there is one, else the CPU), ``cpu``, ``cuda``,
  ``cuda:N``;
- dtype: ``auto`` (float32 on the CPU, float16 on CUDA), ``float32``/``fp32``,
  ``float16``/``fp16``/``half`` (CUDA only), ``bfloat16``/``bf16``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import torch

from ..errors import InputError, ResourceError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")
DTYPE_CHOICES = ("auto", "float32", "float16", "bfloat16")

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}


def cuda_available() -> bool:
    return torch.cuda.is_available()


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """``"auto" | "cpu" | "cuda" | "cuda:N"`` (or a torch.device) -> an available torch.device.

    Raises ``InputError`` for a spelling we do not know and ``ResourceError`` when CUDA is
    asked for but missing (no GPU, no CUDA build, or no GPU with that number).
    """
    if isinstance(spec, torch.device):
        text = str(spec)
    else:
        text = (spec or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if cuda_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if not match:
        raise InputError(f"Unknown device {spec!r}; use one of: {', '.join(DEVICE_CHOICES)}.")
    if not cuda_available():
        reason = ("this PyTorch was built without CUDA" if torch.version.cuda is None
                  else "no NVIDIA GPU is visible (driver missing, or CUDA_VISIBLE_DEVICES hides it)")
        raise ResourceError(f"The device {text!r} was asked for, but {reason}. Use --device cpu (or auto).")
    index = int(match.group(1)) if match.group(1) is not None else torch.cuda.current_device()
    count = torch.cuda.device_count()
    if index >= count:
        raise ResourceError(f"There is no GPU cuda:{index}: this machine has {count} "
                            f"(cuda:0{f' to cuda:{count - 1}' if count > 1 else ''}).")
    return torch.device("cuda", index)


def resolve_dtype(spec: str | torch.dtype | None = "auto", device: torch.device | str | None = None) -> torch.dtype:
    """``"auto"`` -> float32 on the CPU, float16 on CUDA; explicit names are checked against the device.

    float16 on the CPU is refused (many CPU kernels are missing or slow for it); bfloat16 on a
    GPU that lacks it is refused with advice.
    """
    dev = resolve_device(device) if not isinstance(device, torch.device) else device
    if isinstance(spec, torch.dtype):
        dtype = spec
    else:
        text = (spec or "auto").strip().lower()
        if text == "auto":
            return torch.float16 if dev.type == "cuda" else torch.float32
        if text not in _DTYPES:
            raise InputError(f"Unknown dtype {spec!r}; use one of: {', '.join(DTYPE_CHOICES)}.")
        dtype = _DTYPES[text]
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise InputError(f"Unsupported dtype {dtype}; use one of: {', '.join(DTYPE_CHOICES)}.")
    if dtype == torch.float16 and dev.type == "cpu":
        raise InputError("float16 runs on CUDA only; on the CPU use float32 (or bfloat16).")
    if dtype == torch.bfloat16 and dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ResourceError(f"This GPU ({torch.cuda.get_device_name(dev)}) does not support bfloat16; "
                            "use float16 or float32.")
    return dtype


def describe_device(device: torch.device) -> str:
    """Short human description, e.g. ``cuda:0 (NVIDIA H100, 79 GiB)`` or ``cpu (2 threads)``."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{device} ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
    return f"{device} ({torch.get_num_threads()} threads)"


def is_out_of_memory(err: BaseException) -> bool:
    """True for CUDA OOM and for the CPU allocator's "not enough memory" RuntimeError."""
    oom_type = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(err, oom_type):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("DefaultCPUAllocator: can't allocate memory" in text
                                              or "out of memory" in text.lower())


def oom_advice(device: torch.device, what: str) -> str:
    if device.type == "cuda":
        return (f"Out of GPU memory while {what} on {device}. Close other programs using the GPU, "
                "use --dtype float16, a smaller model, or --device cpu.")
    return f"Out of memory while {what} on the CPU. Close other programs or use a smaller model or image."


@contextlib.contextmanager
def out_of_memory_as_resource_error(device: torch.device, what: str) -> Iterator[None]:
    """Re-raise an out-of-memory error from the block as ``ResourceError`` with advice."""
    try:
        yield
    except (RuntimeError, MemoryError) as err:
        if isinstance(err, MemoryError) or is_out_of_memory(err):
            if device.type == "cuda":
                torch.cuda.empty_cache()  # give back what the failed call held
            raise ResourceError(oom_advice(device, what)) from err
        raise
