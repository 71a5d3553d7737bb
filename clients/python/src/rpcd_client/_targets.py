"""Targets: where the endpoints of a client come from.

- ``"host:port"``, ``"h1:p1,h2:p2"``, ``(host, port)`` or a list of such: a
  fixed list.
- ``"dns:///name:port"``: every A/AAAA record of name, re-resolved every 30 s
  (±20 %) and, at most once a second, after a connection failure. A name
  that does not exist is an empty list; any other failure keeps the last list.
- ``"etcd://host:port[,host:port...]/SERVICE"``: the endpoints registered in
  etcd under ``PREFIX/SERVICE/`` (``?prefix=`` overrides the default
  ``/rpcd``), read through etcd's v3 JSON gateway every 10 s (±20 %) and after
  failures. Each value is JSON with at least ``addr`` and ``weight``; a value
  whose ``byteorder`` differs from the client's is skipped. A registry that
  cannot be reached keeps the last list.

A dynamic target is kept current by one daemon thread per client, which both
the threaded and the asyncio client read from.
"""

from __future__ import annotations

import base64
import http.client
import json
import random
import socket
import threading
import time
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union
from urllib.parse import parse_qs

from ._protocol import Address, parse_addresses, split_host_port

DNS_INTERVAL = 30.0
ETCD_INTERVAL = 10.0
ETCD_PREFIX = "/rpcd"
# A refresh after failures resolves at most this often.
MIN_REFRESH = 1.0
# The longest one DNS or etcd request may take.
REQUEST_TIMEOUT = 5.0


class Endpoint(NamedTuple):
    """One server behind a target."""

    host: str
    port: int
    weight: int = 1
    byteorder: Optional[str] = None  # as registered; None when unknown


class Resolver:
    """The current endpoint list of a target. Safe to share between threads;
    ``version`` grows by one on every new list."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._list: List[Endpoint] = []
        self.version = 0

    def endpoints(self) -> List[Endpoint]:
        with self._cond:
            return self._list

    def wait_change(self, version: int, timeout: float) -> None:
        """Returns once the list is newer than version, or after timeout."""
        with self._cond:
            self._cond.wait_for(lambda: self.version != version, max(timeout, 0))

    def refresh(self) -> None:
        """Asks for a new resolution soon, after a connection failure."""

    def close(self) -> None:
        """Stops the resolution; the last list stays."""

    def _set(self, endpoints: List[Endpoint]) -> None:
        with self._cond:
            if endpoints == self._list and self.version:
                return
            self._list = endpoints
            self.version += 1
            self._cond.notify_all()


class StaticResolver(Resolver):
    def __init__(self, endpoints: List[Endpoint]) -> None:
        super().__init__()
        self._set(endpoints)


class PollingResolver(Resolver):
    """Calls ``lookup`` on a daemon thread every interval (±20 %) and when
    refreshed; a lookup that returns None keeps the last list. ``lookups``
    counts the lookups done."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.lookups = 0
        self._interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rpcd-{type(self).__name__}", daemon=True)
        self._thread.start()

    def lookup(self) -> Optional[List[Endpoint]]:
        raise NotImplementedError

    def refresh(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            found = self.lookup()
            if found is not None:
                self._set(sorted(set(found)))
            self.lookups += 1
            self._wake.clear()
            self._wake.wait(self._interval * random.uniform(0.8, 1.2))
            # Refreshes come after failures, which come in bursts.
            self._stop.wait(max(0.0, started + MIN_REFRESH - time.monotonic()))


class DNSResolver(PollingResolver):
    def __init__(self, host: str, port: int, interval: float = DNS_INTERVAL) -> None:
        self.host, self.port = host, port
        super().__init__(interval)

    def lookup(self) -> Optional[List[Endpoint]]:
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
                return []
            return None
        return [Endpoint(str(info[4][0]), self.port) for info in infos]


class EtcdResolver(PollingResolver):
    def __init__(self, registries: List[Tuple[str, int]], service: str, prefix: str, interval: float = ETCD_INTERVAL):
        self.registries = registries
        self.key = f"{prefix.rstrip('/')}/{service}/".encode()
        super().__init__(interval)

    def lookup(self) -> Optional[List[Endpoint]]:
        for host, port in random.sample(self.registries, len(self.registries)):
            try:
                kvs = self._range(host, port)
            except (OSError, http.client.HTTPException, ValueError):
                continue
            return [e for e in (_endpoint_of(kv.get("value", "")) for kv in kvs) if e is not None]
        return None

    def _range(self, host: str, port: int) -> List[Any]:
        body = json.dumps({"key": _b64(self.key), "range_end": _b64(prefix_end(self.key))})
        conn = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)
        try:
            conn.request("POST", "/v3/kv/range", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise ValueError(f"etcd range: HTTP {resp.status}: {data[:200]!r}")
        kvs = json.loads(data).get("kvs", [])
        if not isinstance(kvs, list):
            raise ValueError("etcd range: kvs is not a list")
        return kvs


def prefix_end(key: bytes) -> bytes:
    """The range_end that makes an etcd range cover every key beginning key."""
    end = bytearray(key)
    while end and end[-1] == 0xFF:
        end.pop()
    if not end:
        return b"\0"
    end[-1] += 1
    return bytes(end)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _endpoint_of(value: str) -> Optional[Endpoint]:
    """The endpoint a registration value names; None for one that is not of
    the documented shape."""
    try:
        reg = json.loads(base64.b64decode(value))
        host, port = split_host_port(reg["addr"])
        weight = int(reg.get("weight") or 1)
    except (ValueError, KeyError, TypeError):
        return None
    order = reg.get("byteorder")
    return Endpoint(host, port, max(weight, 1), order if isinstance(order, str) else None)


def make_resolver(target: Union[Address, Sequence[Address]]) -> Resolver:
    """The Resolver of a target (see the module doc)."""
    if isinstance(target, str) and "://" in target:
        scheme, _, rest = target.partition("://")
        authority, _, name = rest.partition("/")
        name, _, query = name.partition("?")
        if scheme == "dns":
            if authority:
                raise ValueError(f"dns target takes no DNS server: {target!r}")
            return DNSResolver(*split_host_port(name))
        if scheme == "etcd":
            if not name:
                raise ValueError(f"etcd target names no service: {target!r}")
            prefix = parse_qs(query).get("prefix", [ETCD_PREFIX])[0]
            return EtcdResolver(parse_addresses(authority), name, prefix)
        raise ValueError(f"unknown target scheme {scheme!r} in {target!r}")
    return StaticResolver([Endpoint(h, p) for h, p in parse_addresses(target)])
