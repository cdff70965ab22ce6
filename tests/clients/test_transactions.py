"""Transactions (KIP-98, KIP-447) with confluent-kafka (librdkafka) and kafka-python against a
real `fjord serve`: what read_committed and read_uncommitted consumers see, offsets sent to a
transaction, fencing, and the broker killed with SIGKILL at each step of a commit.

Every read ends at a sentinel: a plain record produced after the transactions being checked
ended, so "nothing more arrives" is known from the log, never from a pause."""

import struct
import threading
import time

import confluent_kafka as ck
import pytest
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from conftest import Broker

TIMEOUT_S = 60
# Short transaction timeouts and a fast abort check, so aborts by timeout come quickly.
TXN_ARGS = ("--transaction-abort-timed-out-transaction-cleanup-interval-ms", "200",
            "--group-initial-rebalance-delay-ms", "0")


def wait_until(condition, what):
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def create(broker, topics):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.create_topics([NewTopic(name, count, 1) for name, count in topics.items()])
    for future in futures.values():
        future.result(30)


def transactional(broker, transactional_id, timeout_ms=60_000):
    producer = ck.Producer({"bootstrap.servers": broker.bootstrap,
                            "transactional.id": transactional_id,
                            "transaction.timeout.ms": timeout_ms})
    producer.init_transactions(30)
    return producer


def send(producer, records):
    """Produces (topic, partition, value) records and waits until the broker has them."""
    for topic, partition, value in records:
        producer.produce(topic, value=value.encode(), partition=partition)
    assert producer.flush(30) == 0


def end_with_sentinels(broker, partitions):
    """A plain record at the end of each partition: reads stop there."""
    producer = ck.Producer({"bootstrap.servers": broker.bootstrap})
    send(producer, [(topic, p, "sentinel") for topic, p in partitions])


def read(broker, partitions, isolation):
    """Every value of each partition up to its sentinel, in offset order."""
    consumer = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "reader",
                            "isolation.level": isolation, "enable.auto.commit": False})
    consumer.assign([ck.TopicPartition(t, p, 0) for t, p in partitions])
    got = {tp: [] for tp in partitions}
    open_partitions = set(partitions)
    deadline = time.monotonic() + TIMEOUT_S
    while open_partitions and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is None or message.error():
            continue
        tp = (message.topic(), message.partition())
        if message.value() == b"sentinel":
            open_partitions.discard(tp)
        elif tp in open_partitions:
            got[tp].append(message.value().decode())
    consumer.close()
    assert not open_partitions, f"no sentinel read from {open_partitions}"
    return got


def latest(broker, topic, partition, isolation):
    """ListOffsets latest: the high watermark, or under read_committed the LSO."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    tp = ck.TopicPartition(topic, partition)
    level = getattr(ck.IsolationLevel, isolation.upper())
    found = admin.list_offsets({tp: OffsetSpec.latest()}, isolation_level=level)
    return found[tp].result(30).offset


def committed(broker, group, partitions):
    consumer = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    found = consumer.committed([ck.TopicPartition(t, p) for t, p in partitions], timeout=30)
    consumer.close()
    return {(tp.topic, tp.partition): tp.offset for tp in found}


def test_commits_and_aborts_interleaved_over_topics_are_read_as_they_must(broker):
    partitions = [("alpha", 0), ("alpha", 1), ("alpha", 2), ("beta", 0), ("beta", 1)]
    create(broker, {"alpha": 3, "beta": 2})
    one, two = transactional(broker, "one"), transactional(broker, "two")
    plain = ck.Producer({"bootstrap.servers": broker.bootstrap})
    outcome = {}  # value -> committed?
    for round_ in range(4):
        one.begin_transaction()
        two.begin_transaction()
        for i, (topic, p) in enumerate(partitions):
            for producer, name in ((one, "one"), (two, "two")):
                value = f"{name}-{round_}-{i}"
                send(producer, [(topic, p, value)])
                outcome[value] = (name == "one") == (round_ % 2 == 0)
            value = f"plain-{round_}-{i}"
            send(plain, [(topic, p, value)])
            outcome[value] = True
        if round_ == 0:
            # Both open: read_committed stops at the first transactional record, at 0.
            assert latest(broker, "alpha", 0, "read_committed") == 0
            assert latest(broker, "alpha", 0, "read_uncommitted") == 3
        # Round 0 and 2: one commits, two aborts; round 1 and 3 the other way round.
        for producer, name in ((one, "one"), (two, "two")):
            if (name == "one") == (round_ % 2 == 0):
                producer.commit_transaction(30)
            else:
                producer.abort_transaction(30)
        # Markers written: nothing is open, the LSO is the high watermark.
        assert latest(broker, "beta", 1, "read_committed") == \
            latest(broker, "beta", 1, "read_uncommitted")
    end_with_sentinels(broker, partitions)

    uncommitted = read(broker, partitions, "read_uncommitted")
    committed_ = read(broker, partitions, "read_committed")
    for tp in partitions:
        assert sorted(uncommitted[tp]) == sorted(v for v in outcome if v.endswith(
            f"-{partitions.index(tp)}")), tp
        assert committed_[tp] == [v for v in uncommitted[tp] if outcome[v]], tp
    assert sum(len(v) for v in committed_.values()) == sum(outcome.values())


def test_offsets_sent_to_a_transaction_move_the_group_only_on_commit(broker):
    create(broker, {"input": 2, "output": 1})
    send(ck.Producer({"bootstrap.servers": broker.bootstrap}),
         [("input", i % 2, f"in-{i}") for i in range(20)])
    consumer = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "copier",
                            "auto.offset.reset": "earliest", "enable.auto.commit": False,
                            "isolation.level": "read_committed"})
    consumer.subscribe(["input"])
    got = []

    def consumed_all():
        message = consumer.poll(0.2)
        if message is not None and not message.error():
            got.append(message)
        return len(got) == 20

    wait_until(consumed_all, "twenty input records")
    producer = transactional(broker, "copier-out")
    inputs = [("input", 0), ("input", 1)]
    for commit in (False, True):
        producer.begin_transaction()
        send(producer, [("output", 0, m.value().decode()) for m in got])
        positions = consumer.position([ck.TopicPartition(t, p) for t, p in inputs])
        producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
        if commit:
            producer.commit_transaction(30)
            assert committed(broker, "copier", inputs) == {("input", 0): 10, ("input", 1): 10}
        else:
            producer.abort_transaction(30)
            # The group's offsets did not move: nothing was committed before.
            assert committed(broker, "copier", inputs) == {("input", 0): -1001,
                                                           ("input", 1): -1001}
    consumer.close()
    end_with_sentinels(broker, [("output", 0)])
    copied = read(broker, [("output", 0)], "read_committed")[("output", 0)]
    assert sorted(copied) == sorted(m.value().decode() for m in got)


def test_a_second_producer_with_the_same_id_fences_the_first(broker):
    create(broker, {"fenced": 1})
    zombie = transactional(broker, "shared")
    zombie.begin_transaction()
    send(zombie, [("fenced", 0, "zombie-0")])
    current = transactional(broker, "shared")  # bumps the epoch, aborts the zombie's data
    current.begin_transaction()
    send(current, [("fenced", 0, "current-0")])
    try:
        # librdkafka raises at the flush (the produce is refused) or at the commit.
        zombie.produce("fenced", value=b"zombie-1", partition=0)
        zombie.flush(30)
        zombie.commit_transaction(30)
        raise AssertionError("the fenced producer committed")
    except ck.KafkaException as error:
        assert error.args[0].fatal(), error
        assert error.args[0].code() in (ck.KafkaError._FENCED, ck.KafkaError.PRODUCER_FENCED,
                                        ck.KafkaError.INVALID_PRODUCER_EPOCH), error
    current.commit_transaction(30)
    end_with_sentinels(broker, [("fenced", 0)])
    assert read(broker, [("fenced", 0)], "read_committed")[("fenced", 0)] == ["current-0"]
    assert read(broker, [("fenced", 0)], "read_uncommitted")[("fenced", 0)] == \
        ["zombie-0", "current-0"]


@pytest.fixture
def txn_broker(tmp_path):
    """A broker that aborts timed-out transactions within 200 ms of their timeout."""
    broker = Broker(tmp_path / "data").start(*TXN_ARGS)
    yield broker
    if broker.alive():
        assert broker.stop() == 0, broker.log.read_text()


def test_sigkill_during_an_open_transaction_aborts_it_on_its_timeout(txn_broker):
    broker = txn_broker
    kept = [("kept", 0), ("kept", 1)]
    create(broker, {"kept": 2})
    committer = transactional(broker, "done")
    committer.begin_transaction()
    send(committer, [(t, p, f"committed-{p}") for t, p in kept])
    committer.commit_transaction(30)
    left_open = transactional(broker, "open", timeout_ms=3000)
    left_open.begin_transaction()
    send(left_open, [(t, p, f"open-{p}") for t, p in kept])
    broker.kill()
    broker.start(*TXN_ARGS)
    # Still open after the restart: read_committed stops before it (at offset 2, after the
    # committed record and its marker) until the timeout aborts it.
    assert latest(broker, "kept", 0, "read_committed") in (2, 4)
    wait_until(lambda: all(latest(broker, t, p, "read_committed")
                           == latest(broker, t, p, "read_uncommitted") for t, p in kept),
               "the open transaction aborted by its timeout")
    end_with_sentinels(broker, kept)
    assert read(broker, kept, "read_committed") == {tp: [f"committed-{tp[1]}"] for tp in kept}
    assert read(broker, kept, "read_uncommitted") == \
        {tp: [f"committed-{tp[1]}", f"open-{tp[1]}"] for tp in kept}


def copy_in_a_transaction(broker, transactional_id, values):
    """Begins a transaction that writes `values` to `out` and commits offset 5 of `in` for
    group `copier`; returns the producer, ready to commit."""
    producer = transactional(broker, transactional_id)
    producer.begin_transaction()
    send(producer, [("out", i % 2, v) for i, v in enumerate(values)])
    metadata = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "copier"})
    producer.send_offsets_to_transaction([ck.TopicPartition("in", 0, 5)],
                                         metadata.consumer_group_metadata(), 30)
    metadata.close()
    return producer


def assert_copied(broker, values):
    """`copy_in_a_transaction`'s commit is all there: the group at 5, every value in `out`."""
    outs = [("out", 0), ("out", 1)]
    assert committed(broker, "copier", [("in", 0)]) == {("in", 0): 5}
    end_with_sentinels(broker, outs)
    got = read(broker, outs, "read_committed")
    assert sorted(got[("out", 0)] + got[("out", 1)]) == sorted(values)


def test_sigkill_in_prepare_commit_completes_the_commit_after_restart(tmp_path):
    broker = Broker(tmp_path / "data").start(
        *TXN_ARGS, env={"FJORD_TEST_HOLD_AT": "markers-writing"})
    try:
        create(broker, {"in": 1, "out": 2})
        values = [f"v{i}" for i in range(10)]
        producer = copy_in_a_transaction(broker, "held", values)
        outcome = {}
        committing = threading.Thread(
            target=lambda: outcome.update(done=_commit(producer)), daemon=True)
        committing.start()
        wait_until(lambda: "held at markers-writing" in broker.log.read_text(),
                   "the commit held between PrepareCommit and its markers")
        assert latest(broker, "out", 0, "read_committed") == 0, "no marker written yet"
        broker.kill()
        broker.start(*TXN_ARGS)
        # Start-up completed the commit: data visible, offsets moved.
        assert_copied(broker, values)
        # The producer's EndTxn, retried against the restarted broker, is answered as done.
        committing.join(TIMEOUT_S)
        assert outcome.get("done") is True, outcome
    finally:
        if broker.alive():
            assert broker.stop() == 0


def _commit(producer):
    try:
        producer.commit_transaction(TIMEOUT_S)
        return True
    except ck.KafkaException as error:
        return error.args[0]


def test_sigkill_right_after_commit_keeps_data_and_offsets(txn_broker):
    broker = txn_broker
    create(broker, {"in": 1, "out": 2})
    values = [f"w{i}" for i in range(10)]
    copy_in_a_transaction(broker, "quick", values).commit_transaction(30)
    broker.kill()
    broker.start(*TXN_ARGS)
    assert_copied(broker, values)
    # The id carries on after the restart with its epoch bumped.
    again = transactional(broker, "quick")
    again.begin_transaction()
    send(again, [("out", 0, "after")])
    again.commit_transaction(30)


def test_kafka_python_commits_and_aborts(broker):
    from kafka import KafkaProducer

    create(broker, {"kp-txn": 1})
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id="kp")
    producer.init_transactions()
    for value, commit in (("kept", True), ("dropped", False)):
        producer.begin_transaction()
        producer.send("kp-txn", value=value.encode(), partition=0)
        producer.flush(30)
        if commit:
            producer.commit_transaction()
        else:
            producer.abort_transaction()
    producer.close()
    end_with_sentinels(broker, [("kp-txn", 0)])
    assert read(broker, [("kp-txn", 0)], "read_committed") == {("kp-txn", 0): ["kept"]}
    assert read(broker, [("kp-txn", 0)], "read_uncommitted") == \
        {("kp-txn", 0): ["kept", "dropped"]}


def test_bad_transactional_requests_get_kafka_error_codes(broker):
    """Over the raw wire: an unknown id, a timeout past the maximum, an empty id."""
    from test_idempotence import Connection

    invalid_producer_id_mapping, invalid_transaction_timeout, invalid_request = 49, 50, 42
    connection = Connection(broker)

    def string(text):
        return struct.pack(">h", len(text)) + text.encode()

    def init(transactional_id, timeout_ms):
        body = string(transactional_id) + struct.pack(">i", timeout_ms)
        _throttle, error, _id, _epoch = struct.unpack(">ihqh", connection.request(22, 0, body))
        return error

    def end(transactional_id, producer_id, epoch):
        body = string(transactional_id) + struct.pack(">qhb", producer_id, epoch, 1)
        _throttle, error = struct.unpack(">ih", connection.request(26, 0, body))
        return error

    assert end("never-initialised", 1234, 0) == invalid_producer_id_mapping
    assert init("too-long", 900_001) == invalid_transaction_timeout
    assert init("", 60_000) == invalid_request
    assert init("fine", 60_000) == 0
    # The connection and the broker carry on.
    assert end("fine", 1234, 0) == invalid_producer_id_mapping
