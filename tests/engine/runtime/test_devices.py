"""Device and dtype choice, and out-of-memory translation."""

from __future__ import annotations

import pytest
import torch

from engine.runtime.devices import (
    describe_device,
    is_out_of_memory,
    out_of_memory_as_resource_error,
    resolve_device,
    resolve_dtype,
)
from engine.errors import InputError, ResourceError


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def fake_one_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


def test_cpu_and_auto_without_cuda(no_cuda):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "CUDA:1"])
def test_cuda_asked_for_but_missing(no_cuda, spec):
    with pytest.raises(ResourceError, match="--device cpu"):
        resolve_device(spec)


@pytest.mark.parametrize("spec", ["nvidia", "cuda:x", "tpu", "cuda:-1"])
def test_unknown_device_spelling(spec):
    with pytest.raises(InputError, match="auto, cpu, cuda"):
        resolve_device(spec)


def test_gpu_numbers_are_checked(fake_one_gpu):
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ResourceError, match="no GPU cuda:3"):
        resolve_device("cuda:3")


def test_dtypes_on_cpu(no_cuda):
    cpu = torch.device("cpu")
    assert resolve_dtype("auto", cpu) == torch.float32
    assert resolve_dtype(None) == torch.float32
    assert resolve_dtype("fp32", "cpu") == torch.float32
    assert resolve_dtype("bf16", cpu) == torch.bfloat16
    assert resolve_dtype(torch.float32, cpu) == torch.float32
    with pytest.raises(InputError, match="CUDA only"):
        resolve_dtype("float16", cpu)
    with pytest.raises(InputError, match="Unknown dtype"):
        resolve_dtype("int8", cpu)
    with pytest.raises(InputError, match="Unsupported dtype"):
        resolve_dtype(torch.int8, cpu)


def test_dtypes_on_cuda_without_touching_a_gpu(monkeypatch):
    cuda = torch.device("cuda", 0)
    assert resolve_dtype("auto", cuda) == torch.float16
    assert resolve_dtype("half", cuda) == torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Old GPU")
    with pytest.raises(ResourceError, match="Old GPU.*bfloat16"):
        resolve_dtype("bfloat16", cuda)


def test_out_of_memory_detection():
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert is_out_of_memory(RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory: you tried"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_out_of_memory_becomes_resource_error():
    with pytest.raises(ResourceError, match="Out of memory while encoding") as info:
        with out_of_memory_as_resource_error(torch.device("cpu"), "encoding the image"):
            raise torch.OutOfMemoryError("CUDA out of memory")
    assert isinstance(info.value.__cause__, torch.OutOfMemoryError)
    with pytest.raises(RuntimeError, match="shape"):  # anything else passes through unchanged
        with out_of_memory_as_resource_error(torch.device("cpu"), "x"):
            raise RuntimeError("shape mismatch")


def test_describe_cpu():
    assert describe_device(torch.device("cpu")).startswith("cpu (")


@pytest.mark.gpu
def test_real_gpu():
    device = resolve_device("cuda")
    assert device.type == "cuda"
    assert resolve_dtype("auto", device) == torch.float16
    assert "GiB" in describe_device(device)
    with pytest.raises(ResourceError, match="Out of GPU memory"):
        with out_of_memory_as_resource_error(device, "testing"):
            torch.empty(1 << 50, dtype=torch.uint8, device=device)  # 1 PiB
