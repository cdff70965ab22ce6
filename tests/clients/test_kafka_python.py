"""kafka-python: a pure-Python client with its own protocol code and version probing."""

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def test_produce_and_consume(broker):
    # kafka-python's producer is idempotent by default: InitProducerId, then sequenced batches.
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", compression_type="gzip")
    for i in range(300):
        producer.send("kp", key=f"k{i}".encode(), value=f"v{i}".encode(), headers=[("h", b"1")])
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=10_000)
    tp = TopicPartition("kp", 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    got = []
    for message in consumer:
        got.append((message.offset, message.key, message.value, message.headers))
        if len(got) == 300:
            break
    consumer.close()
    assert got == [(i, f"k{i}".encode(), f"v{i}".encode(), [("h", b"1")]) for i in range(300)]


def test_consume_through_an_incremental_fetch_session(broker):
    """kafka-python keeps a KIP-227 fetch session: after the first full fetch it sends only
    the partitions whose position moved, and the broker answers only partitions with news."""
    import time
    import urllib.request

    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("incremental", 3, 1)])["incremental"].result(30)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)

    def produce(start, count):
        for i in range(start, start + count):
            producer.send("incremental", value=f"v{i}".encode(), partition=i % 3)
        producer.flush(30)

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=10_000, fetch_max_wait_ms=100)
    partitions = [TopicPartition("incremental", p) for p in range(3)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)

    def consume(count):
        got = []
        for message in consumer:
            got.append(message.value.decode())
            if len(got) == count:
                break
        return got

    produce(0, 150)
    first = consume(150)
    # A second round while the session is open: incremental fetches carry it.
    produce(150, 60)
    second = consume(60)
    assert sorted(first + second, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(210)]
    sessions = None
    deadline = time.monotonic() + 30  # the gauge is sampled every few seconds
    while time.monotonic() < deadline:
        url = f"http://127.0.0.1:{broker.metrics_port}/metrics"
        for line in urllib.request.urlopen(url, timeout=10).read().decode().splitlines():
            if line.startswith("fjord_fetch_sessions "):
                sessions = float(line.split()[1])
        if sessions:
            break
        time.sleep(0.5)
    consumer.close()
    producer.close()
    assert sessions and sessions >= 1, "kafka-python opened a fetch session"
