"""tools/reliable_execution.py: the sliced poll keeps get_msg's meaning (a message that is there is
returned, an empty socket raises Empty after the whole timeout), over a real zmq socket pair."""

from __future__ import annotations

import asyncio
import time
from queue import Empty

import pytest
import zmq
import zmq.asyncio
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.session import Session

import reliable_execution  # tools/, on sys.path through conftest


def test_sliced_get_msg_returns_messages_and_times_out_like_the_original():
    reliable_execution._patch()
    reliable_execution._patch()  # idempotent: one layer of slicing
    assert AsyncZMQSocketChannel.get_msg._sliced

    async def scenario():
        ctx = zmq.asyncio.Context()
        a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
        port = a.bind_to_random_port("tcp://127.0.0.1")
        b.connect(f"tcp://127.0.0.1:{port}")
        session = Session()
        channel = AsyncZMQSocketChannel(b, session)
        try:
            start = time.monotonic()
            with pytest.raises(Empty):
                await channel.get_msg(timeout=2.5)  # three slices, nothing arrives
            waited = time.monotonic() - start
            session.send(a, "execute_reply", {"status": "ok"})
            msg = await channel.get_msg(timeout=5)
            return waited, msg
        finally:
            a.close(0)
            b.close(0)
            ctx.term()

    waited, msg = asyncio.run(scenario())
    assert 2.4 <= waited < 4.0
    assert msg["msg_type"] == "execute_reply" and msg["content"] == {"status": "ok"}
