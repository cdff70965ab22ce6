"""Consumer groups with real clients: rebalances on join, kill and leave; commits honoured
and durable across a broker SIGKILL; admin views of groups."""

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer

MEMBER = Path(__file__).with_name("group_member.py")
TIMEOUT_S = 60


class Member:
    """A group member process and the events it printed."""

    def __init__(self, broker, topic, group):
        self.process = subprocess.Popen(
            [sys.executable, str(MEMBER), broker.bootstrap, topic, group],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.events = queue.Queue()
        self.assigned = []
        self.records = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.events.put(json.loads(line))

    def drain(self):
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return
            if "assigned" in event:
                self.assigned = event["assigned"]
            else:
                self.records.append((event["partition"], event["offset"], event["value"]))

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=30)


def wait_until(condition, what):
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def produce(broker, topic, values):
    producer = ck.Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
    for value in values:
        producer.produce(topic, key=value, value=value)
    assert producer.flush(30) == 0


def create_topic(broker, topic, partitions):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    return admin


def committed(broker, group, topic, partitions):
    consumer = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    found = consumer.committed([ck.TopicPartition(topic, p) for p in range(partitions)], timeout=30)
    consumer.close()
    return {tp.partition: tp.offset for tp in found}


def test_three_members_one_killed_every_record_consumed_commits_honoured(broker):
    admin = create_topic(broker, "orders", 6)
    members = [Member(broker, "orders", "billing") for _ in range(3)]
    try:
        def balanced():
            for m in members:
                m.drain()
            owned = [p for m in members for p in m.assigned]
            return sorted(owned) == list(range(6)) and all(len(m.assigned) == 2 for m in members)

        wait_until(balanced, "six partitions spread over three members")
        first = [f"a{i}" for i in range(1500)]
        produce(broker, "orders", first)

        def consumed(values):
            def check():
                for m in members:
                    m.drain()
                seen = {r[2] for m in members for r in m.records}
                return seen >= set(values)
            return check

        wait_until(consumed(first), "the first 1500 records")
        victim, survivors = members[0], members[1:]
        victim_partitions = set(victim.assigned)
        victim.kill()  # no LeaveGroup: the broker must notice the silent session
        second = [f"b{i}" for i in range(1500)]
        produce(broker, "orders", second)
        members = survivors

        def reassigned():
            for m in survivors:
                m.drain()
            return sorted(p for m in survivors for p in m.assigned) == list(range(6))

        wait_until(reassigned, "the killed member's partitions reassigned")
        wait_until(consumed(second), "the second 1500 records")
        # The victim committed each record before reporting it: its successors start from
        # those commits and never see its first-phase records again.
        victim_values = {r[2] for r in victim.records}
        replayed = [r for m in survivors for r in m.records
                    if r[0] in victim_partitions and r[2] in victim_values]
        assert replayed == []
    finally:
        for m in members:
            m.stop()
    ends = {}
    probe = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "probe"})
    for p in range(6):
        ends[p] = probe.get_watermark_offsets(ck.TopicPartition("orders", p), timeout=30)[1]
    probe.close()
    assert sum(ends.values()) == 3000
    before = committed(broker, "billing", "orders", 6)
    assert before == ends

    broker.kill()
    broker.start()
    assert committed(broker, "billing", "orders", 6) == before
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})  # the old one saw the kill
    listed = admin.list_consumer_groups().result(30)
    assert "billing" in {g.group_id for g in listed.valid}, listed.errors


def test_admin_describes_lists_and_deletes_groups(broker):
    admin = create_topic(broker, "events", 2)
    produce(broker, "events", [f"v{i}" for i in range(10)])
    consumer = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "viewers",
                            "auto.offset.reset": "earliest", "client.id": "viewer-1"})
    consumer.subscribe(["events"])
    got = 0
    deadline = time.monotonic() + TIMEOUT_S
    while got < 10 and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None and not m.error():
            got += 1
    consumer.commit(asynchronous=False)
    description = admin.describe_consumer_groups(["viewers"])["viewers"].result(30)
    assert description.state == ck.ConsumerGroupState.STABLE
    assert [m.client_id for m in description.members] == ["viewer-1"]
    assigned = {tp.partition for tp in description.members[0].assignment.topic_partitions}
    assert assigned == {0, 1}
    # A group with a member cannot be deleted.
    result = admin.delete_consumer_groups(["viewers"])["viewers"]
    error = result.exception(30)
    assert error is not None and error.args[0].code() == ck.KafkaError.NON_EMPTY_GROUP
    consumer.close()
    description = admin.describe_consumer_groups(["viewers"])["viewers"].result(30)
    assert description.state == ck.ConsumerGroupState.EMPTY
    admin.delete_consumer_groups(["viewers"])["viewers"].result(30)
    listed = admin.list_consumer_groups().result(30)
    assert "viewers" not in {g.group_id for g in listed.valid}
    assert committed(broker, "viewers", "events", 2) == {0: -1001, 1: -1001}


def test_kafka_python_group_consumer_resumes_from_its_commit(broker):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)  # idempotent by default
    for i in range(100):
        producer.send("kpg", value=f"v{i}".encode())
    producer.flush(30)

    def consume(count):
        consumer = KafkaConsumer("kpg", bootstrap_servers=broker.bootstrap, group_id="kpg-group",
                                 auto_offset_reset="earliest", enable_auto_commit=False,
                                 consumer_timeout_ms=20_000)
        values = []
        for message in consumer:
            values.append(message.value.decode())
            if len(values) == count:
                break
        consumer.commit()
        consumer.close()
        return values

    assert consume(40) == [f"v{i}" for i in range(40)]
    for i in range(100, 120):
        producer.send("kpg", value=f"v{i}".encode())
    producer.flush(30)
    producer.close()
    assert consume(80) == [f"v{i}" for i in range(40, 120)]
