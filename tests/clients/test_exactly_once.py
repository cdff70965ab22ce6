"""Exactly once under crashes: a consume-transform-produce loop (two member processes,
confluent-kafka transactions with KIP-447 group fencing) copies a topic under continuous input
while the broker and the members are killed with SIGKILL, several times each. The output, read
with read_committed, must hold every input record exactly once, checked record by record."""

import json
from collections import Counter
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import confluent_kafka as ck

from conftest import Broker
from test_transactions import TXN_ARGS, create, end_with_sentinels, read, wait_until

MEMBER = Path(__file__).with_name("txn_member.py")
INPUT_PARTITIONS = 4
OUTPUT_PARTITIONS = 2
RECORDS = 3000


class Member:
    """A member process, started again whenever it exits or is killed."""

    def __init__(self, broker, name, log):
        self.broker, self.name, self.log = broker, name, log
        self.committed = queue.Queue()
        self.restarts = 0
        self.process = None
        self.start()

    def start(self):
        self.process = subprocess.Popen(
            [sys.executable, str(MEMBER), self.broker.bootstrap, "copier", f"copier-{self.name}",
             "eo-in", "eo-out"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(self.log, "a"), text=True)
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()

    def _read(self, process):
        for line in process.stdout:
            event = json.loads(line)
            if "committed" in event:
                self.committed.put(event["committed"])
            else:
                with open(self.log, "a") as log:
                    log.write(line)

    def keep_alive(self):
        if self.process.poll() is not None:
            self.restarts += 1
            self.start()

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=30)
        self.restarts += 1
        self.start()

    def stop(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def produce_input(broker, done):
    """RECORDS values into the input topic, in small flushed batches, idempotently: a batch
    the broker crash left unacknowledged is retried and written once."""
    producer = ck.Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                            "message.timeout.ms": 120_000})
    for start in range(0, RECORDS, 20):
        for i in range(start, start + 20):
            producer.produce("eo-in", value=f"r{i}".encode(), partition=i % INPUT_PARTITIONS)
        producer.flush(120)
        time.sleep(0.1)  # a stream over the whole test rather than one burst; not asserted on
    assert producer.flush(120) == 0
    done.set()


def test_consume_transform_produce_is_exactly_once_across_sigkills(tmp_path):
    broker = Broker(tmp_path / "data").start(*TXN_ARGS)
    create(broker, {"eo-in": INPUT_PARTITIONS, "eo-out": OUTPUT_PARTITIONS})
    members = [Member(broker, name, tmp_path / f"member-{name}.log") for name in "ab"]
    input_done = threading.Event()
    feeder = threading.Thread(target=produce_input, args=(broker, input_done), daemon=True)
    feeder.start()
    committed = 0

    def progressed(target):
        """Waits until the members reported `target` records committed, restarting any that
        exit. (A commit whose answer a crash lost goes unreported: the count is a floor.)"""

        def check():
            nonlocal committed
            for member in members:
                member.keep_alive()
                while not member.committed.empty():
                    committed += member.committed.get_nowait()
            return committed >= target
        wait_until(check, f"{target} records committed by the members")

    try:
        # Three broker crashes and three member crashes, while the input still flows.
        for round_ in range(6):
            progressed((round_ + 1) * RECORDS // 10)
            if round_ % 2 == 0:
                broker.kill()
                broker.start(*TXN_ARGS)
            else:
                members[round_ // 2 % 2].kill()
        feeder.join(180)
        assert input_done.is_set(), "the input producer did not finish"

        # Wait until the group committed every input record, then stop the members.
        consumer = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "copier"})
        inputs = [ck.TopicPartition("eo-in", p) for p in range(INPUT_PARTITIONS)]

        def all_copied():
            for member in members:
                member.keep_alive()
            found = consumer.committed(inputs, timeout=30)
            return sum(max(tp.offset, 0) for tp in found) == RECORDS
        wait_until(all_copied, "the group's offsets at the end of the input")
        consumer.close()
    finally:
        for member in members:
            member.stop()

    outputs = [("eo-out", p) for p in range(OUTPUT_PARTITIONS)]
    inputs = [("eo-in", p) for p in range(INPUT_PARTITIONS)]
    end_with_sentinels(broker, outputs + inputs)
    expected = [f"r{i}" for i in range(RECORDS)]
    written = [v for values in read(broker, inputs, "read_committed").values() for v in values]
    assert sorted(written) == sorted(expected), "the idempotent input has each record once"
    copied = [v for values in read(broker, outputs, "read_committed").values() for v in values]
    duplicates = sorted(v for v, n in Counter(copied).items() if n > 1)
    missing = sorted(set(expected) - set(copied))
    assert not duplicates and not missing, (duplicates[:20], missing[:20])
    assert sorted(copied) == sorted(expected)
    # The crashes happened: every member was restarted at least once.
    assert all(m.restarts >= 1 for m in members), [m.restarts for m in members]
    assert broker.stop() == 0
