"""A client for rpcd, the prefork RPC server speaking length-prefixed JSON.

    import rpcd_client

    with rpcd_client.Client("127.0.0.1:8080") as c:
        c.call("ping", "ireader 0")           # 'ireader 0'
        c.call("fib", 90, full=True)          # Answer(out='fib_r', result=2880067194370816120)

    async with rpcd_client.AsyncClient("127.0.0.1:8080") as c:
        await c.call("ping", "hi")

Both clients are safe to share: concurrent calls are pipelined over a few
connections per host, and spread over the hosts of a target (a list,
``dns:///name:port`` or ``etcd://host:port/SERVICE``, see
rpcd_client._targets). An error answer raises an RpcError subclass
(RpcError.code is the server's code). A connection the server closed is
replaced; a call is sent again only when the server certainly did not read it
(a goodbye says so), or when it is marked ``idempotent=True`` (see
rpcd_client._resend for the rules).
"""

from ._protocol import Address, Answer, parse_int
from .aio import AsyncClient
from .client import Call, Client
from .errors import (
    ERROR_CLASSES,
    BadFrame,
    BadRequest,
    CallTimeoutError,
    ClientClosedError,
    FrameTooLarge,
    HandlerTimeout,
    InternalError,
    MaybeSentError,
    Overloaded,
    ProtocolError,
    RpcdConnectionError,
    RpcdError,
    RpcError,
    Unavailable,
    UnknownMethod,
)

__version__ = "0.1.0"

__all__ = [
    "Address",
    "Answer",
    "AsyncClient",
    "BadFrame",
    "BadRequest",
    "Call",
    "CallTimeoutError",
    "Client",
    "ClientClosedError",
    "ERROR_CLASSES",
    "FrameTooLarge",
    "HandlerTimeout",
    "InternalError",
    "MaybeSentError",
    "Overloaded",
    "ProtocolError",
    "RpcError",
    "RpcdConnectionError",
    "RpcdError",
    "Unavailable",
    "UnknownMethod",
    "parse_int",
]
