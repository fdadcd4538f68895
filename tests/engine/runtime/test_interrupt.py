"""engine.runtime.interrupt.stop_between: a forward stopped between blocks, hooks always removed."""

from __future__ import annotations

import pytest
import torch

from engine.errors import CancelledError
from engine.runtime.interrupt import stop_between


def _net(n: int = 4) -> torch.nn.Sequential:
    return torch.nn.Sequential(*(torch.nn.Linear(3, 3) for _ in range(n)))


def test_stops_before_the_block_where_cancel_turns_true():
    net = _net()
    seen = []
    for i, block in enumerate(net):
        block.register_forward_hook(lambda m, a, o, i=i: seen.append(i))
    with pytest.raises(CancelledError, match="Cancelled while testing"):
        with stop_between(net, lambda: len(seen) >= 2, "Cancelled while testing."):
            net(torch.zeros(1, 3))
    assert seen == [0, 1]
    assert all(len(b._forward_pre_hooks) == 0 for b in net)  # removed even after the exception


def test_no_cancel_or_never_true_changes_nothing():
    net = _net()
    x = torch.randn(2, 3)
    with stop_between(net, None):
        assert all(len(b._forward_pre_hooks) == 0 for b in net)
        a = net(x)
    with stop_between(net, lambda: False):
        assert all(len(b._forward_pre_hooks) == 1 for b in net)
        b = net(x)
    assert torch.equal(a, b) and all(len(blk._forward_pre_hooks) == 0 for blk in net)
