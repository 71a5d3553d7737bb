"""Which endpoint a call goes to: of two random endpoints, the one with fewer
calls in flight per unit of weight, avoiding those the call already tried
where it can. Shared by both clients; safe to use from any thread."""

from __future__ import annotations

import threading
from random import randrange as _randrange
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ._targets import Endpoint, Resolver


class Target:
    """One endpoint and the client's connections to it (``pool``, whatever
    the client keeps there). ``inflight`` changes under the balancer's lock."""

    __slots__ = ("addr", "weight", "inflight", "pool")

    def __init__(self, addr: Tuple[str, int], weight: int, pool: Any) -> None:
        self.addr = addr
        self.weight = weight
        self.inflight = 0
        self.pool = pool


class Balancer:
    """Follows a Resolver's list, keeping the pool of every endpoint that
    stays. ``make_pool(addr)`` builds a new endpoint's pool; ``retire(pool)``
    is called for each endpoint that left the list."""

    def __init__(
        self,
        resolver: Resolver,
        byteorder: str,
        make_pool: Callable[[Tuple[str, int]], Any],
        retire: Callable[[Any], None],
    ) -> None:
        self.resolver = resolver
        self._byteorder = byteorder
        self._make_pool = make_pool
        self._retire = retire
        self._lock = threading.Lock()
        self._version = -1
        self._by_addr: Dict[Tuple[str, int], Target] = {}
        self._targets: List[Target] = []

    def targets(self) -> List[Target]:
        """The current endpoints."""
        self._follow()
        return self._targets

    def pick(self, tried: Sequence[Target]) -> Optional[Target]:
        """Chooses the endpoint for an attempt and counts the attempt in
        flight there (``done`` uncounts it); None when the list is empty."""
        targets = self.targets()
        fresh = [t for t in targets if t not in tried] or targets if tried else targets
        n = len(fresh)
        if n == 0:
            return None
        if n == 1:
            best = fresh[0]
        else:
            i, j = _randrange(n), _randrange(n - 1)
            a, b = fresh[i], fresh[j + (j >= i)]  # two distinct endpoints
            best = a if a.inflight * b.weight <= b.inflight * a.weight else b
        with self._lock:
            best.inflight += 1
        return best

    def done(self, target: Target) -> None:
        with self._lock:
            target.inflight -= 1

    def close(self) -> List[Target]:
        """Stops following the resolver and returns every endpoint."""
        self.resolver.close()
        with self._lock:
            targets, self._targets, self._by_addr = self._targets, [], {}
            self._version = -2  # never follows again
        return targets

    def _follow(self) -> None:
        version = self.resolver.version
        if version == self._version:
            return
        left = []
        with self._lock:
            if self._version == -2 or version == self._version:
                return
            self._version = version
            by_addr: Dict[Tuple[str, int], Target] = {}
            for e in self.resolver.endpoints():
                if not self._serves(e) or (e.host, e.port) in by_addr:
                    continue
                addr = (e.host, e.port)
                t = self._by_addr.get(addr) or Target(addr, e.weight, self._make_pool(addr))
                t.weight = e.weight
                by_addr[addr] = t
            left = [t for a, t in self._by_addr.items() if a not in by_addr]
            self._by_addr, self._targets = by_addr, list(by_addr.values())
        for t in left:
            self._retire(t.pool)

    def _serves(self, e: Endpoint) -> bool:
        return e.byteorder is None or e.byteorder == self._byteorder
