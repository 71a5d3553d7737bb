"""The thread-safe synchronous client."""

from __future__ import annotations

import itertools
import random
import socket
import threading
import time
from collections import deque
from typing import Any, Deque, Iterable, List, Optional, Sequence, Tuple, Union

from . import _resend
from ._protocol import (
    DEFAULT_MAX_FRAME,
    Address,
    Answer,
    FrameSplitter,
    decode_answer,
    encode_request,
    header_struct,
    parse_addresses,
)
from .errors import (
    CallTimeoutError,
    ClientClosedError,
    RpcdConnectionError,
    RpcdError,
)

#: A call in a batch: ``(method, params)``.
Call = Tuple[str, Any]

# How often an idle reader wakes to check its read timeout and whether its
# connection was closed; also the slice in which a blocked write checks its
# call's deadline.
_POLL = 0.5


class _Pending:
    """One request on the wire, waiting for its answer. The lock is held until
    the answer (or the connection's end) resolves it."""

    __slots__ = ("_lock", "value", "error")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.value: Optional[Answer] = None
        self.error: Optional[BaseException] = None

    def resolve(self, value: Optional[Answer], error: Optional[BaseException]) -> None:
        self.value, self.error = value, error
        self._lock.release()

    def wait(self, timeout: float) -> bool:
        return self._lock.acquire(timeout=max(timeout, 0))


class _Conn:
    """One TCP connection: requests are written by the calling threads (one
    at a time, under their slot's lock) and answered in order to the reader
    thread, which matches each answer to the oldest pending request."""

    def __init__(self, sock: socket.socket, client: "Client") -> None:
        self.sock = sock
        self._client = client
        self._lock = threading.Lock()  # guards _pending and _open
        self._pending: Deque[_Pending] = deque()
        self._open = True
        self._reader = threading.Thread(target=self._read_loop, name="rpcd-client-reader", daemon=True)
        self._reader.start()

    @property
    def open(self) -> bool:
        return self._open

    def submit(self, frames: Sequence[bytes], entries: Sequence[_Pending], deadline: float) -> None:
        """Queues entries and writes their frames. The caller holds the
        slot's lock. Entries whose frames were not written in full are
        resolved here (not read, or the call's timeout)."""
        with self._lock:
            if not self._open:
                raise _resend.NotRead("connection already closed")
            self._pending.extend(entries)
        data = memoryview(b"".join(frames))
        sent, err = self._write(data, deadline)
        if err is None:
            return
        whole = _frames_within(frames, sent)
        unsent = entries[whole:]
        with self._lock:
            # Still queued unless the reader has already ended the connection.
            mine = [e for e in unsent if e in self._pending]
            for e in mine:
                self._pending.remove(e)
        if isinstance(err, CallTimeoutError) and sent == 0:
            # Nothing of these went out: the stream is intact for the others.
            for e in mine:
                e.resolve(None, err)
            return
        for e in mine:
            e.resolve(None, _resend.NotRead(f"write request: {err}"))
        # A partial frame, or a socket that failed: the connection is done.
        # A send error means the peer is gone; its reader rules on the rest.
        if isinstance(err, CallTimeoutError):
            self.end(err, unread=False)
        else:
            self._refuse_writes()

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

    def _refuse_writes(self) -> None:
        with self._lock:
            self._open = False
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def end(self, cause: BaseException, unread: bool) -> None:
        """Closes the connection and resolves every unanswered request."""
        with self._lock:
            self._open = False
            waiting = list(self._pending)
            self._pending.clear()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        err = cause if isinstance(cause, ClientClosedError) else None
        for e in waiting:
            e.resolve(None, err or _resend.end_error(unread, cause))

    def _read_loop(self) -> None:
        client = self._client
        splitter = FrameSplitter(client._header, client._max_frame)
        last_read = time.monotonic()
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                with self._lock:
                    idle = not self._pending
                if not idle and time.monotonic() - last_read > client._read_timeout:
                    self.end(RpcdError(f"no answer for {client._read_timeout}s"), unread=False)
                    return
                continue
            except OSError as exc:
                # Closed by end(), or reset by the peer.
                self.end(exc, unread=False)
                return
            if not data:
                unread = _resend.unread_at_end(
                    at_boundary=splitter.at_boundary,
                    clean_eof=True,
                    trust_clean_close=client._trust_clean_close,
                )
                self.end(RpcdConnectionError("server closed the connection"), unread)
                return
            last_read = time.monotonic()
            try:
                bodies = splitter.feed(data)
            except RpcdError as exc:
                self.end(exc, unread=False)
                return
            for body in bodies:
                with self._lock:
                    entry = self._pending.popleft() if self._pending else None
                if entry is None:
                    self.end(RpcdError("answer to no request"), unread=False)
                    return
                answer = decode_answer(body)
                if isinstance(answer, Answer):
                    entry.resolve(answer, None)
                else:
                    entry.resolve(None, answer)


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
    """One of the client's connections, redialled when it has closed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # serializes writes: wire order is queue order
        self.conn: Optional[_Conn] = None


class Client:
    """Calls an rpcd server. Safe to share between threads.

    ``address`` is ``"host:port"``, ``(host, port)``, or a list of such (or a
    comma-separated string): each connection picks a host at random and fails
    over to the others when it cannot connect.

    Concurrent calls are pipelined over ``conns`` connections; each call's
    answer is the next one its connection returns, since rpcd answers in
    request order. ``timeout`` bounds each call (connecting included) unless
    the call gives its own. A connection with requests outstanding that
    receives nothing for ``read_timeout`` seconds is dropped. ``retries`` is
    how many more times a call is sent after its connection failed, when the
    rules in the package doc allow it.
    """

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
        self._addresses = parse_addresses(address)
        self._header = header_struct(byteorder)
        self._timeout = timeout
        self._connect_timeout = timeout if connect_timeout is None else connect_timeout
        self._read_timeout = read_timeout
        self._retries = max(retries, 0)
        self._max_frame = max_frame
        self._trust_clean_close = trust_clean_close
        self._slots = [_Slot() for _ in range(conns)]
        self._next = itertools.count()
        self._closed = False

    @property
    def addresses(self) -> List[Tuple[str, int]]:
        return list(self._addresses)

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
        frame = encode_request(self._header, method, params)
        (outcome,) = self._run([frame], idempotent, timeout)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome if full else outcome.result

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
        frames = [encode_request(self._header, m, p) for m, p in calls]
        outcomes = self._run(frames, idempotent, timeout) if frames else []
        results: List[Any] = []
        for o in outcomes:
            if isinstance(o, BaseException):
                if not return_exceptions:
                    raise o
                results.append(o)
            else:
                results.append(o if full else o.result)
        return results

    def _run(self, frames: List[bytes], idempotent: bool, timeout: Optional[float]) -> List[Any]:
        deadline = time.monotonic() + (self._timeout if timeout is None else timeout)
        outcomes: List[Any] = [None] * len(frames)
        todo = list(range(len(frames)))
        for attempt in range(self._retries + 1):
            entries = [_Pending() for _ in todo]
            try:
                self._submit([frames[i] for i in todo], entries, deadline)
            except RpcdError as exc:
                for i in todo:
                    outcomes[i] = exc
                return outcomes
            again = []
            for i, e in zip(todo, entries):
                if not e.wait(deadline - time.monotonic()):
                    outcomes[i] = CallTimeoutError("no answer within the call's timeout")
                elif e.error is not None:
                    outcomes[i] = e.error
                    if _resend.should_resend(e.error, idempotent):
                        again.append(i)
                else:
                    outcomes[i] = e.value
            todo = again
            if not todo or time.monotonic() >= deadline:
                break
        for i in todo:
            outcomes[i] = _resend.final_error(outcomes[i])
        return outcomes

    def _submit(self, frames: List[bytes], entries: List[_Pending], deadline: float) -> None:
        slot = self._slots[next(self._next) % len(self._slots)]
        with slot.lock:
            for _ in range(3):
                if self._closed:
                    raise ClientClosedError("client is closed")
                if slot.conn is None or not slot.conn.open:
                    slot.conn = _Conn(self._connect(deadline), self)
                try:
                    slot.conn.submit(frames, entries, deadline)
                    return
                except _resend.NotRead:
                    continue  # closed before anything was written: dial again
            raise RpcdConnectionError("every new connection closed at once")

    def _connect(self, deadline: float) -> socket.socket:
        errors = []
        for host, port in random.sample(self._addresses, len(self._addresses)):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                sock = socket.create_connection((host, port), timeout=min(left, self._connect_timeout))
            except OSError as exc:
                errors.append(f"{host}:{port}: {exc}")
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(_POLL)
            return sock
        if not errors:
            raise CallTimeoutError("timed out before connecting")
        raise RpcdConnectionError("connect: " + "; ".join(errors))

    def close(self) -> None:
        """Closes every connection; calls still waiting fail with ClientClosedError."""
        self._closed = True
        for slot in self._slots:
            with slot.lock:
                if slot.conn is not None:
                    slot.conn.end(ClientClosedError("client is closed"), unread=False)
                    slot.conn = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
