"""The Prometheus endpoint reports traffic per topic, requests per API, connections and
consumer group lag."""

import time
import urllib.request

import confluent_kafka as ck


def scrape(broker):
    url = f"http://127.0.0.1:{broker.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return response.read().decode()


def value(text, prefix):
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_count_traffic_and_lag(broker):
    producer = ck.Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(100):
        producer.produce("metered", value=b"x" * 100)
    assert producer.flush(30) == 0
    consumer = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "meter",
                            "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(["metered"])
    got = 0
    deadline = time.monotonic() + 60
    while got < 40 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            got += 1
            last = message
    consumer.commit(message=last, asynchronous=False)  # committed offset 40: lag 60

    text = scrape(broker)
    assert value(text, 'fjord_records_in_total{topic="metered"}') == 100
    assert value(text, 'fjord_bytes_in_total{topic="metered"}') > 100 * 100
    assert value(text, 'fjord_records_out_total{topic="metered"}') >= 40
    assert value(text, 'fjord_requests_total{api="Produce",version="') >= 1
    assert value(text, "fjord_connections") >= 1
    assert "fjord_request_duration_seconds" in text
    lag = 'fjord_consumer_group_lag{group="meter",topic="metered",partition="0"}'
    deadline = time.monotonic() + 60  # the lag gauges are sampled every few seconds
    while value(text, lag) is None and time.monotonic() < deadline:
        time.sleep(0.5)
        text = scrape(broker)
    assert value(text, lag) == 60
    consumer.close()


def test_metrics_count_transactions_by_state(broker):
    producer = ck.Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "metered"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce("metered-txn", value=b"x")
    assert producer.flush(30) == 0
    ongoing = 'fjord_transactional_ids{state="Ongoing"}'
    text = scrape(broker)
    deadline = time.monotonic() + 60  # sampled every few seconds
    while value(text, ongoing) != 1 and time.monotonic() < deadline:
        time.sleep(0.5)
        text = scrape(broker)
    assert value(text, ongoing) == 1
    assert value(text, "fjord_transaction_oldest_open_seconds") >= 0
    assert value(text, 'fjord_requests_total{api="AddPartitionsToTxn",version="') >= 1
    producer.commit_transaction(30)
    committed = 'fjord_transactional_ids{state="CompleteCommit"}'
    while value(text, committed) != 1 and time.monotonic() < deadline:
        time.sleep(0.5)
        text = scrape(broker)
    assert value(text, committed) == 1 and value(text, ongoing) == 0
