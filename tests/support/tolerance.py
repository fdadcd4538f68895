"""Comparisons whose tolerance follows the compared values' own scale.

Random tiny models give values far from 1 (BLIP Grad-CAM maps of about 4e-8, cross-attention
projections of about 3e-7), where an absolute tolerance such as ``atol=1e-5`` is larger than
the values themselves and cannot fail. Here the absolute part is ``rel`` times the reference's
largest magnitude, and each value also gets ``rel`` of itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _array(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, on any device
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def scale_of(expected: Any) -> float:
    """The largest magnitude in ``expected`` (> 0: a reference of zeros sets no scale)."""
    scale = float(np.abs(_array(expected)).max())
    assert scale > 0, "the reference is all zeros: a tolerance relative to it would be meaningless"
    return scale


def assert_close_to_scale(actual: Any, expected: Any, rel: float = 1e-4) -> None:
    """``actual`` equals ``expected`` to ``rel`` of each value plus ``rel * max|expected|``."""
    expected = _array(expected)
    np.testing.assert_allclose(_array(actual), expected, rtol=rel, atol=rel * scale_of(expected))


def close_to_scale(actual: Any, expected: Any, rel: float = 1e-4) -> bool:
    """The same test as :func:`assert_close_to_scale`, as a bool (for 'these differ' checks)."""
    expected = _array(expected)
    return bool(np.allclose(_array(actual), expected, rtol=rel, atol=rel * scale_of(expected)))
