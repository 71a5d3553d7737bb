#!/usr/bin/env python3
"""Calls per second of rpcd_client against ping, beside raw sockets doing the
same work, one row per way of calling.

    python3 clients/python/bench.py                  # builds and starts rpcd
    python3 clients/python/bench.py --addr 127.0.0.1:8080 --seconds 5

Without --addr it starts rpcd on a free 127.0.0.1 port ($RPCD_BINARY, or
``go build`` from the repository root) and stops it at the end. Every row
runs for --seconds; the client and the server share this machine's CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, List, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "src"))

import rpcd_client  # noqa: E402


class Raw:
    """One socket, the articles' protocol with exact reads."""

    def __init__(self, addr: Tuple[str, int], fmt: str) -> None:
        self.sock = socket.create_connection(addr)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.header = struct.Struct(fmt)
        self.buf = b""

    def send(self, method: str, params: object) -> None:
        body = json.dumps({"in": method, "params": params}).encode()
        self.sock.sendall(self.header.pack(len(body)) + body)

    def recv(self) -> object:
        while True:
            if len(self.buf) >= 4:
                (n,) = self.header.unpack_from(self.buf)
                if len(self.buf) >= 4 + n:
                    body, self.buf = self.buf[4 : 4 + n], self.buf[4 + n :]
                    return json.loads(body)["result"]
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk

    def call(self, method: str, params: object) -> object:
        self.send(method, params)
        return self.recv()


def timed_threads(threads: int, seconds: float, work: Callable[[int, Callable[[], bool]], int]) -> float:
    """Runs work(thread_index, keep_going) in each thread; calls per second."""
    counts = [0] * threads
    end = time.monotonic() + seconds

    def run(i: int) -> None:
        counts[i] = work(i, lambda: time.monotonic() < end)

    start = time.monotonic()
    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts) / (time.monotonic() - start)


def check(got: object, want: object) -> None:
    if got != want:
        raise SystemExit(f"wrong answer {got!r}, want {want!r}")


def sync_rows(addr: str, byteorder: str, seconds: float, threads: int, batch: int) -> List[Tuple[str, float, float]]:
    host, port = rpcd_client._protocol.parse_addresses(addr)[0]
    fmt = "<I" if byteorder == "little" else ">I"
    rows = []

    def raw_calls(i: int, go: Callable[[], bool]) -> int:
        r, n = Raw((host, port), fmt), 0
        while go():
            check(r.call("ping", n), n)
            n += 1
        r.sock.close()
        return n

    def raw_batches(i: int, go: Callable[[], bool]) -> int:
        r, n = Raw((host, port), fmt), 0
        while go():
            for k in range(batch):
                r.send("ping", k)
            for k in range(batch):
                check(r.recv(), k)
            n += batch
        r.sock.close()
        return n

    ways = (
        ("sequential, 1 thread", 1, 2),
        (f"{threads} threads, one client, 2 conns", threads, 2),
        (f"{threads} threads, one client, {threads} conns", threads, threads),
    )
    for label, nthreads, conns in ways:
        with rpcd_client.Client(addr, byteorder=byteorder, conns=conns) as c:

            def client_calls(i: int, go: Callable[[], bool]) -> int:
                n = 0
                while go():
                    check(c.call("ping", n), n)
                    n += 1
                return n

            client = timed_threads(nthreads, seconds, client_calls)
        raw = timed_threads(nthreads, seconds, raw_calls)
        rows.append((label, client, raw))

    with rpcd_client.Client(addr, byteorder=byteorder, conns=1) as c:

        def client_batches(i: int, go: Callable[[], bool]) -> int:
            n, calls, want = 0, [("ping", k) for k in range(batch)], list(range(batch))
            while go():
                check(c.call_many(calls), want)
                n += batch
            return n

        client = timed_threads(1, seconds, client_batches)
    rows.append((f"call_many of {batch}, 1 connection", client, timed_threads(1, seconds, raw_batches)))
    return rows


async def async_row(addr: str, byteorder: str, seconds: float, tasks: int) -> Tuple[str, float, float]:
    host, port = rpcd_client._protocol.parse_addresses(addr)[0]
    header = struct.Struct("<I" if byteorder == "little" else ">I")

    async def timed(work: Callable[[int, float], "asyncio.Future[int]"]) -> float:
        start = time.monotonic()
        end = start + seconds
        counts = await asyncio.gather(*[work(i, end) for i in range(tasks)])
        return sum(counts) / (time.monotonic() - start)

    async with rpcd_client.AsyncClient(addr, byteorder=byteorder, conns=2) as c:

        async def client_task(i: int, end: float) -> int:
            n = 0
            while time.monotonic() < end:
                check(await c.call("ping", n), n)
                n += 1
            return n

        client = await timed(client_task)

    async def raw_task(i: int, end: float) -> int:
        reader, writer = await asyncio.open_connection(host, port)
        n = 0
        while time.monotonic() < end:
            body = json.dumps({"in": "ping", "params": n}).encode()
            writer.write(header.pack(len(body)) + body)
            (length,) = header.unpack(await reader.readexactly(4))
            check(json.loads(await reader.readexactly(length))["result"], n)
            n += 1
        writer.close()
        return n

    raw = await timed(raw_task)
    return (f"asyncio, {tasks} tasks, 2 conns", client, raw)


def start_rpcd(byteorder: str) -> Tuple[subprocess.Popen, str, tempfile.TemporaryDirectory]:
    tmp = tempfile.TemporaryDirectory()
    binary = os.environ.get("RPCD_BINARY")
    if not binary:
        binary = os.path.join(tmp.name, "rpcd")
        subprocess.run(["go", "build", "-o", binary, "./cmd/rpcd"], cwd=HERE.parents[1], check=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    addr = f"127.0.0.1:{port}"
    proc = subprocess.Popen([binary, f"-listen={addr}", f"-byteorder={byteorder}"], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while True:
        try:
            with rpcd_client.Client(addr, byteorder=byteorder, timeout=1) as c:
                c.call("ping")
            return proc, addr, tmp
        except rpcd_client.RpcdError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("rpcd did not start")
            time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--addr", help="an rpcd already running; default: start one")
    ap.add_argument("--byteorder", default="little", choices=["little", "big"])
    ap.add_argument("--seconds", type=float, default=2.0, help="per row")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--tasks", type=int, default=64)
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args()
    proc = None
    addr = args.addr
    if addr is None:
        proc, addr, tmp = start_rpcd(args.byteorder)
    try:
        rows = sync_rows(addr, args.byteorder, args.seconds, args.threads, args.batch)
        rows.append(asyncio.run(async_row(addr, args.byteorder, args.seconds, args.tasks)))
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
    print(f"rpcd ping, {args.seconds:g}s per row, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"{'':58} {'rpcd_client':>12} {'raw sockets':>12}")
    print("(raw sockets: one connection per thread or task)")
    for label, client, raw in rows:
        print(f"{label:58} {client:10,.0f}/s {raw:10,.0f}/s")


if __name__ == "__main__":
    main()
