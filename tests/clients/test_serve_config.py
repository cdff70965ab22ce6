"""`fjord serve --config FILE`: the settings file configures the broker, flags and environment
variables override it, and a bad file stops start-up with an error naming the problem."""

import subprocess

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, ConfigResource

from conftest import BINARY, Broker


def settings(broker: Broker) -> str:
    return (
        f"listen: {broker.bootstrap}\n"
        f"data-dir: {broker.data_dir}\n"
        f"metrics-listen: 127.0.0.1:{broker.metrics_port}\n"
        "node-id: 5\n"
        "num-partitions: 3\n"
        "log-config:\n"
        "  retention.ms: 3600000\n"
        "  cleanup.policy: compact\n"
    )


def topic_view(bootstrap: str, topic: str):
    """(node id of the broker, partitions of `topic` after auto-creating it, its configs)."""
    producer = ck.Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, key=b"k", value=b"v")
    assert producer.flush(30) == 0
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(timeout=30)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(30)
    return (list(metadata.brokers), len(metadata.topics[topic].partitions),
            {name: entry.value for name, entry in entries.items()})


def test_settings_file_configures_the_broker(tmp_path):
    broker = Broker(tmp_path / "data")
    config = tmp_path / "fjord.yaml"
    config.write_text(settings(broker))
    broker.start("--config", str(config), flags=False)
    try:
        nodes, partitions, configs = topic_view(broker.bootstrap, "from-file")
        assert nodes == [5]
        assert partitions == 3
        assert configs["retention.ms"] == "3600000"
        assert configs["cleanup.policy"] == "compact"
    finally:
        assert broker.stop() == 0, broker.log.read_text()
    assert (broker.data_dir / "topics" / "from-file.topic").is_file(), "data-dir from the file not used"


def test_flags_and_environment_override_the_file(tmp_path):
    broker = Broker(tmp_path / "data")
    config = tmp_path / "fjord.yaml"
    config.write_text(settings(broker))
    broker.start("--config", str(config), "--log-config", "retention.ms=60000", flags=False,
                 env={"FJORD_NUM_PARTITIONS": "2"})
    try:
        nodes, partitions, configs = topic_view(broker.bootstrap, "overridden")
        assert nodes == [5]
        assert partitions == 2
        assert configs["retention.ms"] == "60000"
        assert configs["cleanup.policy"] == "compact"
    finally:
        assert broker.stop() == 0, broker.log.read_text()


def test_a_bad_settings_file_stops_start_up_with_the_reason(tmp_path):
    broker = Broker(tmp_path / "data")
    cases = [  # (what to replace in a good file, by what, what the error must say)
        ("num-partitions: 3", "num-partition: 3", "unknown field `num-partition`"),
        ("retention.ms: 3600000", "retention.ms: forever", "retention.ms"),
        ("node-id: 5", "node-id: [5", "line"),
    ]
    for good, bad, reason in cases:
        config = tmp_path / "bad.yaml"
        config.write_text(settings(broker).replace(good, bad))
        run = subprocess.run([str(BINARY), "serve", "--config", str(config)],
                             capture_output=True, text=True, timeout=30)
        assert run.returncode != 0, bad
        assert reason in run.stderr and "bad.yaml" in run.stderr, run.stderr
    assert not broker.data_dir.exists(), "a refused start-up must not create the data directory"
