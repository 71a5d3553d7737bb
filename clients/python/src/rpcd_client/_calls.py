"""What both clients do around the I/O: their settings and endpoints, the
frames a call sends, the attempts of one call (which requests are still to
send, what each got, whether another attempt is allowed), and the results a
caller sees. Nothing here touches a socket or waits."""

from __future__ import annotations

import time
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

from . import _resend
from ._balance import Balancer, Target
from ._protocol import (
    DEFAULT_MAX_FRAME,
    HELLO_METHOD,
    Address,
    Answer,
    encode_request,
    header_struct,
)
from ._targets import make_resolver
from .errors import CallTimeoutError, ClientClosedError, RpcdConnectionError

#: A call in a batch: ``(method, params)``.
Call = Tuple[str, Any]

# How many times a call is sent again after goodbyes, beyond its retries.
MAX_GOODBYE_RESENDS = 10


class ClientCore:
    """The settings and endpoints of a client; the arguments are Client's.
    A subclass names in ``_pool_type`` the connections it keeps to one
    endpoint: built as ``_pool_type(addr, conns)``, and told by ``retire()``
    to close its idle ones once the endpoint has left the target."""

    _pool_type: Any

    def __init__(
        self,
        address: Union[Address, Sequence[Address]],
        *,
        byteorder: str = "little",
        timeout: float = 5.0,
        connect_timeout: Optional[float] = None,
        read_timeout: float = 60.0,
        conns: int = 2,
        retries: int = 2,
        max_frame: int = DEFAULT_MAX_FRAME,
        trust_clean_close: bool = True,
    ) -> None:
        if conns < 1:
            raise ValueError("conns must be at least 1")
        self._header = header_struct(byteorder)
        self._timeout = timeout
        self._connect_timeout = timeout if connect_timeout is None else connect_timeout
        self._read_timeout = read_timeout
        self._retries = max(retries, 0)
        self._max_frame = max_frame
        self._trust_clean_close = trust_clean_close
        self._hello = encode_request(self._header, HELLO_METHOD, None)
        self._closed = False
        pools = self._pool_type
        self._balancer = Balancer(make_resolver(address), byteorder, lambda addr: pools(addr, conns), pools.retire)

    @property
    def addresses(self) -> List[Tuple[str, int]]:
        """The endpoints calls go to now."""
        return [t.addr for t in self._balancer.targets()]

    def _frames(self, calls: Iterable[Call]) -> List[bytes]:
        return [encode_request(self._header, m, p) for m, p in calls]

    def _attempts(self, frames: List[bytes], idempotent: bool, timeout: Optional[float]) -> "Attempts":
        return Attempts(frames, idempotent, self._timeout if timeout is None else timeout, self._retries)

    def _pick_now(self, tried: Sequence[Target], deadline: float) -> Tuple[Optional[Target], float]:
        """The endpoint for the next attempt, or None and how long the
        caller may wait for the list to change before it asks again."""
        if self._closed:
            raise ClientClosedError("client is closed")
        target = self._balancer.pick(tried)
        if target is not None:
            return target, 0.0
        left = deadline - time.monotonic()
        if left <= 0:
            raise CallTimeoutError("no endpoint to call within the call's timeout")
        self._balancer.resolver.refresh()
        return None, left

    def _ends_call(self, run: "Attempts", target: Target, error: BaseException) -> bool:
        """Rules on an attempt on target that failed with error before its
        answers: after a connection error the call tries another endpoint
        until it has tried each; any other error fails the requests left.
        True once the call is over."""
        if not isinstance(error, RpcdConnectionError):
            run.fail(error)
            return True
        self._balancer.resolver.refresh()
        return run.unreachable(target, error, self._balancer.targets())


def result_of(outcome: Any, full: bool) -> Any:
    """What call returns for one outcome; raises an error outcome."""
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome if full else outcome.result


def results_of(outcomes: Sequence[Any], full: bool, return_exceptions: bool) -> List[Any]:
    """What call_many returns: each result in order, each exception in its
    call's place with return_exceptions, else the first one raised."""
    results: List[Any] = []
    for o in outcomes:
        if isinstance(o, BaseException) and return_exceptions:
            results.append(o)
        else:
            results.append(result_of(o, full))
    return results


class Attempts:
    """One call's requests through their attempts. ``todo`` holds the
    indexes of the requests the next attempt sends; ``outcomes`` what each
    request got so far (an Answer or an exception)."""

    def __init__(self, frames: List[bytes], idempotent: bool, timeout: float, retries: int) -> None:
        self.deadline = time.monotonic() + timeout
        self.outcomes: List[Any] = [None] * len(frames)
        self.todo = list(range(len(frames)))
        self.resends = _resend.Resends(retries, MAX_GOODBYE_RESENDS)
        self._frames = frames
        self._idempotent = idempotent

    def frames(self) -> List[bytes]:
        """The frames the next attempt sends, in order."""
        return [self._frames[i] for i in self.todo]

    def fail(self, error: BaseException) -> List[Any]:
        """Gives error to every request left; returns the outcomes."""
        return _resend.fill(self.outcomes, self.todo, error)

    def unreachable(self, target: Target, error: BaseException, targets: Sequence[Target]) -> bool:
        """Records that target could not be reached; True, with every request
        left failed, once each of targets has been tried."""
        if not self.resends.unreachable(target, error, targets):
            return False
        self.fail(self.resends.connect_error())
        return True

    def settle(self, target: Target, got: Sequence[Optional[Union[Answer, BaseException]]]) -> bool:
        """Records what each request of the attempt on target got, in order
        (None: no answer within the call's timeout); whether the requests
        that may be sent again go out in another attempt."""
        again = []
        for i, outcome in zip(self.todo, got):
            if outcome is None:
                outcome = CallTimeoutError("no answer within the call's timeout")
            elif isinstance(outcome, BaseException) and _resend.should_resend(outcome, self._idempotent):
                again.append(i)
            self.outcomes[i] = outcome
        self.todo = again
        if not again or time.monotonic() >= self.deadline:
            return False
        return self.resends.resend(target, [self.outcomes[i] for i in again])

    def finish(self) -> List[Any]:
        """The outcomes, once no attempt is left."""
        for i in self.todo:
            self.outcomes[i] = _resend.final_error(self.outcomes[i])
        return self.outcomes
