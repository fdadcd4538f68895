"""``tensor_version``: a tensor's in-place modification counter, behind a guard.

Caches of values derived from weights (the EfficientSAM encoder's resized position embedding,
the prompt encoder's dense position encoding, the decoder fast path's packed matrices) are
keyed by the weight's ``data_ptr`` and its version, so that ``load_state_dict`` (an in-place
copy) or a replaced weight makes them again. ``Tensor._version`` is private: it is probed once
per process (it exists and counts an in-place update); where it does not, every call answers
None and nothing derived from weights is cached (slower, never stale), with a log line.
"""

from __future__ import annotations

import logging

import torch

_usable: list[bool] = []
_log = logging.getLogger("qmask.accelerate")


def _probe() -> bool:
    try:
        # The first use may come inside inference mode, whose tensors carry no version counter
        # (weights are never such tensors): probe on an ordinary tensor.
        with torch.inference_mode(False):
            t = torch.zeros(2)
        before = t._version
        t.add_(1)
        after = t._version
        ok = isinstance(before, int) and isinstance(after, int) and after > before
        why = "" if ok else f"it read {before!r} then {after!r} around an in-place update"
    except Exception as err:  # noqa: BLE001 - a private attribute may go or change
        ok, why = False, f"{type(err).__name__}: {err}"
    if not ok:
        _log.warning("CPU acceleration: Tensor._version is not usable (%s); weight-derived values are not cached", why)
    return ok


def versions_usable() -> bool:
    """Whether ``Tensor._version`` counts in-place updates here (probed once)."""
    if not _usable:
        _usable.append(_probe())
    return _usable[0]


def reset() -> None:
    """Probe again on next use (tests)."""
    _usable.clear()


def tensor_version(t: torch.Tensor) -> int | None:
    """In-place modification counter of ``t``; None for inference tensors, which have none, and
    wherever the counter is not usable (then nothing derived from ``t`` may be cached)."""
    if not versions_usable():
        return None
    try:
        return int(t._version)
    except (RuntimeError, AttributeError, TypeError):
        return None


__all__ = ["tensor_version", "versions_usable"]
