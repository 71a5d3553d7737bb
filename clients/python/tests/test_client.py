"""The synchronous client against the real rpcd, in both byte orders."""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import rpcd_client
from conftest import PingLoad, free_port, wait_until


def fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def test_ping_echoes_any_json(server):
    with rpcd_client.Client(server.address, byteorder=server.byteorder) as c:
        for params in ["ireader 0", 12345678901234567890, 3.5, "\u4e16\u754c", [1, {"a": None}], None, True]:
            assert c.call("ping", params) == params
        assert c.call("ping", "x", full=True) == rpcd_client.Answer("pong", "x")


def test_fib_results_of_any_size(server):
    with rpcd_client.Client(server.address, byteorder=server.byteorder) as c:
        out, result = c.call("fib", 90, full=True)
        assert (out, result) == ("fib_r", 2880067194370816120)
        assert c.call("fib", {"n": 100}) == 354224848179261915075
        big = c.call("fib", 100000)
        # 20899 digits: past Python 3.11's default int(str) limit of 4300.
        assert big == fib(100000)
        if hasattr(sys, "get_int_max_str_digits"):
            assert sys.get_int_max_str_digits() in (0, 4300)  # left as it was


def test_error_answers_raise_their_class(server):
    with rpcd_client.Client(server.address, byteorder=server.byteorder) as c:
        with pytest.raises(rpcd_client.UnknownMethod) as e:
            c.call("nosuch", 1)
        assert e.value.code == "unknown_method"
        assert "nosuch" in e.value.message
        with pytest.raises(rpcd_client.BadRequest) as e:
            c.call("fib", "ninety")
        assert e.value.code == "bad_request"
        with pytest.raises(rpcd_client.Unavailable):
            c.call("cache.get", {"key": "k"})  # no -redis
        assert isinstance(e.value, rpcd_client.RpcError)
        assert c.call("ping", "still open") == "still open"


def test_overloaded_and_handler_timeout_codes(make_server):
    srv = make_server("-workers=1", "-pool-size=1", "-queue-size=1", "-handler-timeout=5ms")
    with rpcd_client.Client(srv.address, byteorder=srv.byteorder) as c:
        got = c.call_many([("pi", 10_000_000)] * 6, return_exceptions=True)
    codes = [type(r) for r in got]
    assert rpcd_client.Overloaded in codes, got
    assert rpcd_client.HandlerTimeout in codes, got
    assert all(isinstance(r, rpcd_client.RpcError) for r in got), got


def test_call_timeout_keeps_answers_matched(make_server):
    srv = make_server("-workers=1", "-pool-size=1")
    with rpcd_client.Client(srv.address, byteorder=srv.byteorder, conns=1) as c:
        with pytest.raises(rpcd_client.CallTimeoutError):
            c.call_many([("pi", 10_000_000)] * 4, timeout=0.005)
        # The late pi answers are read and dropped: each ping gets its own pong.
        for i in range(20):
            assert c.call("ping", i) == i


def test_many_threads_pipeline(server):
    with rpcd_client.Client(server.address, byteorder=server.byteorder, conns=2) as c:

        def run(t: int) -> int:
            for i in range(200):
                params = f"t{t}-{i}"
                assert c.call("ping", params) == params
                if i % 50 == 0:
                    assert c.call("fib", i) == fib(i)
            return t

        with ThreadPoolExecutor(16) as pool:
            assert sorted(pool.map(run, range(16))) == list(range(16))
        assert sum(s.conn is not None for s in c._slots) == 2


def test_call_many_keeps_order(server):
    calls = []
    for i in range(300):
        calls.append(("ping", i) if i % 3 else ("fib", i))
    calls.append(("nosuch", None))
    with rpcd_client.Client(server.address, byteorder=server.byteorder) as c:
        got = c.call_many(calls, return_exceptions=True)
        assert got[:-1] == [i if i % 3 else fib(i) for i in range(300)]
        assert isinstance(got[-1], rpcd_client.UnknownMethod)
        with pytest.raises(rpcd_client.UnknownMethod):
            c.call_many([("ping", 1), ("nosuch", 2)])
        full = c.call_many([("ping", "a"), ("fib", 10)], full=True)
        assert full == [("pong", "a"), ("fib_r", 55)]


def test_connection_refused():
    c = rpcd_client.Client(f"127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(rpcd_client.RpcdConnectionError):
        c.call("ping")
    c.close()


def test_host_list_fails_over(server):
    dead = f"127.0.0.1:{free_port()}"
    for i in range(10):
        with rpcd_client.Client([dead, server.address], byteorder=server.byteorder) as c:
            assert c.call("ping", i) == i
    with rpcd_client.Client(f"{dead},{server.address}", byteorder=server.byteorder) as c:
        assert c.call("ping", "comma") == "comma"


def test_closed_client_refuses_calls(server):
    c = rpcd_client.Client(server.address, byteorder=server.byteorder)
    assert c.call("ping", 1) == 1
    c.close()
    with pytest.raises(rpcd_client.ClientClosedError):
        c.call("ping", 2)


def test_calls_keep_succeeding_across_reloads(make_server):
    srv = make_server("-workers=2")
    with rpcd_client.Client(srv.address, byteorder=srv.byteorder, conns=3) as c:
        assert c.call("ping", "first") == "first"
        first_conns = [s.conn for s in c._slots if s.conn is not None]
        with PingLoad(c) as load:
            for reload in range(1, 4):
                before = load.answered
                wait_until(lambda: load.answered >= before + 200, what="calls before the reload")
                srv.reload()
                wait_until(lambda: srv.count("old worker exited") >= 2 * reload, what="old workers to exit")
                load.calls_go_on(200, "calls after the reload")
        # Every connection now in use was dialled after the first one closed.
        assert not any(s.conn is f for s in c._slots for f in first_conns)
    assert load.errors == []
    assert srv.count("new generation ready") == 3


def test_slow_calls_do_not_delay_other_connections(make_server):
    srv = make_server("-workers=1", "-pool-size=1")
    slow = [("fib", 100000)] + [("pi", 10_000_000)] * 30
    slow_done = threading.Event()
    with rpcd_client.Client(srv.address, byteorder=srv.byteorder, conns=1) as busy, rpcd_client.Client(
        srv.address, byteorder=srv.byteorder, conns=1
    ) as quick:
        assert quick.call("ping", "warm") == "warm"
        started = time.monotonic()

        def run_slow() -> None:
            busy.call_many(slow, timeout=30)
            slow_done.set()

        t = threading.Thread(target=run_slow)
        t.start()
        latencies = []
        for i in range(20):
            t0 = time.monotonic()
            assert quick.call("ping", i) == i
            latencies.append(time.monotonic() - t0)
        pings_done = time.monotonic()
        finished_first = not slow_done.is_set()
        t.join(60)
        slow_took = time.monotonic() - started
    assert slow_done.is_set()
    # Twenty pings on the other connection are answered while the one
    # worker's pool is busy with the slow batch, not after it.
    assert finished_first, f"pings took {pings_done - started:.3f}s, the slow batch {slow_took:.3f}s"
    assert max(latencies) < slow_took / 4, (latencies, slow_took)


def test_large_frames_both_ways(server):
    blob = "y" * 50_000
    with rpcd_client.Client(server.address, byteorder=server.byteorder, conns=1) as c:
        got = c.call_many([("ping", [i, blob]) for i in range(100)], timeout=30)
        assert got == [[i, blob] for i in range(100)]
        with pytest.raises(rpcd_client.FrameTooLarge):
            c.call("ping", "z" * (1 << 20))  # past the server's -max-frame of 1MiB
        assert c.call("ping", "next") == "next"  # on a new connection
