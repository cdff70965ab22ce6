//! Reading as a `read_committed` consumer, in process: decoded records, with control
//! batches and aborted transactions' records left out, as a Kafka consumer leaves them out.
//! Processors, connectors and continuous queries read their inputs through this.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use fjord_partition::{Offset, PartitionIndex};
use fjord_record::{Batch, ControlType, Records, TimestampType};

use super::Engine;
use super::data::FetchPartition;
use crate::groups::offsets::invalid_batch;
use crate::partition::{Isolation, PartitionOffsets};
use crate::{Error, Result};

/// A record as a `read_committed` consumer receives it. Keys, values and headers share the
/// read's buffer (no copy per record for uncompressed batches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub offset: Offset,
    /// CreateTime, or the batch's LogAppendTime when the topic sets it.
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(Bytes, Option<Bytes>)>,
}

/// What [`Engine::read_committed`] found.
#[derive(Debug, Clone)]
pub struct CommittedRead {
    pub records: Vec<ConsumedRecord>,
    /// Where the next read starts: past every batch read, including the markers and
    /// aborted batches that gave no records. Equal to the requested offset when there was
    /// nothing new.
    pub next_offset: Offset,
    pub offsets: PartitionOffsets,
}

impl Engine {
    /// Reads committed records of a partition from `offset`, up to the last stable offset and
    /// about `max_bytes` (at least one batch). An offset below the log start offset (removed
    /// by retention) is an [`Error::Partition`] with `OffsetOutOfRange`, as for a fetch.
    pub async fn read_committed(
        &self,
        topic: &str,
        partition: PartitionIndex,
        offset: Offset,
        max_bytes: usize,
    ) -> Result<CommittedRead> {
        let request = FetchPartition {
            topic: topic.to_owned(),
            partition,
            offset,
            max_bytes,
        };
        let read = self
            .read(Arc::from([request]), max_bytes, Isolation::LastStable)
            .await;
        let read = read.into_iter().next().ok_or(Error::ShuttingDown)??;
        let batches = read.records;
        let path = std::path::PathBuf::from(format!("{topic}-{partition}"));
        let buffer = self
            .pool
            .run(move || {
                batches
                    .into_bytes()
                    .map_err(|source| Error::Io { path, source })
            })
            .await?;
        let mut aborted: VecDeque<_> = read.aborted_transactions.into_iter().collect();
        aborted
            .make_contiguous()
            .sort_by_key(|transaction| transaction.first_offset);
        let mut decoder = Decoder {
            from: offset,
            aborted,
            aborted_producers: HashSet::new(),
            records: Vec::new(),
        };
        let mut next_offset = offset;
        for batch in fjord_record::batches(&buffer) {
            let batch = batch.map_err(invalid_batch)?;
            next_offset = next_offset.max(Offset(batch.header.next_offset()));
            decoder.batch(&buffer, &batch)?;
        }
        Ok(CommittedRead {
            records: decoder.records,
            next_offset,
            offsets: read.offsets,
        })
    }
}

/// Kafka consumer's rule for aborted transactions: a producer whose aborted transaction has
/// begun at or before a batch is aborted until its ABORT marker.
struct Decoder {
    from: Offset,
    aborted: VecDeque<fjord_partition::AbortedTransaction>,
    aborted_producers: HashSet<i64>,
    records: Vec<ConsumedRecord>,
}

impl Decoder {
    fn batch(&mut self, buffer: &Bytes, batch: &Batch<'_>) -> Result<()> {
        let header = &batch.header;
        let attributes = header.attributes;
        if attributes.is_transactional() {
            while let Some(transaction) = self.aborted.front() {
                if transaction.first_offset.0 > header.last_offset() {
                    break;
                }
                self.aborted_producers.insert(transaction.producer_id.0);
                self.aborted.pop_front();
            }
        }
        if attributes.is_control() {
            let marker = ControlType::of_batch(batch, fjord_record::DECOMPRESSED_BYTES_MAX)
                .map_err(invalid_batch)?;
            if marker == Some(ControlType::Abort) {
                self.aborted_producers.remove(&header.producer_id);
            }
            return Ok(());
        }
        if attributes.is_transactional() && self.aborted_producers.contains(&header.producer_id) {
            return Ok(());
        }
        let bytes = batch
            .decompressed_record_bytes(fjord_record::DECOMPRESSED_BYTES_MAX)
            .map_err(invalid_batch)?;
        // Uncompressed records are slices of the read's buffer; decompressed ones share one.
        let owner = match &bytes {
            std::borrow::Cow::Borrowed(slice) => buffer.slice_ref(slice),
            std::borrow::Cow::Owned(vec) => Bytes::copy_from_slice(vec),
        };
        let log_append_time = attributes.timestamp_type() == TimestampType::LogAppendTime;
        for record in Records::new(&owner) {
            let record = record.map_err(invalid_batch)?;
            let offset = Offset(header.base_offset + i64::from(record.offset_delta));
            if offset < self.from {
                continue;
            }
            let timestamp_ms = if log_append_time {
                header.max_timestamp
            } else {
                header.base_timestamp + record.timestamp_delta
            };
            let share = |slice: &[u8]| owner.slice_ref(slice);
            self.records.push(ConsumedRecord {
                offset,
                timestamp_ms,
                key: record.key.map(share),
                value: record.value.map(share),
                headers: record
                    .headers()
                    .map(|header| (share(header.key), header.value.map(share)))
                    .collect(),
            });
        }
        Ok(())
    }
}
