"""Admin APIs through confluent-kafka's AdminClient: configs (describe, alter, incremental),
partitions added, records deleted, the cluster described; changes persist across restart."""

import confluent_kafka as ck
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   NewPartitions, NewTopic)


def configs(admin, topic):
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(30)
    return {name: (entry.value, entry.source) for name, entry in entries.items()}


def test_topic_configs_partitions_and_records(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("admin", 2, 1, config={"retention.ms": "3600000"})])["admin"].result(30)
    described = configs(admin, "admin")
    assert described["retention.ms"] == ("3600000", ck.admin.ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert described["cleanup.policy"][0] == "delete"
    assert described["segment.bytes"][1] == ck.admin.ConfigSource.DEFAULT_CONFIG.value

    resource = ConfigResource(ConfigResource.Type.TOPIC, "admin", incremental_configs=[
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
        ConfigEntry("max.message.bytes", "2000000", incremental_operation=AlterConfigOpType.SET),
    ])
    admin.incremental_alter_configs([resource])[resource].result(30)
    described = configs(admin, "admin")
    assert described["cleanup.policy"][0] == "delete,compact"
    assert described["max.message.bytes"][0] == "2000000"
    assert described["retention.ms"][1] != ck.admin.ConfigSource.DYNAMIC_TOPIC_CONFIG.value

    bad = ConfigResource(ConfigResource.Type.TOPIC, "admin", incremental_configs=[
        ConfigEntry("retention.mss", "1", incremental_operation=AlterConfigOpType.SET)])
    error = admin.incremental_alter_configs([bad])[bad].exception(30)
    assert error.args[0].code() == ck.KafkaError.INVALID_CONFIG

    admin.create_partitions([NewPartitions("admin", 4)])["admin"].result(30)
    error = admin.create_partitions([NewPartitions("admin", 3)])["admin"].exception(30)
    assert error.args[0].code() == ck.KafkaError.INVALID_PARTITIONS
    assert len(admin.list_topics(timeout=30).topics["admin"].partitions) == 4

    producer = ck.Producer({"bootstrap.servers": broker.bootstrap})
    failed = []
    # The topic is now compacted: records need keys (Kafka refuses them without).
    for i in range(10):
        producer.produce("admin", key=f"k{i}", value=str(i), partition=3,
                         on_delivery=lambda error, _: error and failed.append(error))
    assert producer.flush(30) == 0 and not failed, failed
    # A batch holding a record without a key is refused whole.
    producer.produce("admin", value="no key", partition=3,
                     on_delivery=lambda error, _: failed.append(error))
    assert producer.flush(30) == 0
    assert [e.code() for e in failed] == [ck.KafkaError.INVALID_RECORD], failed
    deleted = admin.delete_records([ck.TopicPartition("admin", 3, 6)])
    assert [r.result(30).low_watermark for r in deleted.values()] == [6]

    cluster = admin.describe_cluster().result(30)
    assert [n.id for n in cluster.nodes] == [1] and cluster.controller.id == 1

    broker.stop()
    broker.start()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    assert configs(admin, "admin")["max.message.bytes"][0] == "2000000"
    consumer = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "check"})
    assert consumer.get_watermark_offsets(ck.TopicPartition("admin", 3), timeout=30) == (6, 10)
    consumer.close()
