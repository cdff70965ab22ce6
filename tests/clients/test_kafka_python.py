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
