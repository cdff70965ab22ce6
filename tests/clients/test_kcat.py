"""kcat (librdkafka 2.0.2 from Debian): old and strict about ApiVersions."""

import subprocess

import pytest


def kcat(broker, *args, stdin=None):
    result = subprocess.run(
        ["kcat", "-b", broker.bootstrap, *args],
        input=stdin,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def test_metadata_lists_the_broker(broker):
    out = kcat(broker, "-L")
    assert f"broker 1 at {broker.bootstrap}" in out


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_produce_and_consume_with_every_codec(broker, codec):
    lines = [f"key{i}:{codec}-value-{i}" for i in range(2000)]
    kcat(broker, "-P", "-t", f"codec-{codec}", "-K:", "-z", codec, stdin="\n".join(lines).encode() + b"\n")
    out = kcat(broker, "-C", "-t", f"codec-{codec}", "-e", "-q", "-f", "%o %k:%s\\n")
    got = out.splitlines()
    assert got == [f"{i} {line}" for i, line in enumerate(lines)]


def test_consume_from_an_offset_and_the_end(broker):
    kcat(broker, "-P", "-t", "offsets", stdin=b"".join(b"m%d\n" % i for i in range(10)))
    assert kcat(broker, "-C", "-t", "offsets", "-o", "7", "-e", "-q").split() == ["m7", "m8", "m9"]
    assert kcat(broker, "-C", "-t", "offsets", "-o", "-2", "-e", "-q").split() == ["m8", "m9"]
