"""One consumer-group member as its own process, so a test can SIGKILL it.

Prints one JSON line per event on stdout: {"assigned": [...]} after each rebalance and
{"partition": p, "offset": o, "value": v} for each record, printed only after its offset
was committed synchronously. Runs until killed or told to stop by closing stdin.
"""

import json
import sys
import threading

import confluent_kafka as ck

bootstrap, topic, group = sys.argv[1:4]
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()


def emit(event):
    print(json.dumps(event), flush=True)


def on_assign(consumer, partitions):
    emit({"assigned": sorted(p.partition for p in partitions)})


consumer = ck.Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": group,
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 500,
})
consumer.subscribe([topic], on_assign=on_assign)
while not stop.is_set():
    message = consumer.poll(0.2)
    if message is None or message.error():
        continue
    consumer.commit(message=message, asynchronous=False)
    emit({"partition": message.partition(), "offset": message.offset(),
          "value": message.value().decode()})
consumer.close()
