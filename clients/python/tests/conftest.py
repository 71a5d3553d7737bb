"""Fixtures that run the real rpcd binary on 127.0.0.1.

The binary is $RPCD_BINARY, or built once per session with ``go build`` from
the repository root."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> None:
    """Polls condition until it holds; fails the test after timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw_ping(port: int, byteorder: str, timeout: float = 1.0) -> bool:
    """One ping over a fresh socket, the articles' way; True on the pong."""
    fmt = "<I" if byteorder == "little" else ">I"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            body = json.dumps({"in": "ping", "params": "ready?"}).encode()
            s.sendall(struct.pack(fmt, len(body)) + body)
            data = b""
            while len(data) < 4 or len(data) < 4 + struct.unpack(fmt, data[:4])[0]:
                chunk = s.recv(4096)
                if not chunk:
                    return False
                data += chunk
            return json.loads(data[4:]) == {"out": "pong", "result": "ready?"}
    except OSError:
        return False


class PingLoad:
    """Threads that call ping on client, each until its first failure, for
    as long as the ``with`` block runs (60 s at the most). ``answered``
    counts the answers, ``errors`` holds the failures."""

    def __init__(self, client: Any, threads: int = 8) -> None:
        self.answered = 0
        self.errors: List[str] = []
        self._client = client
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._threads = [threading.Thread(target=self._load, args=(t,)) for t in range(threads)]

    def _load(self, t: int) -> None:
        i = 0
        deadline = time.monotonic() + 60
        while not self._done.is_set() and time.monotonic() < deadline:
            i += 1
            try:
                assert self._client.call("ping", f"{t}-{i}") == f"{t}-{i}"  # not idempotent
            except Exception as exc:  # noqa: BLE001 - every failure is recorded
                self.errors.append(repr(exc))
                return
            with self._lock:
                self.answered += 1

    def calls_go_on(self, n: int, what: str) -> None:
        """Waits for n more answers, or for a failure."""
        before = self.answered
        wait_until(lambda: self.answered >= before + n or bool(self.errors), what=what)

    def __enter__(self) -> "PingLoad":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        for t in self._threads:
            t.join(30)


class Server:
    """One rpcd master and its workers, listening on a free 127.0.0.1 port."""

    def __init__(self, binary: str, byteorder: str, flags: List[str], log_path: Path) -> None:
        self.byteorder = byteorder
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [binary, f"-listen={self.address}", f"-byteorder={byteorder}", *flags],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while not raw_ping(self.port, byteorder):
            if self.proc.poll() is not None or time.monotonic() >= deadline:
                self.stop()
                pytest.fail(f"rpcd did not answer a ping on {self.address}:\n{self.log()}")
            time.sleep(0.02)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def count(self, line: str) -> int:
        """How many log lines contain line."""
        return self.log().count(line)

    def reload(self) -> None:
        os.kill(self.pid, signal.SIGHUP)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


@pytest.fixture(scope="session")
def rpcd_binary(tmp_path_factory: pytest.TempPathFactory) -> str:
    given = os.environ.get("RPCD_BINARY")
    if given:
        return given
    out = tmp_path_factory.mktemp("bin") / "rpcd"
    subprocess.run(["go", "build", "-o", str(out), "./cmd/rpcd"], cwd=REPO_ROOT, check=True)
    return str(out)


@pytest.fixture(scope="session", params=["little", "big"])
def byteorder(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def server(rpcd_binary: str, byteorder: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A shared rpcd with two workers, in each byte order."""
    srv = Server(rpcd_binary, byteorder, ["-workers=2"], tmp_path_factory.mktemp("rpcd") / "rpcd.log")
    yield srv
    srv.stop()


@pytest.fixture
def make_server(rpcd_binary: str, byteorder: str, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Starts an rpcd of the test's own with extra flags; stopped at the end."""
    started: List[Server] = []

    def make(*flags: str) -> Server:
        srv = Server(rpcd_binary, byteorder, list(flags), tmp_path / f"rpcd{len(started)}.log")
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()
