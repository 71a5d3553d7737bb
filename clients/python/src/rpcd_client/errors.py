"""Exceptions raised by the rpcd clients.

Every exception is an :class:`RpcdError`. An error answer from the server is an
:class:`RpcError` (a subclass per code of rpcd's error table); a connection
that cannot be made or is lost is an :class:`RpcdConnectionError`; a call that
outlives its timeout is a :class:`CallTimeoutError`.
"""

from __future__ import annotations

from typing import Dict, Type


class RpcdError(Exception):
    """Base class of every exception the rpcd clients raise."""


class RpcError(RpcdError):
    """An error answer: ``{"out": "error", "result": {"code": ..., "message": ...}}``.

    The connection stays usable after every code but ``bad_frame`` and
    ``frame_too_large``, which the server answers before closing it.
    """

    code: str = ""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @staticmethod
    def from_answer(code: str, message: str) -> "RpcError":
        """Returns the exception for an error answer: the subclass registered
        for its code, or RpcError itself for a code this client does not know."""
        cls = ERROR_CLASSES.get(code, RpcError)
        return cls(code, message)


class BadRequest(RpcError):
    """The body, its ``in`` or its params were not accepted (``bad_request``)."""


class UnknownMethod(RpcError):
    """No method is registered under that name (``unknown_method``)."""


class InternalError(RpcError):
    """The handler failed or panicked (``internal``)."""


class Overloaded(RpcError):
    """The worker's queue for blocking methods was full; the call did not run
    and may be sent again (``overloaded``)."""


class HandlerTimeout(RpcError):
    """The method did not answer within the server's ``-handler-timeout``; it
    may still have run, in part or in full (``timeout``)."""


class Unavailable(RpcError):
    """A service the method needs is not configured or not reachable
    (``unavailable``)."""


class BadFrame(RpcError):
    """The server saw a zero length prefix and closed the connection (``bad_frame``)."""


class FrameTooLarge(RpcError):
    """The request exceeded the server's ``-max-frame`` and the server closed
    the connection (``frame_too_large``)."""


#: The exception class for each error code of rpcd's protocol.
ERROR_CLASSES: Dict[str, Type[RpcError]] = {
    "bad_request": BadRequest,
    "unknown_method": UnknownMethod,
    "internal": InternalError,
    "overloaded": Overloaded,
    "timeout": HandlerTimeout,
    "unavailable": Unavailable,
    "bad_frame": BadFrame,
    "frame_too_large": FrameTooLarge,
}


class RpcdConnectionError(RpcdError, ConnectionError):
    """No server could be reached, or a connection failed."""


class MaybeSentError(RpcdConnectionError):
    """The connection failed after the request was written: the server may
    have read and run it. Only calls marked idempotent are sent again."""


class ProtocolError(RpcdError):
    """An answer broke rpcd's protocol: a body that is not a JSON object with
    ``out``, or a length prefix outside 1..max_frame (which closes the
    connection carrying it)."""


class CallTimeoutError(RpcdError, TimeoutError):
    """No answer arrived within the call's timeout. The call may still run;
    its answer is read and dropped when it comes, so later calls on the same
    connection get their own answers."""


class ClientClosedError(RpcdError):
    """The client was closed."""
