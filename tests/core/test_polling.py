"""The one wait and the one free port every server start, swap check and test relies on."""

from __future__ import annotations

import socket
import time

import pytest

from boltit.core.polling import wait_until
from boltit.core.ports import free_port, port_open


def test_a_wait_returns_how_long_it_took_once_the_check_holds() -> None:
    calls: list[float] = []

    def third_time() -> bool:
        calls.append(time.monotonic())
        return len(calls) == 3

    waited = wait_until(third_time, timeout=5, interval=0.05)
    assert waited is not None and 0.09 <= waited < 1.0
    assert len(calls) == 3


def test_a_wait_gives_up_at_its_deadline_after_a_last_check() -> None:
    calls: list[float] = []
    started = time.monotonic()

    def never() -> bool:
        calls.append(time.monotonic() - started)
        return False

    assert wait_until(never, timeout=0.3, interval=0.1) is None
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 0.6  # no sleep runs past the deadline
    assert calls[-1] >= 0.3 and 3 <= len(calls) <= 6  # the last check is at the deadline


def test_a_check_that_raises_ends_the_wait_at_once() -> None:
    def died() -> bool:
        raise RuntimeError("the server exited")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="exited"):
        wait_until(died, timeout=10, interval=1)
    assert time.monotonic() - started < 0.5


def test_a_free_port_can_be_listened_on_and_then_answers() -> None:
    port = free_port()
    assert not port_open(port)
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        assert port_open(port)
