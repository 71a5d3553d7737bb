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

- the server said goodbye (``rpcd.goodbye``, after a hello on that
  connection): what was sent after its last answer was certainly not read.
  On such a connection a clean end without the goodbye is not trusted.

Everything else (a reset, a stream cut inside a frame, a read timeout) leaves
the unanswered requests as maybe run: they fail with MaybeSentError unless
idempotent.
"""

from __future__ import annotations

from typing import Any, List, Sequence, Union

from .errors import MaybeSentError, RpcdConnectionError


class NotRead(Exception):
    """Internal: the request never reached the server's reader; send it again."""


class Goodbye(NotRead):
    """Internal: the server said goodbye before reading the request."""


def unread_at_end(*, at_boundary: bool, clean_eof: bool, trust_clean_close: bool, goodbye: bool) -> bool:
    """Whether the requests unanswered when a stream ended, with no goodbye
    frame, were not read. goodbye: the server promised one on this connection."""
    return clean_eof and at_boundary and trust_clean_close and not goodbye


def end_error(unread: bool, cause: BaseException) -> Exception:
    """The error each unanswered request of an ended connection gets."""
    if unread:
        return cause if isinstance(cause, NotRead) else NotRead(str(cause))
    return MaybeSentError(f"connection lost after the request was sent; it may have run: {cause}")


def should_resend(error: BaseException, idempotent: bool) -> bool:
    return isinstance(error, NotRead) or (idempotent and isinstance(error, MaybeSentError))


def final_error(error: BaseException) -> Union[BaseException, RpcdConnectionError]:
    """What a caller sees once no attempt is left."""
    if isinstance(error, NotRead):
        return RpcdConnectionError(f"connection lost before the request was read: {error}")
    return error


class Resends:
    """One call's attempts: the endpoints it tried, the retries left after
    failures that allow a resend, and the goodbye resends left apart."""

    def __init__(self, retries: int, goodbyes: int) -> None:
        self.tried: List[Any] = []
        self._retries = retries
        self._goodbyes = goodbyes
        self._connect_errors: List[str] = []

    def unreachable(self, target: Any, error: BaseException, targets: Sequence[Any]) -> bool:
        """Records that target could not be reached; True once every one of
        targets has been tried."""
        self._connect_errors.append(str(error))
        self.tried.append(target)
        return all(t in self.tried for t in targets)

    def connect_error(self) -> RpcdConnectionError:
        return RpcdConnectionError("connect: " + "; ".join(self._connect_errors))

    def resend(self, target: Any, errors: Sequence[BaseException]) -> bool:
        """Whether the call may be sent again after errors on target."""
        self.tried.append(target)
        if all(isinstance(e, Goodbye) for e in errors):
            self._goodbyes -= 1
            return self._goodbyes >= 0
        self._retries -= 1
        return self._retries >= 0


def fill(outcomes: List[Any], todo: Sequence[int], error: BaseException) -> List[Any]:
    """Gives error to every call in todo; returns outcomes."""
    for i in todo:
        outcomes[i] = error
    return outcomes
