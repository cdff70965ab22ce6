"""confluent-kafka (librdkafka from PyPI): keys, headers, nulls, offsets, admin."""

import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def producer(broker, **extra):
    return Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, **extra})


def consume_all(broker, topic, partition, count):
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, partition, 0)])
    messages = []
    deadline = time.monotonic() + 30
    while len(messages) < count and time.monotonic() < deadline:
        message = consumer.poll(1)
        if message is None:
            continue
        assert message.error() is None, message.error()
        messages.append(message)
    consumer.close()
    return messages


def test_keys_headers_and_null_values_round_trip(broker):
    p = producer(broker, **{"acks": "all", "compression.type": "zstd"})
    for i in range(500):
        p.produce("records", key=f"k{i}".encode(), value=None if i % 50 == 0 else f"v{i}".encode(),
                  headers=[("trace", f"t{i}".encode()), ("trace", b"dup")])
    assert p.flush(30) == 0
    messages = consume_all(broker, "records", 0, 500)
    assert [m.offset() for m in messages] == list(range(500))
    for i, m in enumerate(messages):
        assert m.key() == f"k{i}".encode()
        assert m.value() == (None if i % 50 == 0 else f"v{i}".encode())
        assert m.headers() == [("trace", f"t{i}".encode()), ("trace", b"dup")]


def test_watermarks_and_offsets_for_times(broker):
    p = producer(broker)
    base = 1_700_000_000_000
    for i in range(100):
        p.produce("times", value=b"x", timestamp=base + i * 1000)
    assert p.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused"})
    assert consumer.get_watermark_offsets(TopicPartition("times", 0), timeout=10) == (0, 100)
    found = consumer.offsets_for_times([TopicPartition("times", 0, base + 41_500)], timeout=10)
    assert found[0].offset == 42
    later = consumer.offsets_for_times([TopicPartition("times", 0, base + 500_000)], timeout=10)
    assert later[0].offset == -1  # nothing that recent: the end
    consumer.close()


def test_admin_creates_and_deletes_topics(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.create_topics([NewTopic("made", num_partitions=6, replication_factor=1,
                                            config={"retention.ms": "3600000"})])
    futures["made"].result(10)
    metadata = admin.list_topics(timeout=10)
    assert len(metadata.topics["made"].partitions) == 6
    again = admin.create_topics([NewTopic("made", num_partitions=1, replication_factor=1)])
    try:
        again["made"].result(10)
        raise AssertionError("creating an existing topic succeeded")
    except KafkaException as e:
        assert e.args[0].name() == "TOPIC_ALREADY_EXISTS"
    bad = admin.create_topics([NewTopic("bad/name", num_partitions=1, replication_factor=1),
                               NewTopic("bad-config", num_partitions=1, replication_factor=1,
                                        config={"retention.ms": "soon"}),
                               NewTopic("bad-replicas", num_partitions=1, replication_factor=3)])
    errors = {}
    for name, future in bad.items():
        try:
            future.result(10)
        except KafkaException as e:
            errors[name] = e.args[0].name()
    assert errors == {"bad/name": "TOPIC_EXCEPTION", "bad-config": "INVALID_CONFIG",
                      "bad-replicas": "INVALID_REPLICATION_FACTOR"}
    admin.delete_topics(["made"])["made"].result(10)
    assert "made" not in admin.list_topics(timeout=10).topics


def test_data_survives_sigkill_and_topics_survive_restart(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("durable", num_partitions=3, replication_factor=1)])["durable"].result(10)
    p = producer(broker, acks="all")
    for i in range(3000):
        p.produce("durable", value=f"{i}".encode(), partition=i % 3)
    assert p.flush(30) == 0
    broker.kill()
    broker.start()
    metadata = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10)
    assert len(metadata.topics["durable"].partitions) == 3
    for partition in range(3):
        values = [int(m.value()) for m in consume_all(broker, "durable", partition, 1000)]
        assert values == list(range(partition, 3000, 3))
    assert broker.stop() == 0
    assert (broker.data_dir / "logs" / ".clean-shutdown").exists()
    broker.start()
