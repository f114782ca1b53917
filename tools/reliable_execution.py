"""Sphinx extension: the book build never waits forever for a reply the kernel already sent.

myst-nb executes each chapter with nbclient, which waits for a cell's ``execute_reply`` with one
``poll`` of the shell socket lasting the whole cell timeout (600 s). Twice in this project a build
stopped at the end of a chapter with the kernel idle (all cells run, nothing more to send) and the
build process idle in that poll: zmq's file descriptor is edge-triggered, and a wake-up consumed by
a send on the same socket leaves a message unread until the next poll starts (the same class of
bug as ipykernel issue #1554, on the client side). Polling in slices of one second makes such a
miss cost at most a second: each new poll looks at the socket's queue before it waits. Nothing
else changes: the same messages, the same overall timeout.

Loaded by _config.yml (``local_extensions``); standalone runs (nbval, ``make lab``) do not need it.
"""

from __future__ import annotations

from queue import Empty
from time import monotonic

from jupyter_client.channels import AsyncZMQSocketChannel

SLICE = 1.0  # seconds per poll


def _patch() -> None:
    original = AsyncZMQSocketChannel.get_msg
    if getattr(original, "_sliced", False):
        return

    async def get_msg(self, timeout: float | None = None):
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            step = SLICE if deadline is None else min(SLICE, max(0.0, deadline - monotonic()))
            try:
                return await original(self, timeout=step)
            except Empty:
                if deadline is not None and monotonic() >= deadline:
                    raise

    get_msg._sliced = True
    AsyncZMQSocketChannel.get_msg = get_msg


def setup(app) -> dict:
    _patch()
    return {"parallel_read_safe": True, "parallel_write_safe": True}
