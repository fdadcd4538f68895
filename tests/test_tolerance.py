"""The scale-relative comparison (tests/support/tolerance.py) fails on a few percent at any scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from support.tolerance import assert_close_to_scale, close_to_scale


@pytest.mark.parametrize("scale", [4e-8, 3e-7, 1.0, 5e3])
def test_a_few_percent_off_fails_at_every_scale(scale):
    ref = np.random.default_rng(0).random((6, 6)) * scale
    assert_close_to_scale(ref * (1 + 1e-6), ref)
    assert_close_to_scale(torch.from_numpy(ref).float(), ref)  # float32 rounding passes
    for off in (1.03, 0.97):
        with pytest.raises(AssertionError):
            assert_close_to_scale(ref * off, ref)
    shifted = ref.copy()
    shifted[2, 3] += 0.03 * ref.max()  # one cell off by 3% of the map's largest value
    assert not close_to_scale(shifted, ref)
    # The absolute tolerance this replaces could not fail on small maps.
    assert np.allclose(ref * 1.03, ref, rtol=1e-4, atol=1e-5) == (scale < 1e-4)


def test_a_reference_of_zeros_is_refused():
    with pytest.raises(AssertionError, match="all zeros"):
        assert_close_to_scale(np.zeros(3), np.zeros(3))
