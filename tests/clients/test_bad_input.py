"""Hostile bytes close only their own connection; the broker keeps serving."""

import socket
import struct
import subprocess
import time
import urllib.request


def raw_request(broker, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s:
        s.sendall(payload)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def broker_still_serves(broker):
    result = subprocess.run(["kcat", "-b", broker.bootstrap, "-L"], capture_output=True, timeout=30)
    assert result.returncode == 0 and broker.alive()


def test_oversize_frame_is_refused_before_allocation(broker):
    assert raw_request(broker, struct.pack(">i", 2**31 - 1) + b"\x00" * 64) == b""
    assert raw_request(broker, struct.pack(">i", -5)) == b""
    broker_still_serves(broker)


def test_garbage_and_unknown_apis_close_the_connection(broker):
    # Unknown API key 999, then a Metadata v1 body cut short, then random bytes.
    for body in [struct.pack(">hhi", 999, 0, 1),
                 struct.pack(">hhih", 3, 1, 7, 3) + b"ab",
                 bytes(range(256)) * 4]:
        assert raw_request(broker, struct.pack(">i", len(body)) + body) == b""
    broker_still_serves(broker)


def test_api_versions_of_an_unknown_version_answers_with_ours(broker):
    body = struct.pack(">hhih", 18, 99, 42, -1)
    response = raw_request_one(broker, struct.pack(">i", len(body)) + body)
    size, correlation_id, error_code, count = struct.unpack(">iihi", response[:14])
    assert (correlation_id, error_code) == (42, 35)  # UNSUPPORTED_VERSION
    assert count >= 7


def raw_request_one(broker, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s:
        s.sendall(payload)
        header = s.recv(4)
        size = struct.unpack(">i", header)[0]
        body = b""
        while len(body) < size:
            body += s.recv(size - len(body))
        return header + body


def test_huge_array_counts_do_not_exhaust_memory(broker):
    # CreateTopics v2 claiming 2^31-1 topics, then v5 (compact arrays) claiming 2^32-2:
    # a decoder that reserves room for every claimed element before reading one asks
    # for hundreds of GiB. The connection closes; the broker lives.
    header = struct.pack(">hhih", 19, 2, 1, -1)
    body = header + struct.pack(">i", 2**31 - 1)
    assert raw_request(broker, struct.pack(">i", len(body)) + body) == b""
    header = struct.pack(">hhih", 19, 5, 2, -1) + b"\x00"  # flexible header: empty tag buffer
    body = header + b"\xff\xff\xff\xff\x0f"  # unsigned varint 2^32-1, i.e. 2^32-2 elements
    assert raw_request(broker, struct.pack(">i", len(body)) + body) == b""
    broker_still_serves(broker)


def api_versions(connection: socket.socket) -> bytes:
    """Sends ApiVersions v0 and returns the response body; b"" if the broker closed."""
    connection.sendall(struct.pack(">ihhih", 10, 18, 0, 1, 0))
    data = b""
    while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
        try:
            chunk = connection.recv(65536)
        except ConnectionResetError:
            return b""
        if not chunk:
            return b""
        data += chunk
    return data[4:]


def test_connections_past_the_per_address_limit_are_closed(tmp_path):
    from conftest import Broker

    broker = Broker(tmp_path / "data").start("--max-connections-per-ip", "3")
    try:
        # The start-up probe's connection may still be counted: wait until it is not.
        kept = []
        deadline = time.monotonic() + 30
        while len(kept) < 3 and time.monotonic() < deadline:
            connection = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
            if api_versions(connection):
                kept.append(connection)
            else:
                connection.close()
                time.sleep(0.05)
        assert len(kept) == 3
        # A fourth from the same address is closed before it is served.
        extra = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
        assert api_versions(extra) == b""
        extra.close()
        # Each open one still works; once one closes, a new connection is served again.
        assert all(api_versions(c) for c in kept)
        kept.pop().close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            again = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
            served = api_versions(again)
            again.close()
            if served:
                break
            time.sleep(0.05)
        assert served
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics_port}/metrics").read()
        assert b'fjord_connections_refused_total{limit="max.connections.per.ip"}' in metrics
    finally:
        for connection in kept:
            connection.close()
        assert broker.stop() == 0


def string(text: str) -> bytes:
    return struct.pack(">h", len(text)) + text.encode()


def test_a_parked_request_ends_when_its_client_goes(tmp_path):
    from conftest import Broker

    # A new group's first round waits a minute; a fetch for data that never comes too.
    broker = Broker(tmp_path / "data").start("--group-initial-rebalance-delay-ms", "60000")
    try:
        kcat = subprocess.run(["kcat", "-b", broker.bootstrap, "-P", "-t", "parked"],
                              input=b"one\n", capture_output=True, timeout=30)
        assert kcat.returncode == 0
        fetch = (struct.pack(">iiiib", -1, 60_000, 1, 1 << 20, 0) + struct.pack(">i", 1)
                 + string("parked") + struct.pack(">i", 1) + struct.pack(">iqi", 0, 1, 1 << 20))
        join = (string("parked-group") + struct.pack(">i", 30_000) + string("") + string("consumer")
                + struct.pack(">i", 1) + string("range") + struct.pack(">i", 0))
        for api_key, version, body in [(1, 4, fetch), (11, 0, join)]:
            connection = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
            header = struct.pack(">hhi", api_key, version, 1) + string("parked")
            connection.sendall(struct.pack(">i", len(header) + len(body)) + header + body)
            wait_for_connections(broker, 1)
            connection.close()
            # The request would wait a minute; the connection ends at once instead.
            wait_for_connections(broker, 0)
    finally:
        assert broker.stop() == 0


def wait_for_connections(broker, count):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        url = f"http://127.0.0.1:{broker.metrics_port}/metrics"
        for line in urllib.request.urlopen(url, timeout=10).read().decode().splitlines():
            if line.startswith("fjord_connections ") and float(line.split()[1]) == count:
                return
        time.sleep(0.05)
    raise AssertionError(f"fjord_connections never reached {count}")
