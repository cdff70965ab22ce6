//! The partition contract implemented without the log: an in-memory storage built only from
//! the engine's neutral types and the rules in `fjord-partition` (the batch check and the
//! idempotent-producer state), as a diskless partition would be. It refuses, deduplicates
//! and answers exactly as the local log does, because the rules are the same code.

use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use fjord_engine::{
    Appended, Batches, Isolation, Offset, PartitionError, PartitionOffsets, PartitionStorage, Read,
    ReadRange, StorageFuture, TimestampOffset, TopicConfig,
};
use fjord_partition::{ProducerStates, check_batches};
use fjord_record::{BatchBuilder, Compression, HEADER_BYTES, NewRecord};
use tokio::sync::watch;

/// Stored batches in memory, each with its base offset.
#[derive(Debug)]
struct MemoryPartition {
    config: TopicConfig,
    state: Mutex<State>,
    high_watermark: watch::Sender<Offset>,
}

#[derive(Debug, Default)]
struct State {
    batches: Vec<(Offset, Bytes)>,
    log_end_offset: i64,
    producers: ProducerStates,
    last_append_ms: Option<i64>,
}

impl MemoryPartition {
    fn new(config: TopicConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State::default()),
            high_watermark: watch::Sender::new(Offset(0)),
        }
    }

    fn append_now(&self, batches: &[u8], now_ms: i64) -> fjord_engine::Result<Appended> {
        let checked = check_batches(batches, &self.config, "memory-0", now_ms)?;
        let mut state = self.state.lock().expect("not poisoned");
        let headers = checked.iter().map(|batch| &batch.header);
        if let Some(original) = state.producers.check_append(headers)? {
            return Ok(Appended {
                base_offset: Offset(original.base_offset),
                last_offset: Offset(original.last_offset),
                log_append_time_ms: -1,
                records_count: 0,
                log_start_offset: Offset(0),
                duplicate: true,
            });
        }
        let base_offset = state.log_end_offset;
        for batch in &checked {
            let bytes = &batches[batch.position..batch.position + batch.size_bytes];
            let mut stored = BytesMut::from(bytes);
            let next = state.log_end_offset;
            fjord_record::assign(&mut stored[..HEADER_BYTES], next, 0)
                .map_err(PartitionError::InvalidBatch)?;
            let mut header = batch.header;
            header.base_offset = next;
            state.producers.update(&header);
            state.batches.push((Offset(next), stored.freeze()));
            state.log_end_offset += batch.offsets_count;
        }
        state.last_append_ms = Some(now_ms);
        let log_end_offset = Offset(state.log_end_offset);
        self.high_watermark.send_replace(log_end_offset);
        Ok(Appended {
            base_offset: Offset(base_offset),
            last_offset: Offset(log_end_offset.0 - 1),
            log_append_time_ms: -1,
            records_count: checked
                .iter()
                .map(|b| i64::from(b.header.records_count))
                .sum(),
            log_start_offset: Offset(0),
            duplicate: false,
        })
    }
}

impl PartitionStorage for MemoryPartition {
    fn append(&self, batches: Bytes, now_ms: i64) -> StorageFuture<'_, Appended> {
        Box::pin(async move { self.append_now(&batches, now_ms) })
    }

    fn read(&self, range: ReadRange) -> StorageFuture<'_, Read> {
        let state = self.state.lock().expect("not poisoned");
        let mut out = BytesMut::new();
        for (base_offset, batch) in &state.batches {
            let next_offset = base_offset.0 + i64::from(batch_last_delta(batch)) + 1;
            let fits = out.len() + batch.len() <= range.max_bytes
                || (out.is_empty() && range.min_one_batch);
            if next_offset > range.offset.0 && fits {
                out.extend_from_slice(batch);
            }
        }
        let read = Read {
            batches: Batches::Memory(out.freeze()),
            aborted_transactions: Vec::new(),
        };
        Box::pin(std::future::ready(Ok(read)))
    }

    fn offsets(&self) -> fjord_engine::Result<PartitionOffsets> {
        let end = Offset(self.state.lock().expect("not poisoned").log_end_offset);
        Ok(PartitionOffsets {
            log_start_offset: Offset(0),
            high_watermark: end,
            last_stable_offset: end,
            log_end_offset: end,
        })
    }

    fn offset_for_timestamp(&self, _: i64) -> StorageFuture<'_, Option<TimestampOffset>> {
        Box::pin(std::future::ready(Ok(None)))
    }

    fn offset_of_max_timestamp(&self) -> StorageFuture<'_, Option<TimestampOffset>> {
        Box::pin(std::future::ready(Ok(None)))
    }

    fn delete_records(&self, offset: Offset) -> StorageFuture<'_, Offset> {
        Box::pin(std::future::ready(Ok(offset)))
    }

    fn watch_high_watermark(&self) -> watch::Receiver<Offset> {
        self.high_watermark.subscribe()
    }

    fn last_append_ms(&self) -> Option<i64> {
        self.state.lock().expect("not poisoned").last_append_ms
    }
}

fn batch_last_delta(batch: &[u8]) -> i32 {
    let header = fjord_record::BatchHeader::parse(&batch[..HEADER_BYTES]).expect("stored");
    header.last_offset_delta
}

fn produced(producer_id: i64, sequence: i32, count: usize) -> Bytes {
    let mut builder = BatchBuilder::new(Compression::None);
    builder.producer_id = producer_id;
    builder.producer_epoch = 0;
    builder.base_sequence = sequence;
    for i in 0..count {
        let value = format!("value-{i}");
        builder
            .push(&NewRecord {
                timestamp_ms: crate::support::START_MS,
                key: Some(b"key"),
                value: Some(value.as_bytes()),
                headers: &[],
            })
            .expect("record fits");
    }
    Bytes::from(builder.build().expect("batch builds"))
}

#[tokio::test]
async fn a_storage_without_the_log_refuses_and_deduplicates_as_the_log_does() -> anyhow::Result<()>
{
    let compacted = TopicConfig {
        cleanup_policy: fjord_engine::CleanupPolicy::COMPACT,
        ..TopicConfig::default()
    };
    let partition = MemoryPartition::new(compacted);
    let storage: &dyn PartitionStorage = &partition;
    let mut watch = storage.watch_high_watermark();
    let now_ms = crate::support::START_MS;

    let first = storage.append(produced(7, 0, 3), now_ms).await?;
    let second = storage.append(produced(7, 3, 2), now_ms).await?;
    assert_eq!(
        (first.base_offset, second.base_offset),
        (Offset(0), Offset(3))
    );
    assert!(watch.has_changed()?);
    assert_eq!(*watch.borrow_and_update(), Offset(5));

    // A producer's retry: the original offsets, nothing stored (the shared producer state).
    let retry = storage.append(produced(7, 0, 3), now_ms).await?;
    assert!(retry.duplicate);
    assert_eq!(
        (retry.base_offset, retry.last_offset),
        (Offset(0), Offset(2))
    );
    // A gap in the sequence, a corrupt batch, a record without a key on a compacted topic:
    // the shared refusals.
    let gap = storage.append(produced(7, 9, 1), now_ms).await;
    assert!(matches!(
        gap,
        Err(fjord_engine::Error::Partition(
            PartitionError::OutOfOrderSequence { .. }
        ))
    ));
    let mut corrupt = BytesMut::from(&produced(8, 0, 1)[..]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let refused = storage.append(corrupt.freeze(), now_ms).await;
    assert!(matches!(
        refused,
        Err(fjord_engine::Error::Partition(
            PartitionError::InvalidBatch(_)
        ))
    ));
    let keyless = crate::support::batch(1, 1, now_ms);
    let mut builder = BatchBuilder::new(Compression::None);
    builder.push(&NewRecord {
        timestamp_ms: now_ms,
        key: None,
        value: Some(b"no key"),
        headers: &[],
    })?;
    let refused = storage.append(Bytes::from(builder.build()?), now_ms).await;
    assert!(matches!(
        refused,
        Err(fjord_engine::Error::Partition(
            PartitionError::InvalidRecords { .. }
        ))
    ));
    assert_eq!(
        storage.offsets()?.log_end_offset,
        Offset(5),
        "nothing refused was stored"
    );
    storage.append(keyless, now_ms).await?;

    let range = ReadRange {
        offset: Offset(3),
        max_bytes: 1 << 20,
        min_one_batch: true,
        isolation: Isolation::HighWatermark,
    };
    let Batches::Memory(read) = storage.read(range).await?.batches else {
        anyhow::bail!("a memory storage answers from memory");
    };
    let bases: Vec<i64> = fjord_record::batches(&read)
        .map(|batch| batch.map(|b| b.header.base_offset))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        bases,
        vec![3, 5],
        "from offset 3: the second batch and the keyed one"
    );
    Ok(())
}
