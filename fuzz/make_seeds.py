#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets whose input is binary
(result_json, redis_replies, worker_message) into fuzz/corpus/<target>/.
The text targets' seeds (request_parser, aggregate) are plain files there.
Deterministic: rerunning it rewrites the same files."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- protobuf wire encoding (enough for v1::WorkerMessage)
def varint(n):
    out = b""
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field_varint(num, value):
    return varint(num << 3) + varint(value)


def field_bytes(num, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(num << 3 | 2) + varint(len(data)) + data


def fetch_result(id_, status, ok, body=b"", error=0):
    msg = field_bytes(3, id_) + field_varint(5, status) + field_varint(6, ok)
    msg += field_varint(7, 1)
    if body:
        msg += field_bytes(10, body)
    if error:
        msg += field_varint(12, error)
    return msg


def completion(lease_index, result):
    return field_bytes(3, field_varint(1, lease_index) + field_bytes(2, result))


def record(control, message):
    return bytes([control]) + struct.pack("<H", len(message)) + message


REMAP = 0x80  # lease ids below the number sent name those leases
SWEEP = 0x10
WORKER2 = 0x20
REJOIN = 0x40


def worker_message():
    hello = field_bytes(1, "w-1") + field_varint(2, 8)
    write("worker_message", "credit_then_complete",
          record(0, hello) +
          record(REMAP, completion(0, fetch_result("1", 200, 1, b"{}")) +
                 completion(1, fetch_result("2", 500, 0, error=1)) +
                 field_varint(2, 2)))
    write("worker_message", "two_workers_release_and_drain",
          record(0, field_varint(2, 4)) +
          record(WORKER2, field_varint(2, 4)) +
          record(REMAP | WORKER2, field_bytes(4, varint(4) + varint(5)) +
                 field_varint(5, 1) + field_varint(6, 2)) +
          record(REMAP | SWEEP | 2, completion(0, fetch_result("1", 200, 1))))
    pause = field_bytes(7, field_bytes(1, "a.example") + field_varint(2, 1500))
    event = field_bytes(8, field_bytes(1, "b.example") + field_varint(2, 1) +
                        field_varint(3, 30000) + field_varint(4, 20) +
                        field_varint(5, 15) + field_varint(6, 2))
    write("worker_message", "pause_and_breaker_event",
          record(0, field_varint(2, 16) + pause + event) +
          record(SWEEP | 3, field_varint(2, 1)))
    write("worker_message", "worker_times_out_and_late_result",
          record(0, field_varint(2, 3)) +
          record(SWEEP | 15, b"") +
          record(WORKER2 | SWEEP | 15, field_varint(2, 1)) +
          record(REMAP, completion(0, fetch_result("1", 200, 1))))
    write("worker_message", "rejoin_and_duplicate_completion",
          record(WORKER2, field_varint(2, 30)) +
          record(REMAP | WORKER2, completion(0, fetch_result("1", 200, 1)) +
                 completion(0, fetch_result("1", 200, 1))) +
          record(REJOIN, field_varint(2, 1)) +
          record(REMAP | WORKER2, completion(1, fetch_result("2", 204, 1))))


# --- RESP replies for redis_replies: the first byte picks the first decoder
def resp(value):
    if isinstance(value, int):
        return b":%d\r\n" % value
    if value is None:
        return b"$-1\r\n"
    if isinstance(value, (bytes, str)):
        if isinstance(value, str):
            value = value.encode()
        return b"$%d\r\n%s\r\n" % (len(value), value)
    return b"*%d\r\n" % len(value) + b"".join(resp(v) for v in value)


def redis_replies():
    v = 1764648000000
    write("redis_replies", "admit_probe_open_half_open",
          b"\x00" + resp(["probe", 5000, 1, v]) +
          resp([["open", 12000, 1, 20, 15, 2, 30000, v + 1]]) +
          resp(["half_open", 800, 0, v + 2]) + resp("x") +
          resp([b"ff:br:{a.example}", b"ff:br:{a.example}:probe", b"other"]))
    write("redis_replies", "record_batch",
          b"\x01" + resp([["closed", 0, 0, 3, 0, 0, 0, v],
                          ["open", 30000, 1, 20, 15, 2, 30000, v + 5]]))
    write("redis_replies", "probe_done_and_events",
          b"\x02" + resp(["closed", 0, 1, v]) +
          resp(["message", "ff:br:events", "a.example\nopen\n30000\n%d" % v]) +
          resp(["subscribe", "ff:br:events", 1]))
    write("redis_replies", "event_messages",
          b"\x03" + resp(["message", "ff:br:events", "k\nhalf_open\n100\n%d" % v]) +
          resp([]) + resp([None, None, None]) +
          resp(["message", "ff:br:events", "k\nclosed\n0\n%d" % (v + 9)]) +
          resp(["message", "ff:br:events", "bad"]))
    write("redis_replies", "errors_and_nils",
          b"\x00" + b"-NOSCRIPT No matching script\r\n" + resp([None, "x", -1]) +
          resp(["open", -5, 1, -1]) + b"+OK\r\n" + resp([[["deep"]]]))


# --- result_json: the fixed fields little-endian, then texts (each ends at a
# backslash and another byte), then the body.
def result_json():
    def fields(strings, headers, body, seq, index, status, ok, attempts,
               latency, body_bytes, truncated, error):
        head = struct.pack("<QQiBIdQbB", seq, index, status,
                           ok | truncated << 1, attempts, latency, body_bytes,
                           error, len(headers))
        texts = list(strings) + [t for h in headers for t in h]
        return head + b"".join(t.replace(b"\\", b"\\\\") + b"\\ "
                               for t in texts) + body

    write("result_json", "ok_json_body",
          fields([b"u1", b"https://api.example/users/u1", b"", b"w-1"], [],
                 b'{"a": "\xc3\xa9"}', 17, 3, 200, 1, 1, 41.23, 12, 0, 0))
    write("result_json", "error_binary_body_headers",
          fields([b"x\xff", b"http://a.example/\x01", b"address is private\n",
                  b"w-\xc3"], [(b"Content-Type", b"text/plain"),
                               (b"X-\xfe", b"v\x00\"\\")],
                 b"\xff\x00\x01", 1, 0, 0, 0, 3, 0.0, 3, 1, 8))
    write("result_json", "huge_latency_unknown_error",
          fields([b"id", b"url", b"\xe2\x82", b""], [(b"", b"")], b"",
                 1 << 63, 5, -1, 0, 4294967295, 1e300, (1 << 64) - 1, 0, 19))


if __name__ == "__main__":
    worker_message()
    redis_replies()
    result_json()
