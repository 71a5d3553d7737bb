"""The asyncio client: the same calls as Client, as coroutines."""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
import time
from collections import deque
from typing import Any, Deque, Iterable, List, Optional, Sequence, Tuple, Union

from . import _resend
from ._protocol import (
    DEFAULT_MAX_FRAME,
    HEADER_SIZE,
    Address,
    Answer,
    decode_answer,
    encode_request,
    header_struct,
    parse_addresses,
)
from .client import Call
from .errors import (
    CallTimeoutError,
    ClientClosedError,
    ProtocolError,
    RpcdConnectionError,
    RpcdError,
)

# Past this many bytes buffered for the socket, a call waits for the buffer
# to drain before it waits for its answer.
_HIGH_WATER = 1 << 20
# How often a connection checks its read timeout.
_POLL = 0.5


class _AsyncConn:
    """One TCP connection and the futures awaiting its answers, oldest first.
    A write is one synchronous transport.write, so requests never interleave
    and the queue's order is the wire's order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client: "AsyncClient") -> None:
        self._reader = reader
        self._writer = writer
        self._client = client
        self._pending: Deque["asyncio.Future[Answer]"] = deque()
        self._open = True
        self._drain_lock = asyncio.Lock()
        self._last_read = time.monotonic()
        self._task = asyncio.ensure_future(self._read_loop())
        self._timer = asyncio.get_running_loop().call_later(_POLL, self._watch)

    @property
    def open(self) -> bool:
        return self._open

    def submit(self, frames: Sequence[bytes], futures: Sequence["asyncio.Future[Answer]"]) -> None:
        if not self._open or self._writer.is_closing():
            raise _resend.NotRead("connection already closed")
        if not self._pending:
            self._last_read = time.monotonic()  # the read timeout starts now
        self._pending.extend(futures)
        # A failing socket drops the bytes; the reader then sees the end of
        # the stream and rules on every queued request.
        self._writer.write(b"".join(frames))

    def backed_up(self) -> bool:
        """Whether more than _HIGH_WATER bytes wait to go out."""
        return self._writer.transport.get_write_buffer_size() > _HIGH_WATER

    async def drain(self) -> None:
        async with self._drain_lock:
            try:
                await self._writer.drain()
            except OSError:
                pass  # the reader reports the connection's end

    def end(self, cause: BaseException, unread: bool) -> None:
        """Closes the connection and settles every unanswered request."""
        self._open = False
        self._timer.cancel()
        waiting = list(self._pending)
        self._pending.clear()
        self._writer.close()
        err = cause if isinstance(cause, ClientClosedError) else None
        for fut in waiting:
            if not fut.done():
                fut.set_exception(err or _resend.end_error(unread, cause))

    async def _read_loop(self) -> None:
        client = self._client
        header, max_frame, reader = client._header, client._max_frame, self._reader
        while True:
            at_boundary = True
            try:
                (n,) = header.unpack(await reader.readexactly(HEADER_SIZE))
                if n == 0 or n > max_frame:
                    raise ProtocolError(f"answer frame length {n} outside 1..{max_frame}")
                at_boundary = False
                body = await reader.readexactly(n)
            except asyncio.IncompleteReadError as exc:
                unread = _resend.unread_at_end(
                    at_boundary=at_boundary and not exc.partial,
                    clean_eof=True,
                    trust_clean_close=client._trust_clean_close,
                )
                self.end(RpcdConnectionError("server closed the connection"), unread)
                return
            except (OSError, RpcdError) as exc:
                self.end(exc, unread=False)
                return
            self._last_read = time.monotonic()
            if not self._pending:
                self.end(ProtocolError("answer to no request"), unread=False)
                return
            fut = self._pending.popleft()
            if fut.done():
                continue  # its caller timed out or was cancelled
            answer = decode_answer(body)
            if isinstance(answer, Answer):
                fut.set_result(answer)
            else:
                fut.set_exception(answer)

    def _watch(self) -> None:
        """Ends the connection when requests are outstanding and nothing has
        arrived for read_timeout; runs every poll interval while open."""
        if not self._open:
            return
        timeout = self._client._read_timeout
        if self._pending and time.monotonic() - self._last_read > timeout:
            self.end(RpcdError(f"no answer for {timeout}s"), unread=False)
            return
        self._timer = asyncio.get_running_loop().call_later(_POLL, self._watch)


class AsyncClient:
    """Calls an rpcd server from asyncio. Takes the same arguments as Client;
    every call is a coroutine, and ``async with`` closes the client.

    Concurrent calls are pipelined over ``conns`` connections. A call that
    is cancelled or times out leaves its answer to be read and dropped, so
    the calls after it on its connection get their own answers.
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
        self._conns: List[Optional[_AsyncConn]] = [None] * conns
        self._dialing: List[Optional[asyncio.Lock]] = [None] * conns
        self._next = itertools.count()
        self._closed = False

    @property
    def addresses(self) -> List[Tuple[str, int]]:
        return list(self._addresses)

    async def call(
        self,
        method: str,
        params: Any = None,
        *,
        full: bool = False,
        idempotent: bool = False,
        timeout: Optional[float] = None,
    ) -> Any:
        """As Client.call."""
        frame = encode_request(self._header, method, params)
        (outcome,) = await self._run([frame], idempotent, timeout)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome if full else outcome.result

    async def call_many(
        self,
        calls: Iterable[Call],
        *,
        full: bool = False,
        idempotent: bool = False,
        timeout: Optional[float] = None,
        return_exceptions: bool = False,
    ) -> List[Any]:
        """As Client.call_many: one connection, results in order."""
        frames = [encode_request(self._header, m, p) for m, p in calls]
        outcomes = await self._run(frames, idempotent, timeout) if frames else []
        results: List[Any] = []
        for o in outcomes:
            if isinstance(o, BaseException):
                if not return_exceptions:
                    raise o
                results.append(o)
            else:
                results.append(o if full else o.result)
        return results

    async def _run(self, frames: List[bytes], idempotent: bool, timeout: Optional[float]) -> List[Any]:
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + (self._timeout if timeout is None else timeout)
        outcomes: List[Any] = [None] * len(frames)
        todo = list(range(len(frames)))
        # Attempts stay on one slot: a retry finds it redialled.
        slot = next(self._next) % len(self._conns)
        for _ in range(self._retries + 1):
            futures: List["asyncio.Future[Answer]"] = [loop.create_future() for _ in todo]
            try:
                conn = await self._submit(slot, [frames[i] for i in todo], futures, deadline)
                if conn.backed_up():
                    try:
                        await asyncio.wait_for(conn.drain(), max(deadline - time.monotonic(), 0))
                    except asyncio.TimeoutError:
                        pass  # _wait reports the call's timeout
                await self._wait(futures, deadline)
            except RpcdError as exc:
                for i in todo:
                    outcomes[i] = exc
                return outcomes
            again = []
            for i, fut in zip(todo, futures):
                if not fut.done() or fut.cancelled():
                    fut.cancel()  # the reader drops its answer when it comes
                    outcomes[i] = CallTimeoutError("no answer within the call's timeout")
                elif fut.exception() is not None:
                    err = fut.exception()
                    outcomes[i] = err
                    if _resend.should_resend(err, idempotent):
                        again.append(i)
                else:
                    outcomes[i] = fut.result()
            todo = again
            if not todo or time.monotonic() >= deadline:
                break
        for i in todo:
            outcomes[i] = _resend.final_error(outcomes[i])
        return outcomes

    @staticmethod
    async def _wait(futures: List["asyncio.Future[Answer]"], deadline: float) -> None:
        """Waits until every future is done or the deadline passes; the
        caller reads each future's outcome."""
        left = max(deadline - time.monotonic(), 0)
        try:
            if len(futures) == 1:
                await asyncio.wait_for(futures[0], left)  # cancels it at the deadline
            else:
                await asyncio.wait(futures, timeout=left)
        except asyncio.CancelledError:
            for fut in futures:
                fut.cancel()  # nobody will read them now
            raise
        except (asyncio.TimeoutError, Exception):
            pass

    async def _submit(
        self, slot: int, frames: List[bytes], futures: List["asyncio.Future[Answer]"], deadline: float
    ) -> _AsyncConn:
        for _ in range(3):
            conn = self._conns[slot]
            if conn is None or not conn.open:
                conn = await self._dial(slot, deadline)
            try:
                conn.submit(frames, futures)
                return conn
            except _resend.NotRead:
                continue  # closed before anything was written: dial again
        raise RpcdConnectionError("every new connection closed at once")

    async def _dial(self, slot: int, deadline: float) -> _AsyncConn:
        lock = self._dialing[slot]
        if lock is None:
            lock = self._dialing[slot] = asyncio.Lock()
        async with lock:
            if self._closed:
                raise ClientClosedError("client is closed")
            conn = self._conns[slot]
            if conn is not None and conn.open:
                return conn  # another call dialled while this one waited
            reader, writer = await self._connect(deadline)
            conn = self._conns[slot] = _AsyncConn(reader, writer, self)
            return conn

    async def _connect(self, deadline: float) -> Tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        errors = []
        for host, port in random.sample(self._addresses, len(self._addresses)):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port, limit=1 << 16), min(left, self._connect_timeout)
                )
            except (OSError, asyncio.TimeoutError) as exc:
                errors.append(f"{host}:{port}: {exc!r}")
                continue
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return reader, writer
        if not errors:
            raise CallTimeoutError("timed out before connecting")
        raise RpcdConnectionError("connect: " + "; ".join(errors))

    async def close(self) -> None:
        """Closes every connection; calls still waiting fail with ClientClosedError."""
        self._closed = True
        tasks = []
        for i, conn in enumerate(self._conns):
            if conn is not None:
                conn.end(ClientClosedError("client is closed"), unread=False)
                tasks.append(conn._task)
                self._conns[i] = None
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
