"""The thread-safe synchronous client."""

from __future__ import annotations

import itertools
import select
import socket
import threading
import time
from collections import deque
from typing import Any, Deque, Iterable, List, Optional, Sequence, Tuple, Union

from . import _resend
from ._balance import Target
from ._calls import MAX_GOODBYE_RESENDS, Call, ClientCore, result_of, results_of
from ._protocol import (
    Answer,
    FrameSplitter,
    decode_answer,
    is_goodbye,
    offers_goodbye,
)
from .errors import (
    CallTimeoutError,
    ClientClosedError,
    ProtocolError,
    RpcdConnectionError,
    RpcdError,
)

# The longest a blocked read or write waits before it checks its call's
# deadline and the connection's read timeout.
_POLL = 0.5
# The longest a waiting call sleeps before it checks whether anyone is
# reading its connection; a lost hand-over costs at most this much.
_SLICE = 0.05

__all__ = ["Call", "Client", "MAX_GOODBYE_RESENDS"]


class _Pending:
    """One request on the wire, waiting for its answer. Its fields change
    under its connection's lock; the signal lock is released (once) to wake
    the waiting thread, for its answer or to make it the reader."""

    __slots__ = ("_signal", "signalled", "value", "error", "done", "abandoned")

    def __init__(self) -> None:
        self._signal = threading.Lock()
        self._signal.acquire()
        self.signalled = False
        self.value: Optional[Answer] = None
        self.error: Optional[BaseException] = None
        self.done = False
        self.abandoned = False  # its caller timed out; the answer is dropped

    def outcome(self) -> Union[Answer, BaseException, None]:
        """Its answer or error, once done."""
        return self.value if self.error is None else self.error


class _Conn:
    """One TCP connection. Calling threads write requests one at a time
    (under their slot's lock) and take turns reading: whichever waiting
    thread holds the read lock reads answers, matching each to the oldest
    pending request, until its own has come; then it hands the reading to
    the oldest caller still waiting. No thread reads an idle connection, so
    a close by the server is found by the next call, whose request the
    server then certainly did not read. ``goodbye``: the server answered the
    hello, and announces a graceful close."""

    def __init__(self, sock: socket.socket, client: "Client", splitter: FrameSplitter, goodbye: bool) -> None:
        self.sock = sock
        self.goodbye = goodbye
        self._client = client
        self._lock = threading.Lock()  # guards _pending, _open and each _Pending
        self._read_lock = threading.Lock()  # held by the thread reading answers
        self._pending: Deque[_Pending] = deque()
        self._open = True
        self._splitter = splitter
        self._last_read = time.monotonic()

    @property
    def open(self) -> bool:
        return self._open

    def idle(self) -> bool:
        with self._lock:
            return not self._pending

    def closed_while_idle(self) -> bool:
        """Whether the server ended this connection while no request was
        pending (nobody reads an idle connection): it is then readable."""
        with self._lock:
            if self._pending or not self._open:
                return not self._open
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def submit(self, frames: Sequence[bytes], entries: Sequence[_Pending], deadline: float) -> None:
        """Queues entries and writes their frames. The caller holds the
        slot's lock. Entries whose frames were not written in full are
        resolved here (not read, or the call's timeout)."""
        with self._lock:
            if not self._open:
                raise _resend.NotRead("connection already closed")
            if not self._pending:
                self._last_read = time.monotonic()  # the read timeout starts now
            self._pending.extend(entries)
        data = memoryview(b"".join(frames))
        sent, err = self._write(data, deadline)
        if err is None:
            return
        unsent = entries[_frames_within(frames, sent) :]
        with self._lock:
            # Still queued unless a reader has already ended the connection.
            mine = [e for e in unsent if not e.done]
            for e in mine:
                self._pending.remove(e)
                if isinstance(err, CallTimeoutError) and sent == 0:
                    # Nothing of these went out: the stream is intact for the others.
                    self._resolve(e, None, err)
                else:
                    self._resolve(e, None, _resend.NotRead(f"write request: {err}"))
        if isinstance(err, CallTimeoutError):
            if sent:
                self.end(err, unread=False)  # a partial frame: the stream is broken
        else:
            # The socket failed: the peer is gone. Whoever reads next finds
            # how the stream ended and rules on the requests written whole.
            with self._lock:
                self._open = False

    def _write(self, data: memoryview, deadline: float) -> Tuple[int, Optional[BaseException]]:
        sent = 0
        while sent < len(data):
            try:
                sent += self.sock.send(data[sent:])
            except socket.timeout:
                if time.monotonic() >= deadline:
                    return sent, CallTimeoutError("timed out writing the request")
            except OSError as exc:
                return sent, exc
        return sent, None

    def _resolve(self, e: _Pending, value: Optional[Answer], error: Optional[BaseException]) -> None:
        """Settles e and wakes its caller; the caller holds self._lock."""
        e.value, e.error, e.done = value, error, True
        self._wake(e)

    @staticmethod
    def _wake(e: _Pending) -> None:
        if not e.signalled:
            e.signalled = True
            e._signal.release()

    def wait(self, entry: _Pending, deadline: float) -> bool:
        """Waits for entry's answer, reading the connection when no other
        thread is; False once the deadline has passed without it."""
        while True:
            if entry.done:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                with self._lock:
                    if entry.done:
                        return True
                    entry.abandoned = True
                self._hand_over()  # in case the reading was handed to this call
                return False
            if self._read_lock.acquire(blocking=False):
                try:
                    self._read_until(entry, deadline)
                finally:
                    self._read_lock.release()
                    self._hand_over()
            elif entry._signal.acquire(timeout=min(left, _SLICE)):
                with self._lock:
                    entry.signalled = False

    def _hand_over(self) -> None:
        """Wakes the oldest caller still waiting, to read in turn."""
        with self._lock:
            for e in self._pending:
                if not e.done and not e.abandoned:
                    self._wake(e)
                    return

    def _read_until(self, entry: _Pending, deadline: float) -> None:
        """Reads answers until entry's has come, the deadline passes or the
        connection ends. The caller holds the read lock."""
        read_timeout = self._client._read_timeout
        while not entry.done:
            now = time.monotonic()
            if now >= deadline or not self._open and not self._pending:
                return
            try:
                self.sock.settimeout(max(min(deadline - now, _POLL), 0.001))
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                if self._pending and time.monotonic() - self._last_read > read_timeout:
                    self.end(RpcdError(f"no answer for {read_timeout}s"), unread=False)
                continue
            except OSError as exc:
                self.end(exc, unread=False)  # reset by the peer, or closed by end()
                return
            if not data:
                unread = _resend.unread_at_end(
                    at_boundary=self._splitter.at_boundary,
                    clean_eof=True,
                    trust_clean_close=self._client._trust_clean_close,
                    goodbye=self.goodbye,
                )
                self.end(RpcdConnectionError("server closed the connection"), unread)
                return
            self._last_read = time.monotonic()
            try:
                bodies = self._splitter.feed(data)
            except RpcdError as exc:
                self.end(exc, unread=False)
                return
            bye, unmatched = None, False
            with self._lock:
                for answer in map(decode_answer, bodies):
                    if self.goodbye and is_goodbye(answer):
                        bye = answer
                        break
                    if not self._pending:
                        unmatched = True
                        break
                    e = self._pending.popleft()
                    if isinstance(answer, Answer):
                        self._resolve(e, answer, None)
                    else:
                        self._resolve(e, None, answer)
            if bye is not None:
                self.end(_resend.Goodbye(f"server said goodbye: {bye.result}"), unread=True)
                return
            if unmatched:
                self.end(ProtocolError("answer to no request"), unread=False)
                return

    def end(self, cause: BaseException, unread: bool) -> None:
        """Closes the connection and resolves every unanswered request."""
        with self._lock:
            self._open = False
            waiting = list(self._pending)
            self._pending.clear()
            err = cause if isinstance(cause, ClientClosedError) else None
            for e in waiting:
                self._resolve(e, None, err or _resend.end_error(unread, cause))
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def _frames_within(frames: Sequence[bytes], sent: int) -> int:
    """How many leading frames the first sent bytes cover whole."""
    whole = 0
    for f in frames:
        if sent < len(f):
            break
        sent -= len(f)
        whole += 1
    return whole


class _Slot:
    """One of the client's connections to addr, redialled when it has closed."""

    def __init__(self, addr: Tuple[str, int]) -> None:
        self.addr = addr
        self.lock = threading.Lock()  # serializes writes: wire order is queue order
        self.conn: Optional[_Conn] = None

    def retire(self) -> None:
        """Closes the connection if it is idle; a busy one closes once the
        pool is dropped."""
        with self.lock:
            if self.conn is not None and self.conn.idle():
                self.conn.end(RpcdConnectionError("endpoint left the target"), unread=True)
                self.conn = None


class _Pool:
    """An endpoint's connections: calls take its slots in turn."""

    def __init__(self, addr: Tuple[str, int], conns: int) -> None:
        self.slots = [_Slot(addr) for _ in range(conns)]
        self._next = itertools.count()

    def slot(self) -> _Slot:
        return self.slots[next(self._next) % len(self.slots)]

    def retire(self) -> None:
        for slot in self.slots:
            slot.retire()


class Client(ClientCore):
    """Calls rpcd servers. Safe to share between threads.

    ``address`` is a target: ``"host:port"``, ``(host, port)``, a list of
    such or a comma-separated string, ``"dns:///name:port"``, or
    ``"etcd://host:port[,...]/SERVICE"`` (see rpcd_client._targets). Each
    call goes to the endpoint, of two chosen at random, with fewer calls in
    flight per unit of weight, and fails over to the others when it cannot
    connect. With no endpoint known, a call waits for one up to its timeout.

    Concurrent calls are pipelined over ``conns`` connections per endpoint;
    each call's answer is the next one its connection returns, since rpcd
    answers in request order. Every new connection first says hello, so that
    rpcd announces a graceful close with a goodbye. ``timeout`` bounds each
    call (connecting included) unless the call gives its own. A connection
    with requests outstanding that receives nothing for ``read_timeout``
    seconds is dropped. ``retries`` is how many more times a call is sent
    after its connection failed, when the rules in rpcd_client._resend allow
    it; a goodbye's resends do not count against it.
    """

    _pool_type = _Pool

    @property
    def _slots(self) -> List[_Slot]:
        return [s for t in self._balancer.targets() for s in t.pool.slots]

    def call(
        self,
        method: str,
        params: Any = None,
        *,
        full: bool = False,
        idempotent: bool = False,
        timeout: Optional[float] = None,
    ) -> Any:
        """Calls method with params (any JSON value) and returns the result,
        or with ``full=True`` the Answer ``(out, result)``. An error answer
        raises its RpcError subclass. ``idempotent=True`` lets a call that
        may have run be sent again after its connection failed."""
        (outcome,) = self._run(self._frames([(method, params)]), idempotent, timeout)
        return result_of(outcome, full)

    def call_many(
        self,
        calls: Iterable[Call],
        *,
        full: bool = False,
        idempotent: bool = False,
        timeout: Optional[float] = None,
        return_exceptions: bool = False,
    ) -> List[Any]:
        """Sends every ``(method, params)`` pipelined on one connection and
        returns their results in order. The first failure is raised once
        all are done, unless ``return_exceptions=True`` puts each exception
        in its call's place."""
        frames = self._frames(calls)
        outcomes = self._run(frames, idempotent, timeout) if frames else []
        return results_of(outcomes, full, return_exceptions)

    def _run(self, frames: List[bytes], idempotent: bool, timeout: Optional[float]) -> List[Any]:
        run = self._attempts(frames, idempotent, timeout)
        deadline = run.deadline
        while run.todo:
            try:
                target = self._pick(run.resends.tried, deadline)
            except RpcdError as exc:
                return run.fail(exc)
            entries = [_Pending() for _ in run.todo]
            try:
                conn = self._submit(target.pool.slot(), run.frames(), entries, deadline)
                waited = [conn.wait(e, deadline) for e in entries]
            except RpcdError as exc:
                if self._ends_call(run, target, exc):
                    return run.outcomes
                continue
            finally:
                self._balancer.done(target)
            if not run.settle(target, [e.outcome() if answered else None for e, answered in zip(entries, waited)]):
                break
        return run.finish()

    def _pick(self, tried: List[Target], deadline: float) -> Target:
        """The endpoint for the next attempt; waits for one while none is
        known, up to the deadline."""
        resolver = self._balancer.resolver
        while True:
            version = resolver.version
            target, left = self._pick_now(tried, deadline)
            if target is not None:
                return target
            resolver.wait_change(version, min(left, _POLL))

    def _submit(self, slot: _Slot, frames: List[bytes], entries: List[_Pending], deadline: float) -> _Conn:
        with slot.lock:
            for _ in range(3):
                if self._closed:
                    raise ClientClosedError("client is closed")
                if slot.conn is not None and slot.conn.closed_while_idle():
                    slot.conn.end(RpcdConnectionError("server closed the connection"), unread=True)
                    slot.conn = None
                try:
                    if slot.conn is None or not slot.conn.open:
                        slot.conn = self._connect(slot, deadline)
                    slot.conn.submit(frames, entries, deadline)
                    return slot.conn
                except _resend.NotRead:
                    continue  # closed before anything was written: dial again
            raise RpcdConnectionError("every new connection closed at once")

    def _connect(self, slot: _Slot, deadline: float) -> _Conn:
        """Dials the slot's endpoint and says hello there."""
        addr = slot.addr
        start = time.monotonic()
        if start >= deadline:
            raise CallTimeoutError("timed out before connecting")
        limit = min(deadline, start + self._connect_timeout)
        sock = None
        try:
            sock = socket.create_connection(addr, timeout=limit - start)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            splitter = FrameSplitter(self._header, self._max_frame)
            goodbye = self._say_hello(sock, splitter, limit)
        except (OSError, RpcdError, _resend.NotRead) as exc:
            if sock is not None:
                sock.close()
            if isinstance(exc, _resend.NotRead):
                raise
            if isinstance(exc, socket.timeout) and time.monotonic() >= deadline:
                raise CallTimeoutError("timed out connecting") from exc
            raise RpcdConnectionError(f"{addr[0]}:{addr[1]}: {exc}") from exc
        sock.settimeout(_POLL)
        return _Conn(sock, self, splitter, goodbye)

    def _say_hello(self, sock: socket.socket, splitter: FrameSplitter, limit: float) -> bool:
        """Sends rpcd.hello and reads its answer; whether the server will say
        goodbye. Nothing else is sent before, so a server that never serves
        the connection fails it with no call on it. A connection closed or
        bid goodbye at once (a worker stopping) raises NotRead: dial again."""
        sock.settimeout(max(limit - time.monotonic(), 0.001))
        sock.sendall(self._hello)
        while True:
            sock.settimeout(max(limit - time.monotonic(), 0.001))
            data = sock.recv(1 << 12)
            if not data:
                raise _resend.NotRead("closed before answering the hello")
            bodies = splitter.feed(data)
            if not bodies:
                continue
            goodbye = offers_goodbye(decode_answer(bodies[0]))
            if len(bodies) > 1:
                if goodbye and is_goodbye(decode_answer(bodies[1])):
                    raise _resend.NotRead("server said goodbye after the hello")
                raise ProtocolError("answer to no request")
            return goodbye

    def close(self) -> None:
        """Closes every connection; calls still waiting fail with ClientClosedError."""
        self._closed = True
        for target in self._balancer.close():
            for slot in target.pool.slots:
                with slot.lock:
                    if slot.conn is not None:
                        slot.conn.end(ClientClosedError("client is closed"), unread=False)
                        slot.conn = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
