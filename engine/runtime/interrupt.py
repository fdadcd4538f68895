"""Stopping a long forward pass between its blocks, when the user cancels.

A ViT encoder is one call of a few seconds on a CPU (BLIP-large: 24 layers, ~2 s; UnifiedQA's
answer ~3.5 s); checking ``cancel()`` only around it makes Cancel, or moving on to another
image, wait for all of it. :func:`stop_between` checks before each block instead (~85 ms apart
in BLIP's ViT) with forward pre-hooks, which the model's own code never sees; they are removed
on exit. The check may also do quick work of its own (the GUI worker decodes a pending click).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from ..errors import CancelledError

CancelFn = Callable[[], bool]


@contextmanager
def stop_between(blocks: Iterable[Any], cancel: CancelFn | None,
                 message: str = "Cancelled while encoding the image.") -> Iterator[None]:
    """While inside, each of ``blocks`` (``torch.nn.Module``) first asks ``cancel()`` and raises
    :class:`CancelledError` (``message``) when it returns True.

    The interrupted forward leaves nothing behind: callers store an output only after the call
    returns. With ``cancel`` None this does nothing.
    """
    if cancel is None:
        yield
        return

    def check(_module: Any, _args: Any) -> None:
        if cancel():
            raise CancelledError(message)

    handles = [block.register_forward_pre_hook(check) for block in blocks]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


__all__ = ["stop_between"]
