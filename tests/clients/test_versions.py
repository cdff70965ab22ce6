"""confluent-kafka 2.16 (librdkafka 2.16) negotiates the newest versions it knows against
Fjord's Kafka 4.1 ranges: Fetch by topic id (v13+), Metadata v13, Produce v10, ListOffsets
v7 (MAX_TIMESTAMP). The broker counts requests per API and version, so the test sees which
versions were used. Versions no client here negotiates are covered over the raw wire by
core/fjord/tests/wire_versions.rs."""

import time
import urllib.request

import confluent_kafka as ck
from confluent_kafka.admin import AclOperation, AdminClient, NewTopic, OffsetSpec


def versions_used(broker):
    """{api: highest version used} from the broker's request counters."""
    url = f"http://127.0.0.1:{broker.metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    used = {}
    for line in text.splitlines():
        if line.startswith("fjord_requests_total{"):
            labels = dict(part.split("=", 1) for part in line[line.index("{") + 1:line.index("}")].split(","))
            api, version = labels["api"].strip('"'), int(labels["version"].strip('"'))
            used[api] = max(used.get(api, -1), version)
    return used


def test_librdkafka_negotiates_the_new_versions(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("versions", 1, 1)])["versions"].result(30)
    producer = ck.Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
    now = int(time.time() * 1000)
    for i, timestamp in enumerate([now - 3000, now - 1000, now - 2000]):
        producer.produce("versions", key=f"k{i}", value=f"v{i}", timestamp=timestamp)
    assert producer.flush(30) == 0
    consumer = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "versions",
                            "auto.offset.reset": "earliest"})
    consumer.subscribe(["versions"])
    got = []
    deadline = time.monotonic() + 60
    while len(got) < 3 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            got.append(message.value())
    consumer.close()
    assert got == [b"v0", b"v1", b"v2"]

    # ListOffsets v7+: the record with the largest timestamp.
    asked = {ck.TopicPartition("versions", 0): OffsetSpec.max_timestamp()}
    found = admin.list_offsets(asked)[ck.TopicPartition("versions", 0)].result(30)
    assert (found.offset, found.timestamp) == (1, now - 1000)

    # KIP-430 without an authorizer: every operation that applies.
    cluster = admin.describe_cluster(include_authorized_operations=True).result(30)
    assert AclOperation.IDEMPOTENT_WRITE in cluster.authorized_operations
    topic = admin.describe_topics(ck.TopicCollection(["versions"]),
                                  include_authorized_operations=True)["versions"].result(30)
    assert set(topic.authorized_operations) == {
        AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE, AclOperation.DELETE,
        AclOperation.ALTER, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS,
        AclOperation.ALTER_CONFIGS}

    used = versions_used(broker)
    assert used["Fetch"] >= 13, used  # topics named by id
    assert used["Metadata"] == 13, used
    assert used["Produce"] >= 10, used
    assert used["ListOffsets"] >= 7, used
