"""The asyncio client: the same calls as Client, as coroutines."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections import deque
from typing import Any, Deque, Iterable, List, Optional, Sequence, Tuple

from . import _resend
from ._balance import Target
from ._calls import Call, ClientCore, result_of, results_of
from ._protocol import (
    HEADER_SIZE,
    Answer,
    check_frame_length,
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

# Past this many bytes buffered for the socket, a call waits for the buffer
# to drain before it waits for its answer.
_HIGH_WATER = 1 << 20
# How often a connection checks its read timeout.
_POLL = 0.5
# How often a call waiting for an endpoint looks at the list again.
_SLICE = 0.05


class _AsyncConn:
    """One TCP connection and the futures awaiting its answers, oldest first.
    A write is one synchronous transport.write, so requests never interleave
    and the queue's order is the wire's order. ``goodbye``: the server
    answered the hello, and announces a graceful close."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client: "AsyncClient", goodbye: bool
    ) -> None:
        self.goodbye = goodbye
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
                check_frame_length(n, max_frame)
                at_boundary = False
                body = await reader.readexactly(n)
            except asyncio.IncompleteReadError as exc:
                unread = _resend.unread_at_end(
                    at_boundary=at_boundary and not exc.partial,
                    clean_eof=True,
                    trust_clean_close=client._trust_clean_close,
                    goodbye=self.goodbye,
                )
                self.end(RpcdConnectionError("server closed the connection"), unread)
                return
            except (OSError, RpcdError) as exc:
                self.end(exc, unread=False)
                return
            self._last_read = time.monotonic()
            answer = decode_answer(body)
            if self.goodbye and is_goodbye(answer):
                self.end(_resend.Goodbye(f"server said goodbye: {answer.result}"), unread=True)
                return
            if not self._pending:
                self.end(ProtocolError("answer to no request"), unread=False)
                return
            fut = self._pending.popleft()
            if fut.done():
                continue  # its caller timed out or was cancelled
            if isinstance(answer, Answer):
                fut.set_result(answer)
            else:
                fut.set_exception(answer)

    def idle(self) -> bool:
        return not self._pending

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


def _outcome(fut: "asyncio.Future[Answer]") -> Optional[Any]:
    """What a request's future got: its answer or error, or None when it
    has none yet or was cancelled (cancelled now: the reader drops its
    answer when it comes)."""
    if not fut.done() or fut.cancelled():
        fut.cancel()
        return None
    err = fut.exception()
    return fut.result() if err is None else err


class _AsyncPool:
    """An endpoint's connections: calls take its slots in turn, and one
    call at a time dials a slot."""

    def __init__(self, addr: Tuple[str, int], conns: int) -> None:
        self.addr = addr
        self.conns: List[Optional[_AsyncConn]] = [None] * conns
        self.dialing: List[Optional[asyncio.Lock]] = [None] * conns
        self._next = itertools.count()

    def slot(self) -> int:
        return next(self._next) % len(self.conns)

    def retire(self) -> None:
        """Closes the idle connections; busy ones close once the pool is dropped."""
        for i, conn in enumerate(self.conns):
            if conn is not None and conn.idle():
                conn.end(RpcdConnectionError("endpoint left the target"), unread=True)
                self.conns[i] = None


class AsyncClient(ClientCore):
    """Calls rpcd servers from asyncio. Takes the same arguments as Client
    (targets, balancing, hello and goodbye included); every call is a
    coroutine, and ``async with`` closes the client.

    Concurrent calls are pipelined over ``conns`` connections per endpoint.
    A call that is cancelled or times out leaves its answer to be read and
    dropped, so the calls after it on its connection get their own answers.
    """

    _pool_type = _AsyncPool

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
        (outcome,) = await self._run(self._frames([(method, params)]), idempotent, timeout)
        return result_of(outcome, full)

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
        frames = self._frames(calls)
        outcomes = await self._run(frames, idempotent, timeout) if frames else []
        return results_of(outcomes, full, return_exceptions)

    async def _run(self, frames: List[bytes], idempotent: bool, timeout: Optional[float]) -> List[Any]:
        loop = asyncio.get_running_loop()
        run = self._attempts(frames, idempotent, timeout)
        deadline = run.deadline
        while run.todo:
            try:
                target = await self._pick(run.resends.tried, deadline)
            except RpcdError as exc:
                return run.fail(exc)
            futures: List["asyncio.Future[Answer]"] = [loop.create_future() for _ in run.todo]
            try:
                conn = await self._submit(target.pool, run.frames(), futures, deadline)
                if conn.backed_up():
                    try:
                        await asyncio.wait_for(conn.drain(), max(deadline - time.monotonic(), 0))
                    except asyncio.TimeoutError:
                        pass  # _wait reports the call's timeout
                await self._wait(futures, deadline)
            except RpcdError as exc:
                if self._ends_call(run, target, exc):
                    return run.outcomes
                continue
            finally:
                self._balancer.done(target)
            if not run.settle(target, [_outcome(fut) for fut in futures]):
                break
        return run.finish()

    async def _pick(self, tried: List[Target], deadline: float) -> Target:
        """The endpoint for the next attempt; waits for one while none is
        known, up to the deadline."""
        while True:
            target, left = self._pick_now(tried, deadline)
            if target is not None:
                return target
            await asyncio.sleep(min(left, _SLICE))

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
        self, pool: _AsyncPool, frames: List[bytes], futures: List["asyncio.Future[Answer]"], deadline: float
    ) -> _AsyncConn:
        slot = pool.slot()
        for _ in range(3):
            conn = pool.conns[slot]
            try:
                if conn is None or not conn.open:
                    conn = await self._dial(pool, slot, deadline)
                conn.submit(frames, futures)
                return conn
            except _resend.NotRead:
                continue  # closed before anything was written: dial again
        raise RpcdConnectionError("every new connection closed at once")

    async def _dial(self, pool: _AsyncPool, slot: int, deadline: float) -> _AsyncConn:
        lock = pool.dialing[slot]
        if lock is None:
            lock = pool.dialing[slot] = asyncio.Lock()
        async with lock:
            if self._closed:
                raise ClientClosedError("client is closed")
            conn = pool.conns[slot]
            if conn is not None and conn.open:
                return conn  # another call dialled while this one waited
            conn = pool.conns[slot] = await self._connect(pool.addr, deadline)
            return conn

    async def _connect(self, addr: Tuple[str, int], deadline: float) -> _AsyncConn:
        """Dials addr and says hello there (see Client._say_hello)."""
        start = time.monotonic()
        if start >= deadline:
            raise CallTimeoutError("timed out before connecting")
        try:
            reader, writer, goodbye = await asyncio.wait_for(
                self._open_and_hello(addr), min(deadline - start, self._connect_timeout)
            )
        except asyncio.IncompleteReadError as exc:
            raise _resend.NotRead("closed before answering the hello") from exc
        except (OSError, asyncio.TimeoutError, RpcdError) as exc:
            if isinstance(exc, asyncio.TimeoutError) and time.monotonic() >= deadline:
                raise CallTimeoutError("timed out connecting") from exc
            raise RpcdConnectionError(f"{addr[0]}:{addr[1]}: {exc!r}") from exc
        return _AsyncConn(reader, writer, self, goodbye)

    async def _open_and_hello(self, addr: Tuple[str, int]) -> Tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        """Dials addr and reads the hello's answer; a goodbye right after it
        is found by the connection's reader, and resends its calls."""
        reader, writer = await asyncio.open_connection(addr[0], addr[1], limit=1 << 16)
        try:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            writer.write(self._hello)
            (n,) = self._header.unpack(await reader.readexactly(HEADER_SIZE))
            check_frame_length(n, self._max_frame)
            goodbye = offers_goodbye(decode_answer(await reader.readexactly(n)))
        except BaseException:
            writer.close()
            raise
        return reader, writer, goodbye

    async def close(self) -> None:
        """Closes every connection; calls still waiting fail with ClientClosedError."""
        self._closed = True
        tasks = []
        for target in self._balancer.close():
            pool = target.pool
            for i, conn in enumerate(pool.conns):
                if conn is not None:
                    conn.end(ClientClosedError("client is closed"), unread=False)
                    tasks.append(conn._task)
                    pool.conns[i] = None
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
