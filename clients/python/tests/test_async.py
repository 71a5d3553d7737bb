"""AsyncClient against the real rpcd, in both byte orders."""

from __future__ import annotations

import asyncio
import time

import pytest

import rpcd_client
from conftest import free_port
from test_client import fib


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_concurrent_calls(server):
    async def main():
        async with rpcd_client.AsyncClient(server.address, byteorder=server.byteorder, conns=2) as c:
            got = await asyncio.gather(*[c.call("ping", f"p{i}") for i in range(1000)])
            assert got == [f"p{i}" for i in range(1000)]
            assert await c.call("fib", 100000) == fib(100000)
            assert await c.call("fib", 90, full=True) == ("fib_r", 2880067194370816120)

    run(main())


def test_errors_and_batches(server):
    async def main():
        async with rpcd_client.AsyncClient(server.address, byteorder=server.byteorder) as c:
            with pytest.raises(rpcd_client.UnknownMethod) as e:
                await c.call("nosuch")
            assert e.value.code == "unknown_method"
            with pytest.raises(rpcd_client.BadRequest):
                await c.call("pi", -1)
            got = await c.call_many([("ping", 1), ("nosuch", 2), ("fib", 10)], return_exceptions=True)
            assert got[0] == 1 and got[2] == 55
            assert isinstance(got[1], rpcd_client.UnknownMethod)
            with pytest.raises(rpcd_client.UnknownMethod):
                await c.call_many([("ping", 1), ("nosuch", 2)])
            batches = await asyncio.gather(*[c.call_many([("ping", (b, i)) for i in range(50)]) for b in range(20)])
            assert batches == [[[b, i] for i in range(50)] for b in range(20)]

    run(main())


def test_timeout_keeps_answers_matched(make_server):
    srv = make_server("-workers=1", "-pool-size=1")

    async def main():
        async with rpcd_client.AsyncClient(srv.address, byteorder=srv.byteorder, conns=1) as c:
            with pytest.raises(rpcd_client.CallTimeoutError):
                await c.call("pi", 10_000_000, timeout=0.002)
            with pytest.raises(rpcd_client.CallTimeoutError):
                await c.call_many([("pi", 10_000_000)] * 3, timeout=0.002)
            for i in range(20):
                assert await c.call("ping", i) == i

    run(main())


def test_slow_call_does_not_block_the_loop(make_server):
    srv = make_server("-workers=1", "-pool-size=1")

    async def main():
        async with rpcd_client.AsyncClient(srv.address, byteorder=srv.byteorder, conns=1) as busy, \
                rpcd_client.AsyncClient(srv.address, byteorder=srv.byteorder, conns=1) as quick:
            assert await quick.call("ping", "warm") == "warm"
            slow = asyncio.ensure_future(busy.call_many([("pi", 10_000_000)] * 30, timeout=30))
            t0 = time.monotonic()
            for i in range(20):
                assert await quick.call("ping", i) == i
            pings = time.monotonic() - t0
            assert not slow.done(), "the slow batch ended before twenty pings"
            await slow
            assert pings < (time.monotonic() - t0) / 4

    run(main())


def test_reconnects_across_reload(make_server):
    srv = make_server("-workers=2")

    async def main():
        async with rpcd_client.AsyncClient(srv.address, byteorder=srv.byteorder, conns=2) as c:
            for reload in range(1, 3):
                assert await asyncio.gather(*[c.call("ping", i) for i in range(100)]) == list(range(100))
                srv.reload()
                deadline = time.monotonic() + 15
                n = 0
                # Keep calling (not idempotent) until the old workers are gone.
                while srv.count("old worker exited") < 2 * reload:
                    assert time.monotonic() < deadline, "old workers did not exit"
                    n += 1
                    assert await asyncio.gather(*[c.call("ping", (n, i)) for i in range(20)]) == [
                        [n, i] for i in range(20)
                    ]
                assert await asyncio.gather(*[c.call("ping", i) for i in range(100)]) == list(range(100))

    run(main())


def test_closed_and_unreachable():
    async def main():
        c = rpcd_client.AsyncClient(f"127.0.0.1:{free_port()}", timeout=2)
        with pytest.raises(rpcd_client.RpcdConnectionError):
            await c.call("ping")
        await c.close()
        with pytest.raises(rpcd_client.ClientClosedError):
            await c.call("ping")

    run(main())


def test_large_batch_drains(server):
    blob = "x" * 50_000

    async def main():
        async with rpcd_client.AsyncClient(server.address, byteorder=server.byteorder, conns=1) as c:
            got = await c.call_many([("ping", [i, blob]) for i in range(100)], timeout=30)
            assert got == [[i, blob] for i in range(100)]

    run(main())
