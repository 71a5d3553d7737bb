"""Calls across graceful events of real rpcd servers: HUP reloads, and TERM
of one of two servers. The goodbye lets every call that was not read go to
another connection or server, so not one non-idempotent call fails."""

from __future__ import annotations

import asyncio
import time

import rpcd_client

from conftest import PingLoad, wait_until


def test_goodbye_offered(server):
    with rpcd_client.Client(server.address, byteorder=server.byteorder, conns=1) as c:
        assert c.call("ping", 1) == 1
        assert c._slots[0].conn.goodbye


def test_reloads_and_term_lose_no_call(make_server):
    a, b = make_server("-workers=2"), make_server("-workers=2")
    with rpcd_client.Client([a.address, b.address], byteorder=a.byteorder, trust_clean_close=False) as c:
        with PingLoad(c) as load:
            for srv in (a, b):
                load.calls_go_on(200, "calls before the reload")
                srv.reload()
                wait_until(lambda: srv.count("old worker exited") >= 2, what="old workers to exit")
            load.calls_go_on(200, "calls before the stop")
            a.stop()
            load.calls_go_on(200, "calls after the stop")
    assert load.errors == []


def test_async_reload_and_term_lose_no_call(make_server):
    a, b = make_server("-workers=2"), make_server("-workers=2")

    async def rounds(c: rpcd_client.AsyncClient, tag: str, until) -> int:
        n = 0
        deadline = time.monotonic() + 20
        while not until():
            assert time.monotonic() < deadline, f"timed out waiting for {tag}"
            n += 1
            got = await asyncio.gather(*[c.call("ping", [tag, n, i]) for i in range(20)])
            assert got == [[tag, n, i] for i in range(20)]
        return n

    async def main():
        async with rpcd_client.AsyncClient([a.address, b.address], byteorder=a.byteorder, trust_clean_close=False) as c:
            warm = iter(range(2, -1, -1))
            await rounds(c, "warm", lambda: next(warm) == 0)
            a.reload()
            await rounds(c, "hup", lambda: a.count("old worker exited") >= 2)
            a.proc.terminate()
            await rounds(c, "term", lambda: a.proc.poll() is not None)
            after = iter(range(5, -1, -1))
            assert await rounds(c, "after", lambda: next(after) == 0) == 5

    asyncio.run(asyncio.wait_for(main(), 60))
