"""When a call is sent again, checked against a scripted peer that ends each
connection in a chosen way (rpcd ends connections only cleanly, unless a
worker is killed, so the other endings need a stand-in)."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from typing import Iterator, List

import pytest

import rpcd_client

HEADER = struct.Struct("<I")


def read_frame(conn: socket.socket) -> bytes:
    def exact(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    (n,) = HEADER.unpack(exact(4))
    return exact(n)


def frame(msg: object) -> bytes:
    body = json.dumps(msg).encode()
    return HEADER.pack(len(body)) + body


def pong(body: bytes) -> bytes:
    return frame({"out": "pong", "result": json.loads(body)["params"]})


UNKNOWN_HELLO = frame({"out": "error", "result": {"code": "unknown_method", "message": "no method rpcd.hello"}})
GOODBYE_HELLO = frame({"out": "rpcd.hello", "result": {"goodbye": True}})
GOODBYE = frame({"out": "rpcd.goodbye", "result": {"reason": "drain"}})


class Peer:
    """Accepts connections on 127.0.0.1 and ends the i-th one as endings[i]
    says, after reading one request: "close" (a clean end of stream),
    "reset" (RST), "half" (half an answer, then a clean end), "goodbye" (the
    goodbye frame, then a clean end), "mute" (a clean end before answering
    the hello), "bye-at-once" (the goodbye right after the hello's answer);
    connections past the list answer pings
    until the client leaves. A hello is answered as an older rpcd does
    (unknown_method), or with the promise of a goodbye when goodbye is set."""

    def __init__(self, endings: List[str], goodbye: bool = False) -> None:
        self.endings = endings
        self.hello = GOODBYE_HELLO if goodbye else UNKNOWN_HELLO
        self.hellos = 0
        self.accepted = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            ending = self.endings[self.accepted] if self.accepted < len(self.endings) else "serve"
            self.accepted += 1
            threading.Thread(target=self._handle, args=(conn, ending), daemon=True).start()

    def _handle(self, conn: socket.socket, ending: str) -> None:
        with conn:
            try:
                body = read_frame(conn)
                if json.loads(body)["in"] == "rpcd.hello":
                    self.hellos += 1
                    if ending == "mute":
                        return
                    if ending == "bye-at-once":
                        conn.sendall(self.hello + GOODBYE)
                        return
                    conn.sendall(self.hello)
                    body = read_frame(conn)
                if ending == "serve":
                    while True:
                        conn.sendall(pong(body))
                        body = read_frame(conn)
                if ending == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                elif ending == "half":
                    conn.sendall(pong(body)[:6])
                elif ending == "goodbye":
                    conn.sendall(GOODBYE)
            except (EOFError, OSError):
                pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def peer() -> Iterator:
    peers: List[Peer] = []

    def make(*endings: str, goodbye: bool = False) -> Peer:
        p = Peer(list(endings), goodbye)
        peers.append(p)
        return p

    yield make
    for p in peers:
        p.close()


def test_clean_end_is_sent_again(peer):
    p = peer("close", "close")
    with rpcd_client.Client(p.address, conns=1) as c:
        assert c.call("ping", "x") == "x"
    assert p.accepted == 3


def test_clean_end_not_trusted(peer):
    p = peer("close")
    with rpcd_client.Client(p.address, conns=1, trust_clean_close=False) as c:
        with pytest.raises(rpcd_client.MaybeSentError):
            c.call("ping", "x")
        assert c.call("ping", "y", idempotent=True) == "y"


@pytest.mark.parametrize("ending", ["reset", "half"])
def test_maybe_run_is_not_sent_again(peer, ending):
    p = peer(ending, ending)
    with rpcd_client.Client(p.address, conns=1) as c:
        with pytest.raises(rpcd_client.MaybeSentError):
            c.call("ping", "x")
        assert p.accepted == 1
        assert c.call("ping", "y", idempotent=True) == "y"
    assert p.accepted == 3


def test_retries_are_bounded(peer):
    p = peer(*["close"] * 10)
    with rpcd_client.Client(p.address, conns=1, retries=2) as c:
        with pytest.raises(rpcd_client.RpcdConnectionError) as e:
            c.call("ping", "x")
        assert not isinstance(e.value, rpcd_client.MaybeSentError)
    assert p.accepted == 3


def test_async_rules(peer):
    p = peer("close", "reset", "reset")

    async def main():
        async with rpcd_client.AsyncClient(p.address, conns=1) as c:
            with pytest.raises(rpcd_client.MaybeSentError):
                await c.call("ping", "x")  # clean end, sent again, then a reset
            assert p.accepted == 2
            assert await c.call("ping", "y", idempotent=True) == "y"
            assert p.accepted == 4

    asyncio.run(asyncio.wait_for(main(), 30))


def test_goodbye_resends_beyond_retries(peer):
    p = peer("goodbye", "goodbye", "goodbye", "goodbye", goodbye=True)
    with rpcd_client.Client(p.address, conns=1, retries=0, trust_clean_close=False) as c:
        assert c.call("ping", "x") == "x"  # not idempotent
    assert p.accepted == 5 and p.hellos == 5


def test_clean_end_without_goodbye_is_maybe_run(peer):
    p = peer("close", goodbye=True)
    with rpcd_client.Client(p.address, conns=1) as c:
        with pytest.raises(rpcd_client.MaybeSentError):
            c.call("ping", "x")
        assert c.call("ping", "y") == "y"
    assert p.accepted == 2


def test_async_goodbye(peer):
    p = peer("goodbye", "close", "goodbye", goodbye=True)

    async def main():
        async with rpcd_client.AsyncClient(p.address, conns=1, retries=0) as c:
            with pytest.raises(rpcd_client.MaybeSentError):
                await c.call("ping", "x")  # a goodbye, then a clean end without one
            assert p.accepted == 2
            assert await c.call("ping", "y") == "y"
            assert p.accepted == 4 and p.hellos == 4

    asyncio.run(asyncio.wait_for(main(), 30))


def test_hello_unanswered_carries_no_call(peer):
    mute = peer(*["mute"] * 10)
    with rpcd_client.Client(mute.address, conns=1) as c:
        with pytest.raises(rpcd_client.RpcdConnectionError) as e:
            c.call("ping", "x")
        assert not isinstance(e.value, rpcd_client.MaybeSentError)
    good = peer()
    for i in range(4):
        with rpcd_client.Client([mute.address, good.address], conns=1, retries=0) as c:
            assert c.call("ping", i) == i


def test_goodbye_with_the_hello_redials(peer):
    p = peer("bye-at-once", "bye-at-once", "serve", "bye-at-once", goodbye=True)
    with rpcd_client.Client(p.address, conns=1, retries=0, trust_clean_close=False) as c:
        assert c.call("ping", "x") == "x"
    assert p.accepted == 3

    async def main():
        async with rpcd_client.AsyncClient(p.address, conns=1, retries=0, trust_clean_close=False) as c:
            assert await c.call("ping", "y") == "y"

    asyncio.run(asyncio.wait_for(main(), 30))
    assert p.accepted == 5
