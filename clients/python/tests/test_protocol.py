"""The wire format alone: no sockets."""

from __future__ import annotations

import struct

import pytest

import rpcd_client
from rpcd_client._protocol import FrameSplitter, decode_answer, encode_request, header_struct, parse_addresses


@pytest.mark.parametrize(
    "text, want",
    [
        ("0", 0),
        ("-7", -7),
        ("9" * 4300, 10**4300 - 1),
        ("1" + "0" * 50000, 10**50000),
        ("-" + "12345" * 3001, -sum(12345 * 10 ** (5 * k) for k in range(3001))),
    ],
    ids=["zero", "negative", "at-limit", "fifty-thousand-digits", "negative-long"],
)
def test_parse_int_any_size(text, want):
    assert rpcd_client.parse_int(text) == want


def test_frames_split_at_any_cut():
    header = header_struct("big")
    frames = [encode_request(header, "ping", i) for i in range(5)]
    stream = b"".join(frames)
    for step in (1, 3, 7, len(stream)):
        s = FrameSplitter(header, 1 << 20)
        bodies = []
        for i in range(0, len(stream), step):
            bodies += s.feed(stream[i : i + step])
            assert s.at_boundary == (len(b"".join(bodies)) + 4 * len(bodies) == i + len(stream[i : i + step]))
        assert bodies == [f[4:] for f in frames]


def test_bad_lengths_are_protocol_errors():
    s = FrameSplitter(header_struct("little"), 100)
    with pytest.raises(rpcd_client.ProtocolError):
        s.feed(struct.pack("<I", 0))
    with pytest.raises(rpcd_client.ProtocolError):
        FrameSplitter(header_struct("little"), 100).feed(struct.pack("<I", 101))


def test_byte_orders():
    assert encode_request(header_struct("little"), "ping", None)[:4] == struct.pack("<I", 27)
    assert encode_request(header_struct("big"), "ping", None)[:4] == struct.pack(">I", 27)
    with pytest.raises(ValueError):
        header_struct("middle")


def test_decode_answer():
    assert decode_answer(b'{"out":"pong","result":[1]}') == ("pong", [1])
    err = decode_answer(b'{"out":"error","result":{"code":"overloaded","message":"busy"}}')
    assert isinstance(err, rpcd_client.Overloaded) and (err.code, err.message) == ("overloaded", "busy")
    other = decode_answer(b'{"out":"error","result":{"code":"brand_new","message":"m"}}')
    assert type(other) is rpcd_client.RpcError and other.code == "brand_new"
    for body in (b"nope", b"[1]", b'{"result":1}', b'{"out":"error","result":"x"}', b"\xff"):
        assert isinstance(decode_answer(body), rpcd_client.ProtocolError)
    for code, cls in rpcd_client.ERROR_CLASSES.items():
        assert isinstance(rpcd_client.RpcError.from_answer(code, ""), cls)


def test_addresses():
    assert parse_addresses("h:1") == [("h", 1)]
    assert parse_addresses(("h", 1)) == [("h", 1)]
    assert parse_addresses("a:1, b:2") == [("a", 1), ("b", 2)]
    assert parse_addresses(["[::1]:3", ("c", 4)]) == [("::1", 3), ("c", 4)]
    for bad in ("nohost", ":1", "h:x", [], [3]):
        with pytest.raises(ValueError):
            parse_addresses(bad)
