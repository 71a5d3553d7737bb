"""rpcd's wire format, bytes in and bytes out: frames, requests, answers and
addresses. Nothing here touches a socket."""

from __future__ import annotations

import json
import struct
import sys
from typing import Any, List, NamedTuple, Sequence, Tuple, Union

from .errors import ProtocolError, RpcError

HEADER_SIZE = 4
DEFAULT_MAX_FRAME = 64 << 20

#: One server address: ``"host:port"``, ``"[v6addr]:port"`` or ``(host, port)``.
Address = Union[str, Tuple[str, int]]


class Answer(NamedTuple):
    """A success answer: the method's ``out`` tag and its ``result``."""

    out: str
    result: Any


def header_struct(byteorder: str) -> struct.Struct:
    """The length prefix's layout for the server's ``-byteorder``."""
    if byteorder == "little":
        return struct.Struct("<I")
    if byteorder == "big":
        return struct.Struct(">I")
    raise ValueError(f'byteorder must be "little" or "big", not {byteorder!r}')


def encode_request(header: struct.Struct, method: str, params: Any) -> bytes:
    """One request frame: the length prefix, then ``{"in": method, "params": params}``."""
    if not isinstance(method, str):
        raise TypeError(f"method must be a str, not {type(method).__name__}")
    body = _ENCODER.encode({"in": method, "params": params}).encode()
    return header.pack(len(body)) + body


#: The opt-in goodbye: a connection that calls HELLO_METHOD first is told by
#: a last frame with out GOODBYE_OUT that rpcd closes it gracefully.
HELLO_METHOD = "rpcd.hello"
GOODBYE_OUT = "rpcd.goodbye"


def offers_goodbye(answer: object) -> bool:
    """Whether answer, the decoded answer to a hello, promises a goodbye. An
    older server answers unknown_method: no goodbye."""
    return (
        isinstance(answer, Answer)
        and answer.out == HELLO_METHOD
        and isinstance(answer.result, dict)
        and answer.result.get("goodbye") is True
    )


def is_goodbye(answer: object) -> bool:
    return isinstance(answer, Answer) and answer.out == GOODBYE_OUT


def _int_chunk() -> int:
    # Python 3.11+ refuses int(str) past sys.get_int_max_str_digits() digits
    # (0 means no limit); older versions have no limit.
    limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()
    return min(limit, 4000) if limit else 1 << 62


def _digits_to_int(digits: str, chunk: int) -> int:
    if len(digits) <= chunk:
        return int(digits)
    low = len(digits) // 2
    high = _digits_to_int(digits[:-low], chunk)
    return high * 10**low + _digits_to_int(digits[-low:], chunk)


def parse_int(text: str) -> int:
    """Parses a JSON integer of any size, whatever the interpreter's limit on
    int(str) digits (fib results run to tens of thousands of digits)."""
    chunk = _int_chunk()
    if len(text) <= chunk:
        return int(text)
    if text[0] == "-":
        return -_digits_to_int(text[1:], chunk)
    return _digits_to_int(text, chunk)


def decode_answer(body: bytes) -> Union[Answer, RpcError, ProtocolError]:
    """Decodes an answer body. An error answer, or a body that is no answer,
    comes back as the exception to raise rather than raised: the frame was
    whole, so the connection carries on."""
    try:
        msg = _DECODER.decode(body.decode())
    except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError
        return ProtocolError(f"answer is not JSON: {exc}")
    if not isinstance(msg, dict) or not isinstance(msg.get("out"), str):
        return ProtocolError(f"answer has no string out: {body[:200]!r}")
    out, result = msg["out"], msg.get("result")
    if out != "error":
        return Answer(out, result)
    if isinstance(result, dict) and isinstance(result.get("code"), str):
        return RpcError.from_answer(result["code"], str(result.get("message", "")))
    return ProtocolError(f"malformed error answer: {body[:200]!r}")


_ENCODER = json.JSONEncoder(separators=(",", ":"))
_DECODER = json.JSONDecoder(parse_int=parse_int)


def check_frame_length(n: int, max_frame: int) -> None:
    """Raises ProtocolError on an answer's length prefix outside 1..max_frame."""
    if n == 0 or n > max_frame:
        raise ProtocolError(f"answer frame length {n} outside 1..{max_frame}")


class FrameSplitter:
    """Cuts a byte stream into frame bodies. Feed it what recv returned;
    ``at_boundary`` tells whether the stream so far ends between frames."""

    __slots__ = ("_buf", "_header", "_max_frame")

    def __init__(self, header: struct.Struct, max_frame: int) -> None:
        self._buf = bytearray()
        self._header = header
        self._max_frame = max_frame

    def feed(self, data: bytes) -> List[bytes]:
        """Appends data and returns the bodies it completed, oldest first.
        Raises ProtocolError on a length prefix outside 1..max_frame."""
        buf = self._buf
        buf += data
        bodies = []
        pos, end = 0, len(buf)
        while end - pos >= HEADER_SIZE:
            (n,) = self._header.unpack_from(buf, pos)
            check_frame_length(n, self._max_frame)
            if end - pos - HEADER_SIZE < n:
                break
            start = pos + HEADER_SIZE
            bodies.append(bytes(buf[start : start + n]))
            pos = start + n
        if pos:
            del buf[:pos]
        return bodies

    @property
    def at_boundary(self) -> bool:
        return not self._buf


def parse_addresses(address: Union[Address, Sequence[Address]]) -> List[Tuple[str, int]]:
    """Turns one address, a comma-separated string of them, or a list of them
    into ``(host, port)`` pairs."""
    if isinstance(address, tuple) and len(address) == 2 and isinstance(address[1], int):
        return [(str(address[0]), address[1])]
    if isinstance(address, str):
        items: Sequence[Address] = [a for a in address.split(",") if a.strip()]
    else:
        items = list(address)
    result = []
    for item in items:
        if isinstance(item, str):
            result.append(split_host_port(item.strip()))
        elif isinstance(item, tuple) and len(item) == 2:
            result.append((str(item[0]), int(item[1])))
        else:
            raise ValueError(f"not an address: {item!r}")
    if not result:
        raise ValueError("no address given")
    return result


def split_host_port(text: str) -> Tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f'address must be "host:port", not {text!r}')
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)
