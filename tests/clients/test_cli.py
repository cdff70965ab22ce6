"""The `fjord` CLI against a real broker: topics, produce, consume, groups, JSON output,
and a clear error when no broker is there."""

import json
import subprocess

from conftest import BINARY


def fjord(broker, *args, stdin=None, check=True):
    result = subprocess.run([str(BINARY), *args, "--brokers", broker.bootstrap], input=stdin,
                            capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_topics_produce_consume_and_groups(broker):
    fjord(broker, "topic", "create", "cli", "--partitions", "2", "--config", "retention.ms=600000")
    listed = json.loads(fjord(broker, "topic", "list", "--output", "json").stdout)
    assert {"name": "cli", "partitions": 2} in listed
    lines = "".join(f"k{i}:v{i}\n" for i in range(200))
    produced = fjord(broker, "produce", "cli", "-K", ":", "-H", "src=test", "-o", "json", stdin=lines)
    assert json.loads(produced.stdout)["records"] == 200

    described = json.loads(fjord(broker, "topic", "describe", "cli", "-o", "json").stdout)
    assert sum(p["high_watermark"] for p in described["partitions"]) == 200
    assert ["retention.ms", "600000"] in described["configs"]

    records = [json.loads(line) for line in
               fjord(broker, "consume", "cli", "-o", "json").stdout.splitlines()]
    assert sorted(r["value"] for r in records) == sorted(f"v{i}" for i in range(200))
    assert all(r["key"] == "k" + r["value"][1:] and r["headers"] == [["src", "test"]]
               for r in records)

    # In a group: everything once, committed; then lag 0, then a reset makes it all lag.
    consumed = fjord(broker, "consume", "cli", "--group", "readers").stdout.splitlines()
    assert len(consumed) == 200
    view = json.loads(fjord(broker, "group", "describe", "readers", "-o", "json").stdout)
    assert [p["lag"] for p in view["partitions"]] == [0, 0]
    fjord(broker, "group", "reset-offsets", "readers", "--topic", "cli", "--to", "earliest",
          "--execute")
    view = json.loads(fjord(broker, "group", "describe", "readers", "-o", "json").stdout)
    assert sum(p["lag"] for p in view["partitions"]) == 200
    groups = json.loads(fjord(broker, "group", "list", "-o", "json").stdout)
    assert [g["group"] for g in groups] == ["readers"]
    fjord(broker, "group", "delete", "readers")
    fjord(broker, "topic", "delete", "cli")
    assert "cli" not in fjord(broker, "topic", "list").stdout


def test_a_missing_broker_is_a_clear_error(broker):
    result = subprocess.run([str(BINARY), "topic", "list", "--brokers", "127.0.0.1:1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "cannot reach any broker" in result.stderr


def test_transactions_are_listed_and_described(broker):
    import confluent_kafka as ck

    fjord(broker, "topic", "create", "cli-txn", "--partitions", "2")
    producer = ck.Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "cli-app",
                            "transaction.timeout.ms": 45_000})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce("cli-txn", value=b"v", partition=1)
    assert producer.flush(30) == 0
    listed = json.loads(fjord(broker, "txn", "list", "-o", "json").stdout)
    assert listed == [{"transactional_id": "cli-app", "producer_id": listed[0]["producer_id"],
                       "state": "Ongoing"}]
    described = json.loads(fjord(broker, "txn", "describe", "cli-app", "-o", "json").stdout)
    assert described["state"] == "Ongoing"
    assert described["timeout_ms"] == 45_000
    assert described["start_time_ms"] > 0
    assert described["partitions"] == [["cli-txn", [1]]]
    human = fjord(broker, "txn", "describe", "cli-app").stdout
    assert "Ongoing" in human and "cli-txn" in human
    producer.commit_transaction(30)
    described = json.loads(fjord(broker, "txn", "describe", "cli-app", "-o", "json").stdout)
    assert described["state"] == "CompleteCommit" and described["partitions"] == []
    missing = fjord(broker, "txn", "describe", "nobody", check=False)
    assert missing.returncode != 0 and "not found" in missing.stderr
