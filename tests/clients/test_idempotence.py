"""Idempotent produce over the raw wire: a retried batch is answered with its original
offset and written once; a sequence gap is refused. Frames are built by hand (with
kafka-python's batch builder) so the test controls exactly what a retry looks like."""

import socket
import struct

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.record.default_records import DefaultRecordBatchBuilder

OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_TXN_STATE = 48


class Connection:
    def __init__(self, broker):
        self.socket = socket.create_connection(("127.0.0.1", broker.port), timeout=30)
        self.correlation_id = 0

    def request(self, api_key, version, body):
        self.correlation_id += 1
        header = struct.pack(">hhih", api_key, version, self.correlation_id, 4) + b"test"
        self.socket.sendall(struct.pack(">i", len(header) + len(body)) + header + body)
        size = struct.unpack(">i", self.read(4))[0]
        response = self.read(size)
        assert struct.unpack(">i", response[:4])[0] == self.correlation_id
        return response[4:]

    def read(self, count):
        data = b""
        while len(data) < count:
            chunk = self.socket.recv(count - len(data))
            assert chunk, "connection closed"
            data += chunk
        return data

    def init_producer_id(self):
        response = self.request(22, 0, struct.pack(">hi", -1, 60_000))
        _throttle, error, producer_id, epoch = struct.unpack(">ihqh", response)
        assert error == 0
        return producer_id, epoch

    def produce(self, topic, batch, version=3):
        name = topic.encode()
        # v3 added the transactional id (null here) before acks.
        transactional_id = struct.pack(">h", -1) if version >= 3 else b""
        body = (transactional_id + struct.pack(">hi", -1, 30_000)
                + struct.pack(">ih", 1, len(name)) + name
                + struct.pack(">iii", 1, 0, len(batch)) + bytes(batch))
        response = self.request(0, version, body)
        offset = 4 + 2 + len(name) + 4  # topic count, name, partition count
        _index, error, base_offset = struct.unpack(">ihq", response[offset:offset + 14])
        return error, base_offset


def batch(producer_id, epoch, sequence, count, transactional=False):
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=transactional,
                                        producer_id=producer_id, producer_epoch=epoch,
                                        base_sequence=sequence, batch_size=1 << 20)
    for i in range(count):
        builder.append(i, timestamp=None, key=None, value=f"s{sequence + i}".encode(), headers=[])
    return builder.build()


def test_retried_batches_are_written_once(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("once", 1, 1)])["once"].result(30)
    connection = Connection(broker)
    producer_id, epoch = connection.init_producer_id()
    assert connection.produce("once", batch(producer_id, epoch, 0, 3)) == (0, 0)
    assert connection.produce("once", batch(producer_id, epoch, 3, 2)) == (0, 3)
    # The retry of the first batch: acknowledged again, with the original offset.
    assert connection.produce("once", batch(producer_id, epoch, 0, 3)) == (0, 0)
    error, _ = connection.produce("once", batch(producer_id, epoch, 9, 1))
    assert error == OUT_OF_ORDER_SEQUENCE_NUMBER
    # Another producer id is independent of the first.
    other_id, other_epoch = connection.init_producer_id()
    assert other_id != producer_id
    assert connection.produce("once", batch(other_id, other_epoch, 0, 1)) == (0, 5)

    broker.kill()
    broker.start()
    connection = Connection(broker)
    # After a crash the state is rebuilt from the log: the retry is still recognised.
    assert connection.produce("once", batch(producer_id, epoch, 3, 2)) == (0, 3)
    consumer = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "check"})
    low, high = consumer.get_watermark_offsets(ck.TopicPartition("once", 0), timeout=30)
    consumer.close()
    assert (low, high) == (0, 6)


UNSUPPORTED_VERSION = 35
INVALID_TOPIC_EXCEPTION = 17
INVALID_RECORD = 87


def test_refused_produce_requests_write_nothing(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("refused", 1, 1)])["refused"].result(30)
    connection = Connection(broker)
    # Produce v0-v2 (message formats v0/v1) are advertised, as by Kafka 4, and refused.
    for version in (0, 1, 2):
        error, _ = connection.produce("refused", batch(-1, -1, -1, 1), version=version)
        assert error == UNSUPPORTED_VERSION, version
    # Clients do not write internal topics, nor transactional batches outside a transaction
    # that holds the partition.
    error, _ = connection.produce("__consumer_offsets", batch(-1, -1, -1, 1))
    assert error == INVALID_TOPIC_EXCEPTION
    producer_id, epoch = connection.init_producer_id()
    error, _ = connection.produce("refused", batch(producer_id, epoch, 0, 1, transactional=True))
    assert error == INVALID_TXN_STATE
    # The connection still works, and nothing was written.
    assert connection.produce("refused", batch(-1, -1, -1, 2)) == (0, 0)
    consumer = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "refused"})
    low, high = consumer.get_watermark_offsets(ck.TopicPartition("refused", 0), timeout=30)
    consumer.close()
    assert (low, high) == (0, 2)
