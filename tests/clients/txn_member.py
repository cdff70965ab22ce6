"""One consume-transform-produce member as its own process, so a test can SIGKILL it: reads
`source` in group `group` with read_committed, writes each record's value to `sink` and
commits the group's positions in the same transaction (KIP-447: the consumer's group metadata
fences a member that lost its partitions).

Prints {"committed": n} after each committed transaction. On any error it exits with status
2 and the test starts it again, as an orchestrator replaces a failed instance: the transaction
it left open is aborted by the next incarnation's InitProducerId or by the broker on its
timeout. It runs until killed or its stdin closes.

librdkafka 2.16 can hang in send_offsets_to_transaction past its timeout when the group
coordinator it cached was decommissioned, which its re-bootstrap after a lone broker's restart
does (librdkafka issues #5511 and #5456). So the clients keep their brokers
(`metadata.recovery.strategy: none`), and a watchdog ends a member stuck in one transaction
for longer than STUCK_S, as a liveness probe would.
"""

import faulthandler
import json
import os
import signal
import sys
import threading

import confluent_kafka as ck

bootstrap, group, transactional_id, source, sink = sys.argv[1:6]
debug = {"debug": os.environ["MEMBER_DEBUG"]} if os.environ.get("MEMBER_DEBUG") else {}
API_TIMEOUT_S = 10
STUCK_S = 30
faulthandler.register(signal.SIGUSR1)  # `kill -USR1` prints where a stuck member is
progress = threading.Event()


def watchdog():
    while progress.wait(STUCK_S):
        progress.clear()
    print(json.dumps({"error": f"no transaction ended in {STUCK_S} s"}), flush=True)
    os._exit(3)


threading.Thread(target=watchdog, daemon=True).start()
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()

try:
    consumer = ck.Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "metadata.recovery.strategy": "none",
        **debug,
    })
    producer = ck.Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": transactional_id,
        "transaction.timeout.ms": 10_000,
        "metadata.recovery.strategy": "none",
        **debug,
    })
    producer.init_transactions(API_TIMEOUT_S)
    consumer.subscribe([source])
    while not stop.is_set():
        progress.set()
        messages = [m for m in consumer.consume(200, 0.2) if not m.error()]
        if not messages:
            continue
        producer.begin_transaction()
        for message in messages:
            producer.produce(sink, key=message.value(), value=message.value())
        positions = consumer.position(consumer.assignment())
        producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(),
                                             API_TIMEOUT_S)
        producer.commit_transaction(API_TIMEOUT_S)
        print(json.dumps({"committed": len(messages)}), flush=True)
    consumer.close()
except ck.KafkaException as error:
    print(json.dumps({"error": str(error)}), flush=True)
    sys.exit(2)
