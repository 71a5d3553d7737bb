# A client written the way rpcd's founding articles write theirs: socket,
# struct.pack("I") for the length prefix, json for the body, one recv per part.
# Usage: python3 seed_client.py HOST PORT [little|big]
# It exits non-zero, saying why, if any answer is not what the articles expect.
import json
import math
import socket
import struct
import sys

BIG = len(sys.argv) > 3 and sys.argv[3] == "big"


def pack_length(n):
    if BIG:
        return n.to_bytes(4, byteorder="big")  # as the asyncore article does
    return struct.pack("I", n)


def unpack_length(prefix):
    if BIG:
        return int.from_bytes(prefix, byteorder="big")
    length, = struct.unpack("I", prefix)
    return length


def rpc(sock, in_, params):
    request = json.dumps({"in": in_, "params": params})  # request body
    length_prefix = pack_length(len(request))  # request length prefix
    sock.sendall(length_prefix)
    sock.sendall(request.encode())
    length_prefix = sock.recv(4)  # response length prefix
    length = unpack_length(length_prefix)
    body = sock.recv(length)  # response body
    response = json.loads(body)
    return response["out"], response["result"]


def expect(got, want):
    if got != want:
        print("got %r, want %r" % (got, want))
        sys.exit(1)


def pi(n):
    s = 0.0
    for i in range(n + 1):
        s += 1.0 / ((2 * i + 1) ** 2)
    return math.sqrt(8 * s)


if __name__ == "__main__":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect((sys.argv[1], int(sys.argv[2])))
    for i in range(10):  # ten rpc requests in a row, as the articles send
        out, result = rpc(s, "ping", "ireader %d" % i)
        print(out, result)
        expect((out, result), ("pong", "ireader %d" % i))
    expect(rpc(s, "ping", {"n": 12345678901234567890, "f": 3.5, "s": "\u4e16\u754c"}),
           ("pong", {"n": 12345678901234567890, "f": 3.5, "s": "\u4e16\u754c"}))
    expect(rpc(s, "fib", 100), ("fib_r", 354224848179261915075))
    expect(rpc(s, "pi", 1000), ("pi_r", pi(1000)))
    out, result = rpc(s, "nosuch", None)
    expect((out, result["code"]), ("error", "unknown_method"))
    expect(rpc(s, "ping", "still open after an error"), ("pong", "still open after an error"))
    s.close()
    print("seed client: all answers as expected")
