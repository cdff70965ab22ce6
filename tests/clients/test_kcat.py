"""kcat (librdkafka 2.0.2 from Debian): old and strict about ApiVersions."""

import struct
import subprocess

import pytest

# Record batch v2 attributes: the low three bits are the codec.
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


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
    # Stored as sent: librdkafka before 2.11.1 sends compressed batches only if Produce is
    # advertised from v0 (librdkafka#4956), as Kafka 4 does.
    # librdkafka sends a batch uncompressed when compressing would not shrink it (a small
    # last batch), so uncompressed batches may sit beside the codec's.
    codecs = stored_codecs(broker.data_dir / "logs" / f"codec-{codec}-0")
    assert CODEC_IDS[codec] in codecs and codecs <= {0, CODEC_IDS[codec]}, codecs


def stored_codecs(partition_dir):
    """The codec ids of every batch in a partition's segment files, read from the files."""
    codecs = set()
    for segment in sorted(partition_dir.glob("*.log")):
        data = segment.read_bytes()
        position = 0
        while position + 61 <= len(data):
            (batch_length,) = struct.unpack_from(">i", data, position + 8)
            (attributes,) = struct.unpack_from(">h", data, position + 21)
            codecs.add(attributes & 0x7)
            position += 12 + batch_length
    return codecs


def test_consume_from_an_offset_and_the_end(broker):
    kcat(broker, "-P", "-t", "offsets", stdin=b"".join(b"m%d\n" % i for i in range(10)))
    assert kcat(broker, "-C", "-t", "offsets", "-o", "7", "-e", "-q").split() == ["m7", "m8", "m9"]
    assert kcat(broker, "-C", "-t", "offsets", "-o", "-2", "-e", "-q").split() == ["m8", "m9"]
