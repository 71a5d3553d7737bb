"""Targets and balancing: dns:/// and etcd:// lists, the two-choice pick."""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest

import rpcd_client
from rpcd_client._balance import Balancer
from rpcd_client._targets import Endpoint, StaticResolver, make_resolver, prefix_end

from conftest import free_port, wait_until


def test_parse_targets():
    assert make_resolver("a:1,b:2").endpoints() == [Endpoint("a", 1), Endpoint("b", 2)]
    for bad in ("dns://8.8.8.8/x:1", "dns:///nohost", "etcd://h:1/", "zk://h:1/s"):
        with pytest.raises(ValueError):
            make_resolver(bad)
    assert prefix_end(b"/rpcd/svc/") == b"/rpcd/svc0"
    assert prefix_end(b"a\xff") == b"b"


def test_two_choices_follow_weights():
    resolver = StaticResolver([Endpoint("a", 1, 1), Endpoint("b", 1, 3), Endpoint("x", 1, 1, "big")])
    b = Balancer(resolver, "little", lambda addr: addr, lambda pool: None)
    assert [t.addr for t in b.targets()] == [("a", 1), ("b", 1)]  # x serves the other byte order
    picks = Counter()
    for _ in range(400):  # calls that never finish: in flight piles up by weight
        picks[b.pick([]).addr[0]] += 1
    assert picks["a"] == 100 and picks["b"] == 300
    a = b.targets()[0]
    assert b.pick([a]).addr == ("b", 1)  # avoids what it tried where it can
    assert b.pick(b.targets()) is not None


def test_dns_target(server):
    with rpcd_client.Client(f"dns:///localhost:{server.port}", byteorder=server.byteorder) as c:
        wait_until(lambda: c.addresses != [], what="localhost to resolve")
        assert ("127.0.0.1", server.port) in c.addresses
        for i in range(20):
            assert c.call("ping", i) == i


def test_dns_name_that_does_not_exist_waits():
    with rpcd_client.Client("dns:///no-such-host.invalid:1", timeout=0.5) as c:
        with pytest.raises(rpcd_client.CallTimeoutError):
            c.call("ping")


class Etcd:
    """A real etcd on free 127.0.0.1 ports, spoken to through its JSON gateway."""

    def __init__(self, binary: str, data: Path) -> None:
        self.port, peer = free_port(), free_port()
        client, peer_url = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{peer}"
        self.log = open(data.parent / "etcd.log", "wb")
        self.proc = subprocess.Popen(
            [binary, "--data-dir", str(data), "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
             "--initial-cluster", f"default={peer_url}"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_until(self._ready, timeout=20, what="etcd to serve")

    def _ready(self) -> bool:
        assert self.proc.poll() is None, "etcd exited"
        try:
            self.post("/v3/kv/range", {"key": _b64(b"/")})
            return True
        except (OSError, http.client.HTTPException):
            return False

    def post(self, path: str, body: dict) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("POST", path, json.dumps(body))
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise http.client.HTTPException(f"{path}: {resp.status} {data!r}")
        return json.loads(data)

    def register(self, service: str, srv, weight: int = 1, byteorder: str = "") -> None:
        value = {"addr": srv.address, "byteorder": byteorder or srv.byteorder, "weight": weight,
                 "version": "test", "started": "2026-01-01T00:00:00Z"}
        self.put(f"/rpcd/{service}/{srv.address}", json.dumps(value))

    def put(self, key: str, value: str) -> None:
        self.post("/v3/kv/put", {"key": _b64(key.encode()), "value": _b64(value.encode())})

    def delete(self, key: str) -> None:
        self.post("/v3/kv/deleterange", {"key": _b64(key.encode())})

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[Etcd]:
    binary = shutil.which("etcd") or ("/usr/bin/etcd" if os.path.exists("/usr/bin/etcd") else None)
    if binary is None:
        if os.environ.get("RPCD_REQUIRE_ETCD") == "1":
            pytest.fail("RPCD_REQUIRE_ETCD=1 but etcd is not installed")
        pytest.skip("etcd is not installed: apt-get install etcd-server")
    e = Etcd(binary, tmp_path / "etcd")
    yield e
    e.stop()


def test_etcd_target(etcd, make_server):
    a, b = make_server("-workers=1"), make_server("-workers=1")
    etcd.register("svc", a)
    etcd.register("svc", b, byteorder="big" if a.byteorder == "little" else "little")  # skipped
    etcd.put("/rpcd/svc/junk", "not json")
    etcd.register("other", b)
    target = f"etcd://127.0.0.1:{free_port()},127.0.0.1:{etcd.port}/svc"
    with rpcd_client.Client(target, byteorder=a.byteorder, timeout=10) as c:
        assert c.call("ping", "a") == "a"  # waits for the first read
        assert c.addresses == [("127.0.0.1", a.port)]
        resolver = c._balancer.resolver

        etcd.register("svc", b)
        resolver.refresh()
        wait_until(lambda: len(c.addresses) == 2, what="b to join")
        etcd.delete(f"/rpcd/svc/{a.address}")
        resolver.refresh()
        wait_until(lambda: c.addresses == [("127.0.0.1", b.port)], what="a to leave")
        assert c.call("ping", "b") == "b"

        etcd.stop()  # an unreachable registry keeps the list
        looked = resolver.lookups
        resolver.refresh()
        wait_until(lambda: resolver.lookups > looked, what="a lookup with etcd down")
        assert c.addresses == [("127.0.0.1", b.port)]
        assert c.call("ping", "still") == "still"


def test_etcd_empty_list_waits(etcd, make_server):
    a = make_server("-workers=1")
    target = f"etcd://127.0.0.1:{etcd.port}/empty"
    with rpcd_client.Client(target, byteorder=a.byteorder) as c:
        started = time.monotonic()
        with pytest.raises(rpcd_client.CallTimeoutError):
            c.call("ping", timeout=0.5)
        assert time.monotonic() - started >= 0.5
        etcd.register("empty", a)
        assert c.call("ping", "late", timeout=10) == "late"  # waiting refreshes the list


def test_async_etcd_target(etcd, make_server):
    import asyncio

    a = make_server("-workers=1")
    etcd.register("svc", a)

    async def main():
        async with rpcd_client.AsyncClient(f"etcd://127.0.0.1:{etcd.port}/svc", byteorder=a.byteorder) as c:
            assert await asyncio.gather(*[c.call("ping", i) for i in range(50)]) == list(range(50))

    asyncio.run(asyncio.wait_for(main(), 30))
