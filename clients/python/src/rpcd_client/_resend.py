"""When a call may be sent again: the rules both clients share.

A request is sent again on a new connection only when the server certainly
did not read it, or when the call is marked idempotent:

- it found its connection already closed, or was not written in full (a
  partial frame is never run);
- the server ended the stream cleanly at a frame boundary after its last
  answer. rpcd closes a connection itself (a graceful stop or reload, an idle
  timeout) only after answering every request it has read, so what was sent
  after the last answer was not read. A worker killed outright can end the
  stream the same way after reading requests, which is why ``trust_clean_close``
  can turn this rule off.

Everything else (a reset, a stream cut inside a frame, a read timeout) leaves
the unanswered requests as maybe run: they fail with MaybeSentError unless
idempotent. A goodbye frame, should the protocol gain one, belongs in
``unread_at_end``: seen before the end of the stream, it makes the clean-end
rule certain whatever ``trust_clean_close`` says.
"""

from __future__ import annotations

from typing import Union

from .errors import MaybeSentError, RpcdConnectionError


class NotRead(Exception):
    """Internal: the request never reached the server's reader; send it again."""


def unread_at_end(*, at_boundary: bool, clean_eof: bool, trust_clean_close: bool) -> bool:
    """Whether the requests unanswered when a stream ended were not read."""
    return clean_eof and at_boundary and trust_clean_close


def end_error(unread: bool, cause: BaseException) -> Exception:
    """The error each unanswered request of an ended connection gets."""
    if unread:
        return NotRead(str(cause))
    return MaybeSentError(f"connection lost after the request was sent; it may have run: {cause}")


def should_resend(error: BaseException, idempotent: bool) -> bool:
    return isinstance(error, NotRead) or (idempotent and isinstance(error, MaybeSentError))


def final_error(error: BaseException) -> Union[BaseException, RpcdConnectionError]:
    """What a caller sees once no attempt is left."""
    if isinstance(error, NotRead):
        return RpcdConnectionError(f"connection lost before the request was read: {error}")
    return error
